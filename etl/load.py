"""Load stage: one file = one transaction = one batch.

read -> validate (etl.validate) -> bulk copy into a temporary stage table -> merge into the warehouse in SQL ->
refresh the marts for the patients the file touched. A file already loaded (same sha256) is not loaded again; a
corrected re-export updates the rows whose values changed and keeps the old values in `fact_revisions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from etl import read as reader
from etl.bulk import Rows, insert_rows, prepare_rows
from etl.kinds import KINDS, LOAD_ORDER, Kind
from etl.mapping import UNIT_FACTORS, Mapping
from etl.memory import release_freed_memory
from etl.pipeline import read_ahead
from etl.stage_tables import stage_patients, stage_scores, stage_sessions
from etl.summary import refresh_summaries
from etl.validate import (
    PATIENT_KEY,
    SCORE_KEY,
    SESSION_KEY,
    SESSION_VALUES,
    UNKNOWN_PATIENT,
    Context,
    MeasureRule,
    Staged,
    stage,
)
from warehouse.config import SummaryRules
from warehouse.db import analyze_postgresql, bulk_session
from warehouse.schema import (
    clinics,
    episode_summary,
    episodes,
    etl_batches,
    etl_rejects,
    exercise_types,
    exercises,
    fact_revisions,
    measures,
    patients,
    scores,
    sessions,
    therapists,
)

Progress = Callable[[str], None]

EXIT_OK, EXIT_FILE_ERROR, EXIT_REJECTS = 0, 2, 3
#: Rows read between two returns of freed heap memory to the OS (etl/memory.py).
TRIM_EVERY_ROWS = 250_000
#: Chunks parsed and validated ahead of the one being written (etl/pipeline.py): one, so two chunks are in memory
#: at most, as many rows as 25,000-row chunks held with more ahead (docs/benchmarks.md).
READ_AHEAD = 1
#: Rows of each index ANALYZE samples after a large SQLite load (0 would read them all: 0.3 s per 1M scores).
SQLITE_ANALYSIS_LIMIT = 1000


@dataclass
class BatchResult:
    file: str
    kind: str | None = None
    batch_id: int | None = None
    status: str = "loaded"
    rows_read: int = 0
    rows_loaded: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    message: str | None = None
    seconds: float = 0.0
    patients_touched: set[str] = field(default_factory=set, repr=False)
    #: Patients with at least one row inserted or updated (or, for a patients file, every patient it names).
    patients_changed: set[str] = field(default_factory=set, repr=False)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("patients_touched")
        out.pop("patients_changed")
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class FactSpec:
    """How a staged kind merges into its fact table."""

    stage: Table
    target: Table
    key: list[str]
    values: list[str]
    one_row_per_line: bool


SCORE_SPEC = FactSpec(stage_scores, scores, SCORE_KEY, ["value"], True)
VISIT_SPEC = FactSpec(stage_scores, scores, SCORE_KEY, ["value"], False)
SESSION_SPEC = FactSpec(stage_sessions, sessions, SESSION_KEY, SESSION_VALUES, True)
# Column names differ between stage_patients and episodes; see _merge_patients.
STAGE_COLUMNS = {
    "scores": [c.name for c in stage_scores.columns],
    "visits": [c.name for c in stage_scores.columns],
    "sessions": [c.name for c in stage_sessions.columns],
    "patients": [c.name for c in stage_patients.columns],
}
STAGE_TABLE = {
    "scores": stage_scores,
    "visits": stage_scores,
    "sessions": stage_sessions,
    "patients": stage_patients,
}


def exit_code(results: Iterable[BatchResult]) -> int:
    results = list(results)
    if any(r.status == "failed" for r in results):
        return EXIT_FILE_ERROR
    if any(r.rows_rejected for r in results):
        return EXIT_REJECTS
    return EXIT_OK


def order_files(paths: Sequence[Path], mapping: Mapping, forced_kind: str | None) -> list[Path]:
    """Patients files first, so that facts in the same run can refer to the patients they bring."""

    def rank(p: Path) -> int:
        try:
            if reader.detect_format(p, mapping) == "fhir":
                return 0  # brings its own patients
            source = reader.open_source(p, mapping, forced_kind)
            return LOAD_ORDER.index(source.batch_kind)
        except (reader.FileLevelError, OSError):
            return len(LOAD_ORDER)

    return sorted(paths, key=rank)


def load_files(
    engine: Engine,
    paths: Sequence[str | Path],
    *,
    mapping: Mapping | None = None,
    kind: str | None = None,
    as_of: date | None = None,
    chunk_rows: int | None = None,
    rules: SummaryRules | None = None,
    progress: Progress | None = None,
) -> list[BatchResult]:
    mapping = mapping or Mapping()
    files = order_files([Path(p) for p in paths], mapping, kind)
    return [
        load_file(
            engine,
            p,
            mapping=mapping,
            kind=kind,
            as_of=as_of,
            chunk_rows=chunk_rows,
            rules=rules,
            progress=progress,
        )
        for p in files
    ]


def load_file(
    engine: Engine,
    path: str | Path,
    *,
    mapping: Mapping | None = None,
    kind: str | None = None,
    as_of: date | None = None,
    chunk_rows: int | None = None,
    rules: SummaryRules | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """One file, one transaction, one batch (the module docstring says why). `chunk_rows` defaults to the file
    kind's (`etl.read.chunk_rows_for`): memory per row differs by kind."""
    path = Path(path)
    mapping = mapping or Mapping()
    as_of = as_of or date.today()
    rules = rules or SummaryRules()
    # pyarrow's default allocator (mimalloc) keeps freed pages; every chunk's Arrow strings go through it, so the
    # peak crept up with the file (1M rows: 291 MB with it, 231 MB with the system allocator, same speed).
    # Process-wide and harmless for other pyarrow users (research/export.py does the same).
    pa.set_memory_pool(pa.system_memory_pool())
    result = BatchResult(file=str(path))
    started = time.perf_counter()
    try:
        source = reader.open_source(path, mapping, kind)
        result.kind = source.batch_kind
        chunk_rows = chunk_rows or reader.chunk_rows_for(source.batch_kind)
        sha = reader.sha256_file(path)
        previous = _previous_batch(engine, sha, source.batch_kind, mapping.label)
        if previous is not None and not _waited_for_patients(engine, previous):
            _report_already_loaded(result, previous)
        else:
            with engine.begin() as conn:
                bulk_session(conn)
                _load_in_transaction(conn, path, sha, source, mapping, as_of, chunk_rows, result, progress)
                if previous is not None:
                    again = (
                        f"read again: batch {previous['batch_id']} of these bytes rejected rows for unknown "
                        "patients, and patients were loaded since"
                    )
                    result.message = "; ".join(m for m in (again, result.message) if m)
                todo = _patients_to_refresh(conn, result, as_of)
                if todo:
                    if progress:
                        progress(f"{path.name}: refreshing summaries for {len(todo):,} patients")
                    refresh_summaries(conn, todo, as_of=as_of, rules=rules)
    except reader.FileLevelError as exc:
        result.status = "failed"
        result.message = str(exc)
        _record_failed_batch(engine, path, result)
    except SQLAlchemyError as exc:  # the transaction rolled back: nothing of this file is in the warehouse
        result.status = "failed"
        result.message = f"{path.name}: the warehouse refused the load, nothing was loaded ({_one_line(exc)})"
        _record_failed_batch(engine, path, result)
    release_freed_memory()
    result.seconds = time.perf_counter() - started
    return result


def _patients_to_refresh(conn: Connection, result: BatchResult, as_of: date) -> list[str]:
    """The patients whose marts this load must recompute: those whose facts changed, and those of the file whose
    marts were computed for another `as_of` day (or not at all). A touched patient whose rows all came back
    unchanged keeps marts that a refresh would rewrite identically (same facts, same day): a corrected re-export
    that changes a few rows refreshes those few patients, not the whole file. A change of the clinical rules
    (SummaryRules) needs `etl refresh`, which recomputes everyone.
    """
    todo = set(result.patients_changed)
    rest = sorted(result.patients_touched - todo)
    es = episode_summary
    for i in range(0, len(rest), 500):
        block = rest[i : i + 500]
        current = (
            select(es.c.episode_id)
            .where(es.c.episode_id == episodes.c.episode_id, es.c.as_of == as_of)
            .exists()
        )
        q = select(episodes.c.patient_id).where(episodes.c.patient_id.in_(block), ~current).distinct()
        todo.update(conn.execute(q).scalars())
    return sorted(todo)


def _previous_batch(engine: Engine, sha: str, kind: str, mapping: str) -> dict[str, Any] | None:
    """The batch that already loaded these exact bytes as this kind with this same mapping, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(etl_batches)
            .where(etl_batches.c.sha256 == sha, etl_batches.c.kind == kind, etl_batches.c.mapping == mapping)
            .where(etl_batches.c.status.in_(("loaded", "loaded_with_rejects")))
            .order_by(etl_batches.c.batch_id.desc())
            .limit(1)
        ).first()
    return row._asdict() if row else None


def _waited_for_patients(engine: Engine, previous: dict[str, Any]) -> bool:
    """Whether the earlier load of these bytes rejected rows for unknown patients and patients were loaded after
    it. Then the file is read again, so that those rows load now (its other rows come back unchanged): the reject
    says "load its patients file first", and without this a user who did so would find the file still recognised
    as loaded, its rows rejected for good."""
    batch = previous["batch_id"]
    with engine.connect() as conn:
        waited = conn.execute(
            select(etl_rejects.c.reject_id)
            .where(
                etl_rejects.c.batch_id == batch,
                etl_rejects.c.reasons.contains(UNKNOWN_PATIENT, autoescape=True),
            )
            .limit(1)
        ).first()
        return waited is not None and (
            conn.execute(select(patients.c.patient_id).where(patients.c.batch_id > batch).limit(1)).first()
            is not None
        )


def _report_already_loaded(result: BatchResult, previous: dict[str, Any]) -> None:
    result.batch_id = previous["batch_id"]
    result.status = "unchanged"
    result.rows_read = previous["rows_read"]
    result.rows_rejected = previous["rows_rejected"]
    result.rows_unchanged = previous["rows_read"] - previous["rows_rejected"]
    result.message = f"identical to batch {previous['batch_id']} loaded {previous['loaded_at']:%Y-%m-%d %H:%M}; nothing changed"


def _record_failed_batch(engine: Engine, path: Path, result: BatchResult) -> None:
    """A file that could not be read leaves a trace (status 'failed') and no data."""
    try:
        sha = reader.sha256_file(path)
    except OSError:
        sha = "-"
    now = _now()
    with engine.begin() as conn:
        result.batch_id = conn.execute(
            etl_batches.insert()
            .values(
                file_name=path.name,
                sha256=sha,
                kind=result.kind or "unknown",
                loaded_at=now,
                finished_at=now,
                status="failed",
                message=result.message,
            )
            .returning(etl_batches.c.batch_id)
        ).scalar_one()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _context(conn: Connection, as_of: date, mapping: Mapping) -> Context:
    rules = {
        r.code: MeasureRule(r.code, r.min_value, r.max_value, r.unit)
        for r in conn.execute(
            select(measures.c.code, measures.c.min_value, measures.c.max_value, measures.c.unit)
        )
    }
    types = {r.code: bool(r.clinic_only) for r in conn.execute(select(exercise_types))}
    known = set(conn.execute(select(patients.c.patient_id)).scalars())
    known_exercises = {r.exercise: r.exercise_type for r in conn.execute(select(exercises))}
    return Context(
        as_of=as_of,
        measures=rules,
        exercise_types=types,
        known_patients=known,
        exercises=known_exercises,
        mapping=mapping,
    )


def _check_units(path: Path, mapping: Mapping, ctx: Context) -> None:
    for code, unit in mapping.units.items():
        rule = ctx.measures.get(code)
        if rule is None:
            raise reader.FileLevelError(
                f"{path.name}: the mapping's [units] names {code!r}, not a measure code"
            )
        if unit != rule.unit and (unit, rule.unit) not in UNIT_FACTORS:
            raise reader.FileLevelError(
                f"{path.name}: the mapping gives {code} in {unit!r}, and there is no conversion to {rule.unit!r}"
            )


def _check_codes(path: Path, mapping: Mapping, ctx: Context) -> None:
    """A FHIR mapping's [codes] must name measures of the catalog, its [sessions] exercise types."""
    for code, measure in mapping.codes.items():
        if measure not in ctx.measures:
            raise reader.FileLevelError(
                f"{path.name}: the mapping's [codes] maps {code!r} to {measure!r}, not a measure code "
                f"(measures: {', '.join(sorted(ctx.measures))})"
            )
    for code, etype in mapping.session_codes.items():
        if etype not in ctx.exercise_types:
            raise reader.FileLevelError(
                f"{path.name}: the mapping's [sessions] maps {code!r} to {etype!r}, not an exercise type "
                f"(types: {', '.join(sorted(ctx.exercise_types))})"
            )


def _load_in_transaction(
    conn: Connection,
    path: Path,
    sha: str,
    source: Any,
    mapping: Mapping,
    as_of: date,
    chunk_rows: int,
    result: BatchResult,
    progress: Progress | None,
) -> None:
    """Every kind of the file (one for CSV and spreadsheets; patients, scores, sessions for FHIR) in this one
    transaction and batch. Each kind is a segment: its chunks are read ahead while the previous one merges, but a
    segment starts only after the previous one merged (facts must see the patients of the same file)."""
    batch_id = conn.execute(
        etl_batches.insert()
        .values(
            file_name=path.name,
            sha256=sha,
            kind=source.batch_kind,
            mapping=mapping.label,
            loaded_at=_now(),
            status="loading",
        )
        .returning(etl_batches.c.batch_id)
    ).scalar_one()
    result.batch_id = batch_id
    ctx = _context(conn, as_of, mapping)
    _check_units(path, mapping, ctx)
    _check_codes(path, mapping, ctx)
    messages = [source.message(), _ignored_columns(source, ctx)]
    result.message = "; ".join(m for m in messages if m) or None
    t0 = time.perf_counter()
    created: set[str] = set()
    seen_patients: set[str] = set()
    for kind, chunks in source.segments(chunk_rows):
        table = STAGE_TABLE[kind.name]
        if table.name not in created:
            table.drop(conn, checkfirst=True)
            table.create(conn)
            created.add(table.name)

        def prepared(chunks=chunks, kind=kind, table=table):
            for chunk in chunks:
                if len(chunk.frame):
                    staged = stage(kind, chunk.frame, chunk.lines, ctx)
                else:  # only rows the reader rejected
                    staged = Staged(rows=pd.DataFrame(), rejects=pd.DataFrame({"line": [], "reasons": []}))
                yield chunk, staged, prepare_rows(table, staged.rows) if len(staged.rows) else Rows(())

        trimmed_at = result.rows_read
        for chunk, staged, stage_rows in read_ahead(prepared(), ahead=READ_AHEAD):
            _load_chunk(conn, kind, table, chunk, staged, stage_rows, batch_id, result, ctx, seen_patients)
            if result.rows_read - trimmed_at >= TRIM_EVERY_ROWS:
                release_freed_memory()
                trimmed_at = result.rows_read
            if progress:
                rate = result.rows_read / max(time.perf_counter() - t0, 1e-9)
                progress(
                    f"{path.name}: {result.rows_read:,} rows read, {result.rows_rejected:,} rejected "
                    f"({rate:,.0f} rows/s)"
                )
    result.rows_loaded = result.rows_inserted + result.rows_updated
    result.status = "loaded_with_rejects" if result.rows_rejected else "loaded"
    conn.execute(
        etl_batches.update()
        .where(etl_batches.c.batch_id == batch_id)
        .values(
            status=result.status,
            finished_at=_now(),
            rows_read=result.rows_read,
            rows_inserted=result.rows_inserted,
            rows_updated=result.rows_updated,
            rows_unchanged=result.rows_unchanged,
            rows_rejected=result.rows_rejected,
            message=result.message,
        )
    )
    if conn.dialect.name == "sqlite" and result.rows_read > 100_000:
        # The planner needs statistics after bulk loads; sampled ones (analysis_limit, as SQLite recommends for
        # `PRAGMA optimize`) are enough to pick the indexes and take ms instead of a scan of every table.
        conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("PRAGMA analysis_limit=0")
    else:
        analyze_postgresql(conn, scores, sessions, patients, episodes)


def _ignored_columns(source: Any, ctx: Context) -> str | None:
    """The file's columns the loader does not read, for the batch message: a misspelled optional column
    (`duration` for `duration_min`, `pain` for `pain_during`) would otherwise lose its values without a word.
    None for FHIR (resources, not columns)."""
    canonical = getattr(source, "canonical", None)
    if canonical is None:
        return None
    kind = source.kind
    if kind.name == "visits":
        ignored = [c for c in canonical if c and c not in ctx.measures and c not in kind.required]
        return "ignored columns (not measure codes): " + ", ".join(ignored) if ignored else None
    known = {*kind.required, *kind.optional}
    ignored = [c for c in canonical if c and c not in known]
    if not ignored:
        return None
    return (
        f"ignored columns (not {kind.name} columns; map them in a mapping's [columns] if they are): "
        + ", ".join(ignored)
    )


def _load_chunk(
    conn: Connection,
    kind: Kind,
    table: Table,
    chunk: reader.Chunk,
    staged: Staged,
    stage_rows: Rows,
    batch_id: int,
    result: BatchResult,
    ctx: Context,
    seen_patients: set[str],
) -> None:
    chunk_patients = set(staged.rows["patient_id"].unique().tolist()) if len(staged.rows) else set()
    result.rows_read += chunk.rows_read
    result.rows_unchanged += staged.duplicate_lines
    rejects = staged.rejects
    if len(staged.rows):
        if kind.name == "patients":
            conn.execute(table.delete())
            insert_rows(conn, table, stage_rows)
            conflicts = _merge_patients(conn, batch_id, result)
            # facts later in the same file (FHIR) refer to these patients
            ctx.known_patients.update(chunk_patients)
        else:
            spec = {"scores": SCORE_SPEC, "visits": VISIT_SPEC, "sessions": SESSION_SPEC}[kind.name]
            if spec is SCORE_SPEC and staged.rows["line"].duplicated().any():
                spec = VISIT_SPEC  # several scores from one source row (a FHIR panel): count by row
            conflicts = _load_facts(
                conn, spec, staged.rows, stage_rows, chunk_patients, seen_patients, batch_id, result
            )
        if len(conflicts):
            rejects = pd.concat([rejects, conflicts], ignore_index=True)
        seen_patients.update(chunk_patients)
        result.patients_touched.update(chunk_patients)
        if kind.name == "patients":
            result.patients_changed.update(chunk_patients)
    if len(rejects):
        _insert_rejects(conn, batch_id, chunk, rejects)
        result.rows_rejected += rejects["line"].nunique()
    if chunk.rejects is not None and len(chunk.rejects):
        pre = chunk.rejects
        conn.execute(
            etl_rejects.insert(),
            [
                {"batch_id": batch_id, "source_line": int(line), "raw_row": raw, "reasons": reasons}
                for line, reasons, raw in pre[["line", "reasons", "raw"]].itertuples(index=False, name=None)
            ],
        )
        result.rows_rejected += int(pre["line"].nunique())


def _insert_rejects(conn: Connection, batch_id: int, chunk: reader.Chunk, rejects: pd.DataFrame) -> None:
    if rejects["line"].is_unique:  # one entry per line, the usual case: no grouping in Python
        grouped = pd.Series(rejects["reasons"].to_numpy(), index=rejects["line"].to_numpy()).sort_index()
    else:
        grouped = rejects.groupby("line", sort=True)["reasons"].agg(lambda r: "; ".join(dict.fromkeys(r)))
    if chunk.raw is not None:  # the source keeps each row as it came (FHIR: the resource JSON)
        conn.execute(
            etl_rejects.insert(),
            [
                {
                    "batch_id": batch_id,
                    "source_line": int(line),
                    "raw_row": str(chunk.raw.get(line, "")),
                    "reasons": r,
                }
                for line, r in grouped.items()
            ],
        )
        return
    positions = pd.Index(chunk.lines.to_numpy()).get_indexer(grouped.index)
    missing = positions < 0  # every reject is a line of this chunk; anything else is a bug, not a row to lose
    if missing.any():
        raise RuntimeError(f"rejected line(s) not in the chunk: {grouped.index[missing].tolist()[:5]}")
    source = chunk.frame.iloc[positions, : len(chunk.source_header)]
    raws = reader.raw_text(source, chunk.delimiter)
    conn.execute(
        etl_rejects.insert(),
        [
            {"batch_id": batch_id, "source_line": int(line), "raw_row": raw, "reasons": reasons}
            for (line, reasons), raw in zip(grouped.items(), raws, strict=True)
        ],
    )


# --- merge: stage -> facts ------------------------------------------------------------------------------------------
def _dialect_insert(conn: Connection, table: Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _same(a: Table, b, cols: list[str]):
    b_cols = getattr(b, "c", b)  # a Table, or an upsert's `excluded` collection
    return and_(*[a.c[c].is_not_distinct_from(b_cols[c]) for c in cols])


def _join_on(a: Table, b: Table, cols: list[str], b_cols: list[str] | None = None):
    return and_(*[a.c[c] == b.c[bc] for c, bc in zip(cols, b_cols or cols, strict=True)])


def _classify(
    conn: Connection, s: Table, f: Table, on, same, batch_id: int, per_line: bool, pk
) -> dict[int, int]:
    """Count lines by what merging them will do: 0 unchanged, 1 new, 2 changes an older row, 3 conflicts with an
    earlier line of this same file."""
    cls = case((pk.is_(None), 1), (same, 0), (f.c.batch_id == batch_id, 3), else_=2)
    if per_line:
        inner = (
            select(s.c.line, func.max(cls).label("cls"))
            .select_from(s.outerjoin(f, on))
            .group_by(s.c.line)
            .subquery()
        )
        q = select(inner.c.cls, func.count()).group_by(inner.c.cls)
    else:
        q = select(cls.label("cls"), func.count()).select_from(s.outerjoin(f, on)).group_by(cls)
    return {int(k): int(n) for k, n in conn.execute(q)}


def _pop_conflicts(
    conn: Connection, s: Table, f: Table, on, same, batch_id: int, key: Sequence[str]
) -> pd.DataFrame:
    """Rows repeating a key this same batch wrote from an earlier chunk, with other values: rejected in the words
    of the in-chunk check (etl/validate.py, `_split_duplicates`), whichever chunk the first one was in."""
    q = (
        select(s.c.line, func.min(f.c.source_line))
        .select_from(s.join(f, on))
        .where(f.c.batch_id == batch_id, ~same)
        .group_by(s.c.line)
    )
    found = conn.execute(q).all()
    lines = [int(line) for line, _ in found]
    conn.execute(s.delete().where(s.c.line.in_(lines)))
    return pd.DataFrame(
        {
            "line": lines,
            "reasons": [
                f"duplicate of line {first} (same {', '.join(key)}) with different values"
                for _, first in found
            ],
        }
    )


def _record_revisions(
    conn: Connection, s: Table, f: Table, on, same, batch_id: int, key: list[str], cols: list[str]
) -> None:
    q = (
        select(*[f.c[c] for c in key + cols], f.c.batch_id)
        .select_from(s.join(f, on))
        .where(f.c.batch_id != batch_id, ~same)
    )
    rows = [
        {
            "batch_id": batch_id,
            "table_name": f.name,
            "row_key": json.dumps({k: _jsonable(r[i]) for i, k in enumerate(key)}),
            "old_values": json.dumps({c: _jsonable(r[len(key) + i]) for i, c in enumerate(cols)}),
            "old_batch_id": r[-1],
        }
        for r in conn.execute(q)
    ]
    if rows:
        conn.execute(fact_revisions.insert(), rows)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date | datetime) else v


def _merge_facts(conn: Connection, spec: FactSpec, batch_id: int, result: BatchResult) -> pd.DataFrame:
    """Stage -> facts in SQL: classify every staged line, pop conflicts, record revisions, then one upsert."""
    s, f = spec.stage, spec.target
    on = _join_on(s, f, spec.key)
    same = _same(f, s, spec.values)
    pk = next(iter(f.primary_key.columns))
    counts = _classify(conn, s, f, on, same, batch_id, not spec.one_row_per_line, pk)
    conflicts = pd.DataFrame({"line": [], "reasons": []})
    if counts.get(3):
        conflicts = _pop_conflicts(conn, s, f, on, same, batch_id, spec.key)
    if counts.get(2):
        _record_revisions(conn, s, f, on, same, batch_id, spec.key, spec.values)
    if counts.get(1) or counts.get(2):  # which patients get new or updated rows (their marts are refreshed)
        changes = or_(pk.is_(None), ~same)
        q = select(s.c.patient_id).select_from(s.outerjoin(f, on)).where(changes).distinct()
        result.patients_changed.update(conn.execute(q).scalars())
    result.rows_unchanged += counts.get(0, 0)
    result.rows_inserted += counts.get(1, 0)
    result.rows_updated += counts.get(2, 0)
    if not (counts.get(1) or counts.get(2)):
        # nothing new or changed: skip the upsert, which on PostgreSQL locks every row it finds again
        return conflicts
    cols = spec.key + spec.values
    ins = _dialect_insert(conn, f)
    ins = ins.from_select(
        [*cols, "batch_id", "source_line"],
        select(*[s.c[c] for c in cols], literal(batch_id), s.c.line).where(true()),
    )
    ins = ins.on_conflict_do_update(
        index_elements=spec.key,
        set_={c: ins.excluded[c] for c in [*spec.values, "batch_id", "source_line"]},
        where=~_same(f, ins.excluded, spec.values) & (f.c.batch_id != batch_id),
    )
    conn.execute(ins)
    return conflicts


def _load_facts(
    conn: Connection,
    spec: FactSpec,
    rows: pd.DataFrame,
    stage_rows: Rows,
    chunk_patients: set[str],
    seen_patients: set[str],
    batch_id: int,
    result: BatchResult,
) -> pd.DataFrame:
    """Validated fact rows of one chunk into the warehouse; returns the conflicts found while merging.

    Rows of *fresh* patients (no row in the fact table yet, and none earlier in this file) cannot match anything,
    so they are written straight into the fact table, once (the fast path: a first load of a file writes almost
    every row this way). The rest (patients with facts already, or split across a chunk boundary) go through the
    stage and the classifying merge, which finds unchanged rows, revisions and conflicts. Validation has already
    removed duplicate keys inside the chunk, so a fresh patient's rows are unique. On PostgreSQL a concurrent load
    of the same patients between the check and the insert makes the insert fail on the primary key: the whole
    file rolls back and can be loaded again.
    """
    fresh = (chunk_patients - seen_patients) - _patients_with_facts(
        conn, spec.target, chunk_patients - seen_patients
    )
    if fresh == chunk_patients:  # the usual chunk of a first load: no per-row membership test
        direct = np.ones(len(rows), dtype=bool)
    elif fresh:
        direct = rows["patient_id"].isin(fresh).to_numpy()
    else:
        direct = np.zeros(len(rows), dtype=bool)
    if direct.any():
        if spec.target is sessions:
            _add_exercises_from(conn, rows[direct])
        names = ["source_line", *[c.name for c in spec.stage.columns][1:], "batch_id"]
        part = stage_rows if direct.all() else stage_rows.subset(direct)
        insert_rows(conn, spec.target, part, names, constant=batch_id)
        lines = rows["line"][direct]
        result.rows_inserted += int(len(lines) if spec.one_row_per_line else lines.nunique())
        result.patients_changed.update(fresh)
    if direct.all():
        return pd.DataFrame({"line": [], "reasons": []})
    s = spec.stage
    conn.execute(s.delete())
    insert_rows(conn, s, stage_rows if not direct.any() else stage_rows.subset(~direct))
    # Without statistics the planner hashed the whole fact table for each chunk's merge. Re-export of 1M scores on
    # PostgreSQL, classify: 15.2 s without, 8.6 s with the patient_id column only, 3.5 s with the key columns (the
    # whole table: as fast, 2.4 s more to analyze).
    analyze_postgresql(conn, s, columns=spec.key)
    if spec.target is sessions:
        _add_exercises(conn)
    return _merge_facts(conn, spec, batch_id, result)


def _patients_with_facts(conn: Connection, target: Table, candidates: set[str]) -> set[str]:
    """Which of these patients already have a row in `target`: one index probe per patient that stops at the
    first row (a DISTINCT over their rows read every row, and PostgreSQL planned it as a bitmap scan)."""
    ids = sorted(candidates)
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        has_row = exists().where(target.c.patient_id == patients.c.patient_id)
        q = select(patients.c.patient_id).where(patients.c.patient_id.in_(ids[i : i + 500]), has_row)
        found.update(conn.execute(q).scalars())
    return found


def _add_exercises_from(conn: Connection, rows: pd.DataFrame) -> None:
    """Exercises named by fresh session rows (validation made each name mean one type)."""
    pairs = rows[["exercise", "exercise_type"]].drop_duplicates("exercise")
    ins = _dialect_insert(conn, exercises).on_conflict_do_nothing(index_elements=["exercise"])
    conn.execute(
        ins,
        [{"exercise": e, "exercise_type": t} for e, t in pairs.itertuples(index=False, name=None)],
    )


def _add_exercises(conn: Connection) -> None:
    s = stage_sessions
    ins = _dialect_insert(conn, exercises)
    ins = ins.from_select(
        ["exercise", "exercise_type"],
        select(s.c.exercise, func.min(s.c.exercise_type)).group_by(s.c.exercise),
    ).on_conflict_do_nothing(index_elements=["exercise"])
    conn.execute(ins)


PATIENT_ATTRS = ["clinic_id", "therapist_id", "birth_year", "sex", "first_name", "last_name"]
EPISODE_ATTRS = {"end_date": "episode_end", "side": "side", "symptom_onset": "symptom_onset"}


def _merge_patients(conn: Connection, batch_id: int, result: BatchResult) -> pd.DataFrame:
    """Dimensions first (clinics, therapists, patients: the latest episode's row wins), then the episodes."""
    s = stage_patients
    # Clinics and therapists named by the file.
    ins = _dialect_insert(conn, clinics)
    conn.execute(
        ins.from_select(
            ["clinic_id", "name", "batch_id"],
            select(s.c.clinic_id, func.max(s.c.clinic_name), literal(batch_id)).group_by(s.c.clinic_id),
        ).on_conflict_do_nothing(index_elements=["clinic_id"])
    )
    ins = _dialect_insert(conn, therapists)
    ins = ins.from_select(
        ["therapist_id", "clinic_id", "name", "batch_id"],
        select(
            s.c.therapist_id, func.max(s.c.clinic_id), func.max(s.c.therapist_name), literal(batch_id)
        ).group_by(s.c.therapist_id),
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["therapist_id"],
            set_={"clinic_id": ins.excluded.clinic_id},
            where=therapists.c.clinic_id != ins.excluded.clinic_id,
        )
    )
    # Classification against what is there: an episode row and its patient's attributes.
    e, p = episodes, patients
    on_e = and_(e.c.patient_id == s.c.patient_id, e.c.start_date == s.c.episode_start)
    same_e = and_(*[e.c[ec].is_not_distinct_from(s.c[sc]) for ec, sc in EPISODE_ATTRS.items()])
    same_p = and_(*[p.c[c].is_not_distinct_from(s.c[c]) for c in PATIENT_ATTRS])
    cls = case(
        (e.c.episode_id.is_(None), 1),
        (and_(same_e, same_p), 0),
        (and_(e.c.batch_id == batch_id, ~same_e), 3),
        else_=2,
    )
    joined = s.outerjoin(e, on_e).outerjoin(p, p.c.patient_id == s.c.patient_id)
    counts = {
        int(k): int(n)
        for k, n in conn.execute(select(cls.label("c"), func.count()).select_from(joined).group_by(cls))
    }
    conflicts = pd.DataFrame({"line": [], "reasons": []})
    if counts.get(3):
        conflicts = _pop_conflicts(conn, s, e, on_e, same_e, batch_id, PATIENT_KEY)
    if counts.get(2):
        q = (
            select(
                e.c.patient_id,
                e.c.start_date,
                *[e.c[c] for c in EPISODE_ATTRS],
                *[p.c[c] for c in PATIENT_ATTRS],
                e.c.batch_id,
            )
            .select_from(s.join(e, on_e).join(p, p.c.patient_id == s.c.patient_id))
            .where(~and_(same_e, same_p))
        )
        revs = []
        for r in conn.execute(q).mappings():
            revs.append(
                {
                    "batch_id": batch_id,
                    "table_name": "episodes",
                    "row_key": json.dumps(
                        {"patient_id": r["patient_id"], "start_date": _jsonable(r["start_date"])}
                    ),
                    "old_values": json.dumps({k: _jsonable(r[k]) for k in [*EPISODE_ATTRS, *PATIENT_ATTRS]}),
                    "old_batch_id": r["batch_id"],
                }
            )
        if revs:
            conn.execute(fact_revisions.insert(), revs)
    result.rows_unchanged += counts.get(0, 0)
    result.rows_inserted += counts.get(1, 0)
    result.rows_updated += counts.get(2, 0)

    # Patients: one row per patient from its latest episode in this chunk.
    ranked = select(
        *[s.c[c] for c in ["patient_id", *PATIENT_ATTRS, "line"]],
        func.row_number().over(partition_by=s.c.patient_id, order_by=s.c.episode_start.desc()).label("rn"),
    ).subquery()
    ins = _dialect_insert(conn, patients)
    ins = ins.from_select(
        ["patient_id", *PATIENT_ATTRS, "batch_id", "source_line"],
        select(
            *[ranked.c[c] for c in ["patient_id", *PATIENT_ATTRS]], literal(batch_id), ranked.c.line
        ).where(ranked.c.rn == 1),
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["patient_id"],
            set_={c: ins.excluded[c] for c in [*PATIENT_ATTRS, "batch_id", "source_line"]},
            where=~_same(patients, ins.excluded, PATIENT_ATTRS),
        )
    )
    # Episodes.
    ins = _dialect_insert(conn, episodes)
    ins = ins.from_select(
        ["patient_id", "start_date", *EPISODE_ATTRS, "batch_id", "source_line"],
        select(
            s.c.patient_id,
            s.c.episode_start,
            *[s.c[c] for c in EPISODE_ATTRS.values()],
            literal(batch_id),
            s.c.line,
        ).where(true()),
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["patient_id", "start_date"],
            set_={c: ins.excluded[c] for c in [*EPISODE_ATTRS, "batch_id", "source_line"]},
            where=~_same(episodes, ins.excluded, list(EPISODE_ATTRS)) & (episodes.c.batch_id != batch_id),
        )
    )
    return conflicts


__all__ = ["BatchResult", "KINDS", "exit_code", "load_file", "load_files"]
