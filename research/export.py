"""Export a cohort as a de-identified, reproducible bundle (`python -m etl export`).

    summary = export_bundle(engine, "out/study1", definition, key=key_from_env(), fmt="parquet")

Bundle layout (see docs/research.md):
    cohort.json               the definition (clinic ids as pseudonyms)
    data_dictionary.md/.json  every column: meaning, type, unit, allowed values
    manifest.json             created_at, software version, row counts, sha256 of every file, de-identification
    data/<table>.csv|parquet  patients, episodes, sessions, scores, episode_summary, episode_measure_summary

Memory stays bounded: the cohort's patients and episodes are held (one row each), the facts are read and written
`block_patients` patients at a time (CSV appended, Parquet one row group per block). Row order is fixed (patients
by pseudonym, then episode, then each table's natural key), so the same definition on the same warehouse with the
same key gives byte-identical data files; only manifest.json (created_at) differs.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, func, select

from research import dictionary
from research.cohort import CohortDefinition, age_band, check_against_catalog, cohort_query, exclusion_flow
from research.deid import (
    DATE_MODES,
    LEVELS,
    MAX_SHIFT_DAYS,
    QUASI_IDENTIFIERS,
    SKIP_REASON_MODES,
    WITHHELD,
    ExportKey,
    Pseudonymizer,
    k_anonymise_counts,
    skip_reason_category,
)
from warehouse.config import SummaryRules
from warehouse.schema import (
    clinics,
    episode_measure_summary,
    episode_summary,
    episodes,
    etl_batches,
    patients,
    scores,
    sessions,
)

FORMATS = ("csv", "parquet")
BUNDLE_FORMAT = 1
DEFAULT_BLOCK_PATIENTS = 250  # ~25k sessions and ~33k scores per block: bounds the export's memory
ROW_GROUP_ROWS = 65_536  # Parquet row group size (rows buffered at most: one group plus one read block)
ALL_PATIENTS = CohortDefinition(
    name="all patients", description="every episode in the warehouse", require_baseline=False
)
#: Warehouse columns that never reach a bundle, whatever the options.
REMOVED = (
    "patients.first_name",
    "patients.last_name",
    "patients.birth_year (age band only)",
    "sessions.skip_reason free text (category only, or dropped)",
    "every date element but the year (relative mode)",
    "time of day of measurements (relative mode)",
    "warehouse ids, batch ids and source lines",
    "clinic and therapist names",
)


class ExportError(RuntimeError):
    """The export cannot run as asked (bad option, output directory in use, ...)."""


@dataclass
class ExportSummary:
    """What an export did: returned, printed by the CLI and handed to record_export()."""

    out_dir: str
    created_at: str
    user: str
    cohort_name: str
    cohort_json: str
    format: str
    dates: str
    k: int
    row_counts: dict[str, int]
    files: dict[str, str]
    deidentification: dict[str, Any]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "created_at": self.created_at,
            "user": self.user,
            "cohort": json.loads(self.cohort_json),
            "format": self.format,
            "dates": self.dates,
            "k": self.k,
            "row_counts": self.row_counts,
            "files": self.files,
            "deidentification": self.deidentification,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }


def record_export(engine: Engine, summary: ExportSummary) -> None:
    """One `export` row in the append-only audit log: who exported which definition when, and how many rows."""
    from dashboard.auth.audit import record_export as audit_export

    audit_export(engine, summary, username=summary.user)


# --- writers ----------------------------------------------------------------------------------------------------
_ARROW = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def _conform(df: pd.DataFrame, cols: tuple[dictionary.Col, ...]) -> pd.DataFrame:
    """Exactly the dictionary's columns, in order, with one dtype per dictionary type."""
    out = {}
    for c in cols:
        s = df[c.name] if c.name in df else pd.Series([None] * len(df), index=df.index, dtype=object)
        if c.type == "int":
            s = pd.to_numeric(s, errors="coerce").round().astype("Int64")
        elif c.type == "float":
            s = pd.to_numeric(s, errors="coerce").astype("float64")
        elif c.type == "bool":
            s = s.astype(object).where(s.notna(), None).astype("boolean")
        elif c.type == "date":
            d = pd.to_datetime(s)
            s = pd.Series([x.date() if pd.notna(x) else None for x in d], index=df.index, dtype=object)
        elif c.type == "timestamp":
            s = pd.to_datetime(s).astype("datetime64[us]")
        elif not isinstance(
            s.dtype, pd.StringDtype
        ):  # text already in Arrow stays there (no per-row objects)
            s = s.astype(object).where(s.notna(), None)
        out[c.name] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


class _TableWriter:
    """Appends blocks of one table to its file: CSV text, or Parquet row groups."""

    def __init__(self, path: Path, fmt: str, cols: tuple[dictionary.Col, ...]):
        self.path, self.fmt, self.cols, self.rows = path, fmt, cols, 0
        if fmt == "csv":
            self._fh = path.open("w", encoding="utf-8", newline="")
            self._fh.write(",".join(c.name for c in cols) + "\n")
        else:
            self._schema = pa.schema([pa.field(c.name, _ARROW[c.type]) for c in cols])
            self._pq = pq.ParquetWriter(path, self._schema, compression="zstd")
            self._pending: list[pa.Table] = []
            self._pending_rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if df.empty:
            return
        df = _conform(df, self.cols)
        if self.fmt == "csv":
            df.to_csv(self._fh, header=False, index=False, lineterminator="\n")
        else:
            table = pa.Table.from_pandas(df, schema=self._schema, preserve_index=False)
            self._pending.append(table.replace_schema_metadata(None))
            self._pending_rows += len(df)
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush(final=False)
        self.rows += len(df)

    def _flush(self, final: bool) -> None:
        """Row groups of exactly ROW_GROUP_ROWS rows (the last one shorter), whatever the read blocks were:
        the file's bytes do not depend on block_patients."""
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        full = (len(table) // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
        cut = len(table) if final else full
        for start in range(0, cut, ROW_GROUP_ROWS):
            self._pq.write_table(table.slice(start, min(ROW_GROUP_ROWS, cut - start)).combine_chunks())
        rest = table.slice(cut)
        self._pending = [rest] if len(rest) else []
        self._pending_rows = len(rest)

    def close(self) -> None:
        if self.fmt == "csv":
            self._fh.close()
        else:
            self._flush(final=True)
            self._pq.close()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # one reused 256 KB buffer


# --- reading ----------------------------------------------------------------------------------------------------
_READ_ROWS = 10_000


def _frame(conn: Connection, query) -> pd.DataFrame:
    """The rows as a DataFrame, from plain tuples: given SQLAlchemy Row objects, pandas probes each for
    namedtuple attributes, and every probe raises and catches an exception inside SQLAlchemy (40 % of the
    export's time at 100k patients). The frame is built exactly as before, so its dtypes are the same."""
    result = conn.execute(query)
    cols = list(result.keys())
    parts = [pd.DataFrame([tuple(r) for r in part], columns=cols) for part in result.partitions(_READ_ROWS)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return pd.DataFrame([], columns=cols)
    return pd.concat(parts, ignore_index=True)


def _ts(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).astype("datetime64[us]")


def _resolve_clinics(conn: Connection, d: CohortDefinition, pseud: Pseudonymizer) -> CohortDefinition:
    """A definition read back from a bundle names clinics by pseudonym: map them to the warehouse's ids."""
    if not d.clinics:
        return d
    back = {pseud.clinic(c): c for c in conn.execute(select(clinics.c.clinic_id)).scalars()}
    return d.replace(clinics=tuple(back.get(c, c) for c in d.clinics))


def _windows(ep: pd.DataFrame, as_of: date, rules: SummaryRules) -> pd.DataFrame:
    """Which dates belong to which episode: the rule of etl.summary (from `baseline_days_before` before the start
    to the end, or shortly before the patient's next episode, or as_of)."""
    w = ep.sort_values(["patient_id", "start_date"]).copy()
    before = pd.Timedelta(days=rules.baseline_days_before)
    w["window_start"] = w["start_date"] - before
    next_start = w.groupby("patient_id")["start_date"].shift(-1)
    end = pd.Series(pd.Timestamp(as_of) + pd.Timedelta(days=1), index=w.index)
    end = end.where(w["end_date"].isna(), w["end_date"] + pd.Timedelta(days=1))
    end = end.where(next_start.isna() | (next_start - before > end), next_start - before)
    w["window_end"] = end
    return w[["patient_id", "episode_id", "window_start", "window_end"]]


def _assign(facts: pd.DataFrame, windows: pd.DataFrame, col: str) -> pd.DataFrame:
    if facts.empty:
        return facts.assign(episode_id=pd.Series(dtype="int64"))
    left = facts.sort_values(col, kind="stable")
    right = windows.sort_values("window_start", kind="stable")
    m = pd.merge_asof(
        left, right, left_on=col, right_on="window_start", by="patient_id", direction="backward"
    )
    m = m[m["episode_id"].notna() & (m[col] < m["window_end"])].copy()
    m["episode_id"] = m["episode_id"].astype("int64")
    return m


# --- the export -------------------------------------------------------------------------------------------------
def _software_version() -> str:
    try:
        return metadata.version("sciatica-outcomes")
    except metadata.PackageNotFoundError:
        return "unknown"


def _prepare_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory: choose a new --out")
    tmp = out.parent / f".{out.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "data").mkdir(parents=True)
    return tmp


def export_bundle(
    engine: Engine,
    out_dir: str | Path,
    definition: CohortDefinition | None = None,
    *,
    key: ExportKey,
    fmt: str = "csv",
    k: int = 5,
    dates: str = "relative",
    skip_reasons: str = "categories",
    block_patients: int = DEFAULT_BLOCK_PATIENTS,
    rules: SummaryRules | None = None,
    progress: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    user: str | None = None,
) -> ExportSummary:
    """Write the bundle for `definition` (every episode when None) into `out_dir` (new or empty).

    `progress` gets human-readable lines; `on_progress(done, total)` gets patients written so far after every
    block (a background job's progress bar; raising from it cancels the export, which then leaves nothing
    behind). `user` is who the audit row names: the signed-in dashboard user; default `cli:<OS user>`.
    """
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, got {fmt!r}")
    if dates not in DATE_MODES:
        raise ExportError(f"dates must be one of {tuple(DATE_MODES)}, got {dates!r}")
    if skip_reasons not in SKIP_REASON_MODES:
        raise ExportError(f"skip_reasons must be one of {SKIP_REASON_MODES}, got {skip_reasons!r}")
    if not isinstance(k, int) or k < 1:
        raise ExportError(f"k must be a whole number >= 1, got {k!r}")
    if block_patients < 1:
        raise ExportError("block_patients must be at least 1")
    say = progress or (lambda _m: None)
    tick = on_progress or (lambda _done, _total: None)
    # pyarrow's default allocator (mimalloc) keeps freed pages: over a long export RSS crept up by ~1 MB per
    # thousand patients (318 MB peak at 100k vs 259 MB at 10k); the system allocator returns them. Process-wide
    # and harmless for other pyarrow users (a buffer is freed by the pool that allocated it).
    pa.set_memory_pool(pa.system_memory_pool())
    rules = rules or SummaryRules()
    pseud = Pseudonymizer(key)
    out = Path(out_dir)
    tmp = _prepare_out(out)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":  # one snapshot for every read of the export
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            d = _resolve_clinics(conn, definition or ALL_PATIENTS, pseud)
            check_against_catalog(engine, d)
            result = _export(
                conn,
                engine,
                d,
                tmp,
                pseud,
                fmt,
                k,
                dates,
                skip_reasons,
                block_patients,
                rules,
                say,
                tick,
            )
        flow = exclusion_flow(engine, d)
        result.deid["source"] = {"backend": engine.dialect.name, "latest_batch_id": latest_batch_id(engine)}
        bundle_def = d.replace(clinics=tuple(pseud.clinic(c) for c in d.clinics))
        who = user or f"cli:{getpass.getuser()}"
        summary = _finish(tmp, out, bundle_def, flow, key, fmt, k, dates, skip_reasons, result, t0, who)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record_export(engine, summary)
    say(f"export: {summary.row_counts} in {summary.seconds:.1f} s -> {out}")
    return summary


@dataclass
class _Result:
    counts: dict[str, int]
    deid: dict[str, Any]


def _export(conn, engine, d, tmp, pseud, fmt, k, dates, skip_reasons, block_patients, rules, say, tick):
    """Two passes, neither holding the whole cohort: (1) stream the cohort's episodes once, counting patients per
    quasi-identifier combination and writing (pseudonym, patient) pairs to a scratch SQLite file; small-cell
    protection then runs on the combinations; (2) walk the patients in pseudonym order from the scratch file by
    blocks, and write every table's rows for each block."""
    shifted = dates == "shifted"
    scratch = _Scratch()
    try:
        combos, episodes_before = _scan_cohort(conn, engine, d, pseud, shifted, scratch)
        released, report = k_anonymise_counts(combos, k)
        n_released = sum(report.released_by_level.values())
        level = released["deid_level"].to_numpy()
        episodes_kept = int(combos["episodes"].to_numpy()[level >= 0].sum())
        say(f"export: {n_released:,} patients, {episodes_kept:,} episodes after small-cell protection")
        tick(0, n_released)

        writers = {
            t: _TableWriter(tmp / "data" / f"{t}.{fmt}", fmt, dictionary.columns(t, dates))
            for t in dictionary.TABLES
        }
        try:
            as_of = conn.execute(select(func.max(episode_summary.c.as_of))).scalar()
            as_of = pd.Timestamp(as_of).date() if as_of is not None else date.today()
            qi = {c: released[c].tolist() for c in QUASI_IDENTIFIERS}  # per combination: released values
            counters = {"skip_reasons_categorised": 0, "skip_reasons_other": 0, "skip_reasons_dropped": 0}
            done = 0
            for block in scratch.blocks(level, block_patients):
                _write_block(conn, writers, block, qi, level, scratch, as_of, rules, shifted, skip_reasons,
                             counters, pseud)  # fmt: skip
                done += len(block)
                pa.default_memory_pool().release_unused()
                say(f"export: {done:,}/{n_released:,} patients")
                tick(done, n_released)
        finally:
            for w in writers.values():
                w.close()
    finally:
        scratch.close()

    deid = report.as_json()
    deid.update(
        {
            "episodes_in_cohort": episodes_before,
            "episodes_suppressed": episodes_before - episodes_kept,
            "therapists_withheld_with_clinic": int(combos["n"].to_numpy()[level >= 2].sum()),
            **counters,
        }
    )
    return _Result({t: w.rows for t, w in writers.items()}, deid)


class _Scratch:
    """The cohort's patients by pseudonym, in a private temporary SQLite database (an external sort).

    Rows go out ordered by patient pseudonym, which exists only after hashing every patient: sorting in memory
    would hold an entry per patient, so SQLite sorts on disk and the export reads it back block by block. Also
    holds which episodes are in the cohort, looked up per block.

    It links patient ids to pseudonyms, so it must never sit next to a bundle or outlive the export: SQLite's
    anonymous temporary database (empty file name) lives in its temp directory, is unlinked as soon as it is
    opened (nothing to find even if the process is killed) and pages to disk past its cache.
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect("")
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4000; PRAGMA temp_store=FILE;"
            "CREATE TABLE p (pid TEXT NOT NULL, patient_id TEXT NOT NULL, combo INTEGER NOT NULL);"
            "CREATE TABLE e (patient_id TEXT NOT NULL, episode_id INTEGER NOT NULL);"
        )

    def add(self, pats: list[tuple[str, str, int]], eps: list[tuple[str, int]]) -> None:
        self.db.executemany("INSERT INTO p VALUES (?, ?, ?)", pats)
        self.db.executemany("INSERT INTO e VALUES (?, ?)", eps)

    def finish(self) -> None:
        self.db.execute("CREATE INDEX e_patient ON e (patient_id)")
        self.db.commit()

    def blocks(self, level: np.ndarray, size: int) -> Iterator[list[tuple[str, str, int]]]:
        """Released patients as (patient_id, pseudonym, combination) in pseudonym order, `size` at a time."""
        cur = self.db.execute("SELECT patient_id, pid, combo FROM p ORDER BY pid, patient_id")
        block: list[tuple[str, str, int]] = []
        for row in cur:
            if level[row[2]] >= 0:
                block.append(row)
                if len(block) == size:
                    yield block
                    block = []
        if block:
            yield block

    def episode_ids(self, patient_ids: list[str]) -> set[int]:
        out: set[int] = set()
        for i in range(0, len(patient_ids), 500):
            part = patient_ids[i : i + 500]
            marks = ",".join("?" * len(part))  # only placeholders: the ids are bound parameters
            sql = f"SELECT episode_id FROM e WHERE patient_id IN ({marks})"  # noqa: S608
            out.update(r[0] for r in self.db.execute(sql, part))
        return out

    def close(self) -> None:
        self.db.close()


def _na(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


def _scan_cohort(conn, engine, d, pseud, shifted, scratch: _Scratch) -> tuple[pd.DataFrame, int]:
    """One pass over the cohort's episodes, ordered by patient then start: each patient's quasi-identifiers come
    from their first episode (age at its start, its start year, possibly shifted). Returns one row per distinct
    combination (QUASI_IDENTIFIERS, `n` patients, `episodes`) and the number of cohort episodes."""
    e, p = episodes, patients
    ids = cohort_query(engine, d).subquery()
    q = (
        select(e.c.episode_id, e.c.patient_id, e.c.start_date, p.c.clinic_id, p.c.birth_year, p.c.sex)
        .select_from(
            e.join(ids, ids.c.episode_id == e.c.episode_id).join(p, p.c.patient_id == e.c.patient_id)
        )
        .order_by(e.c.patient_id, e.c.start_date)
    )
    index: dict[tuple, int] = {}
    n_pat: list[int] = []
    n_ep: list[int] = []
    pats: list[tuple[str, str, int]] = []
    eps: list[tuple[str, int]] = []
    current, combo, total = None, -1, 0
    # a server-side cursor on PostgreSQL (psycopg would otherwise fetch the whole result at once)
    for part in conn.execute(q.execution_options(stream_results=True)).partitions(_READ_ROWS):
        for episode_id, patient_id, start, clinic_id, birth_year, sex in part:
            if patient_id != current:
                current = patient_id
                start = pd.Timestamp(start)
                shown = start - pd.Timedelta(days=pseud.shift_days(patient_id) if shifted else 0)
                birth_year = _na(birth_year)
                key = (
                    age_band(None if birth_year is None else start.year - birth_year),
                    _na(sex),
                    _na(clinic_id),
                    shown.year,
                )
                combo = index.setdefault(key, len(index))
                if combo == len(n_pat):
                    n_pat.append(0)
                    n_ep.append(0)
                n_pat[combo] += 1
                pats.append((pseud.patient(patient_id), patient_id, combo))
            n_ep[combo] += 1
            eps.append((patient_id, episode_id))
            total += 1
        scratch.add(pats, eps)
        pats, eps = [], []
    scratch.finish()
    combos = pd.DataFrame(list(index), columns=list(QUASI_IDENTIFIERS))
    combos["n"] = pd.Series(n_pat, dtype="int64")
    combos["episodes"] = pd.Series(n_ep, dtype="int64")
    return combos, total


def _days(ts: pd.Series, start: pd.Series) -> pd.Series:
    return (ts.dt.normalize() - start).dt.days


def _write_block(
    conn, writers, block, qi, level, scratch, as_of, rules, shifted, skip_reasons, counters, pseud
):
    """Every table's rows for one block of released patients (in pseudonym order)."""
    pids = [r[0] for r in block]
    all_ep = _frame(
        conn,
        select(
            episodes.c.episode_id,
            episodes.c.patient_id,
            episodes.c.start_date,
            episodes.c.end_date,
            episodes.c.side,
            episodes.c.symptom_onset,
        ).where(episodes.c.patient_id.in_(pids)),
    )
    for col in ("start_date", "end_date", "symptom_onset"):
        all_ep[col] = _ts(all_ep[col])
    windows = _windows(all_ep, as_of, rules)
    wanted = scratch.episode_ids(pids)

    # the block's cohort episodes, numbered per patient by start, in pseudonym order
    pos = {pid: i for i, pid in enumerate(pids)}
    ep = all_ep[all_ep["episode_id"].isin(wanted)].sort_values(["patient_id", "start_date"], kind="stable")
    ep = ep.reset_index(drop=True)
    shift = {pid: (pseud.shift_days(pid) if shifted else 0) for pid in pids}
    ep["shift"] = pd.to_timedelta([shift[x] for x in ep["patient_id"]], unit="D")
    ep["shown_start"] = ep["start_date"] - ep["shift"]
    ep["pid"] = [block[pos[x]][1] for x in ep["patient_id"]]
    ep["pos"] = [pos[x] for x in ep["patient_id"]]
    ep["deid_level"] = [int(level[block[pos[x]][2]]) for x in ep["patient_id"]]
    ep["eid"] = [
        pseud.episode(pid, s.date().isoformat())
        for pid, s in zip(ep["patient_id"], ep["start_date"], strict=True)
    ]
    ep["episode_number"] = ep.groupby("patient_id").cumcount() + 1
    ep = ep.sort_values(["pos", "episode_number"], kind="stable").reset_index(drop=True)
    ep_ids = ep["episode_id"].tolist()
    wanted = set(ep_ids)

    # patients: released quasi-identifiers of their combination
    therapist_of = dict(
        conn.execute(
            select(patients.c.patient_id, patients.c.therapist_id).where(patients.c.patient_id.in_(pids))
        ).all()
    )
    combo = [r[2] for r in block]
    lv = [int(level[c]) for c in combo]
    n_eps = ep.groupby("patient_id").size()
    writers["patients"].write(
        pd.DataFrame(
            {
                "patient_id": [r[1] for r in block],
                "sex": [qi["sex"][c] for c in combo],
                "age_band": [qi["age_band"][c] for c in combo],
                "clinic_id": [
                    WITHHELD if qi["clinic_id"][c] == WITHHELD else pseud.clinic(qi["clinic_id"][c])
                    for c in combo
                ],
                "therapist_id": [
                    WITHHELD if lvl >= 2 else pseud.therapist(therapist_of.get(pid))
                    for lvl, pid in zip(lv, pids, strict=True)
                ],
                "start_year": [qi["start_year"][c] for c in combo],
                "n_episodes": n_eps.reindex(pids).tolist(),
                "deid_level": lv,
            }
        )
    )
    writers["episodes"].write(
        pd.DataFrame(
            {
                "episode_id": ep["eid"],
                "patient_id": ep["pid"],
                "episode_number": ep["episode_number"],
                "start_year": ep["shown_start"].dt.year,
                "start_date": ep["shown_start"],
                "end_date": ep["end_date"] - ep["shift"],
                "symptom_onset": ep["symptom_onset"] - ep["shift"],
                "end_day": (ep["end_date"] - ep["start_date"]).dt.days,
                "symptom_duration_days": (ep["start_date"] - ep["symptom_onset"]).dt.days,
                "side": ep["side"].where(ep["side"] != "", None),
                "completed": ep["end_date"].notna(),
            }
        )
    )
    info = ep.set_index("episode_id")[["eid", "pid", "pos", "episode_number", "start_date", "shift"]]
    info = info.assign(withheld=(ep["deid_level"] >= 2).to_numpy())

    def attach(df: pd.DataFrame, col: str) -> pd.DataFrame:
        df = _assign(df, windows, col)
        df = df[df["episode_id"].isin(wanted)]
        return df.join(info, on="episode_id")

    # sessions
    s = sessions.c
    se = _frame(
        conn,
        select(
            s.patient_id,
            s.session_date,
            s.setting,
            s.exercise,
            s.exercise_type,
            s.status,
            s.sets,
            s.reps,
            s.duration_min,
            s.prescribed_sets,
            s.prescribed_reps,
            s.prescribed_min,
            s.pain_during,
            s.skip_reason,
            s.therapist_id,
        ).where(s.patient_id.in_(pids)),  # fmt: skip
    )
    se["session_date"] = _ts(se["session_date"])
    se = attach(se, "session_date").sort_values(
        ["pos", "episode_number", "session_date", "setting", "exercise"]
    )
    reasons = se["skip_reason"].where(
        se["skip_reason"].notna() & (se["skip_reason"].astype(str).str.strip() != "")
    )
    cats = [skip_reason_category(r) for r in reasons]
    if skip_reasons == "drop":
        counters["skip_reasons_dropped"] += int(reasons.notna().sum())
        cats = [None] * len(se)
    else:
        counters["skip_reasons_categorised"] += sum(c is not None for c in cats)
        counters["skip_reasons_other"] += sum(c == "other" for c in cats)
    therapist = [
        None if t is None or t != t else (WITHHELD if w else pseud.therapist(t))
        for t, w in zip(se["therapist_id"], se["withheld"], strict=True)
    ]
    out = se.drop(columns=["patient_id", "episode_id", "skip_reason", "therapist_id"]).assign(
        patient_id=se["pid"],
        episode_id=se["eid"],
        day=_days(se["session_date"], se["start_date"]),
        session_date=se["session_date"] - se["shift"],
        skip_reason=cats,
        therapist_id=therapist,
    )
    writers["sessions"].write(out)

    # scores
    c = scores.c
    sc = _frame(
        conn, select(c.patient_id, c.measure, c.recorded_at, c.side, c.value).where(c.patient_id.in_(pids))
    )
    sc["recorded_at"] = _ts(sc["recorded_at"])
    sc = attach(sc, "recorded_at").sort_values(["pos", "episode_number", "measure", "side", "recorded_at"])
    writers["scores"].write(
        pd.DataFrame(
            {
                "patient_id": sc["pid"],
                "episode_id": sc["eid"],
                "measure": sc["measure"],
                "side": sc["side"].where(sc["side"] != "", None),
                "day": _days(sc["recorded_at"], sc["start_date"]),
                "recorded_at": sc["recorded_at"] - sc["shift"],
                "value": sc["value"],
            }
        )
    )

    # summaries of the cohort's episodes
    es = episode_summary.c
    sm = _frame(
        conn,
        select(
            es.episode_id,
            es.is_active,
            es.visits,
            es.home_scheduled,
            es.home_done,
            es.adherence,
            es.home_scheduled_14d,
            es.home_done_14d,
            es.adherence_14d,
            es.first_activity,
            es.last_activity,
        ).where(es.episode_id.in_(ep_ids)),  # fmt: skip
    )
    sm = sm.join(info, on="episode_id").sort_values(["pos", "episode_number"])
    for col in ("first_activity", "last_activity"):
        sm[col] = _ts(sm[col])
    writers["episode_summary"].write(
        sm.assign(
            episode_id=sm["eid"],
            patient_id=sm["pid"],
            first_activity_day=_days(sm["first_activity"], sm["start_date"]),
            last_activity_day=_days(sm["last_activity"], sm["start_date"]),
            first_activity=sm["first_activity"] - sm["shift"],
            last_activity=sm["last_activity"] - sm["shift"],
        )
    )
    m = episode_measure_summary.c
    ms = _frame(
        conn,
        select(
            m.episode_id,
            m.measure,
            m.n_values,
            m.baseline_value,
            m.baseline_at,
            m.latest_value,
            m.latest_at,
            m.change,
            m.pct_change,
            m.improvement,
            m.mcid_reached,
            m.worsened,
        ).where(m.episode_id.in_(ep_ids)),  # fmt: skip
    )
    ms = ms.join(info, on="episode_id").sort_values(["pos", "episode_number", "measure"])
    for col in ("baseline_at", "latest_at"):
        ms[col] = _ts(ms[col])
    writers["episode_measure_summary"].write(
        ms.assign(
            episode_id=ms["eid"],
            patient_id=ms["pid"],
            baseline_day=_days(ms["baseline_at"], ms["start_date"]),
            latest_day=_days(ms["latest_at"], ms["start_date"]),
            baseline_at=ms["baseline_at"] - ms["shift"],
            latest_at=ms["latest_at"] - ms["shift"],
        )
    )


def _finish(tmp, out, d, flow, key, fmt, k, dates, skip_reasons, result: _Result, t0, user) -> ExportSummary:
    cohort_json = d.to_json()
    (tmp / "cohort.json").write_text(cohort_json, encoding="utf-8")
    (tmp / "data_dictionary.json").write_text(dictionary.as_json(dates), encoding="utf-8")
    (tmp / "data_dictionary.md").write_text(dictionary.as_markdown(dates, fmt), encoding="utf-8")
    files = {
        p.relative_to(tmp).as_posix(): sha256_file(p)
        for p in sorted(tmp.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    created_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    deid = {
        "standard": "HIPAA Safe Harbor (45 CFR 164.514(b)(2))"
        if dates == "relative"
        else "limited data set / expert determination (per-patient date shift; not Safe Harbor)",
        "dates": dates,
        "dates_meaning": DATE_MODES[dates],
        "date_shift_days": f"1-{MAX_SHIFT_DAYS} back, one offset per patient, from the keyed hash"
        if dates == "shifted"
        else None,
        "pseudonyms": "HMAC-SHA256 of the warehouse id under a secret key that is not in this bundle",
        "key_source": key.source,
        "key_fingerprint": key.fingerprint,
        "ages": "10-year bands at the episode start; over 89 as 90+",
        "skip_reasons": skip_reasons,
        "removed": list(REMOVED),
        "quasi_identifiers": list(QUASI_IDENTIFIERS),
        "generalisation_levels": list(LEVELS),
        **result.deid,
    }
    notes = []
    if key.is_demo:
        notes.append(
            "made with the public insecure demo key: pseudonyms can be reversed; synthetic data only"
        )
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "created_at": created_at,
        "software": {"name": "sciatica-outcomes", "version": _software_version()},
        "cohort": {"name": d.name, "file": "cohort.json", "sha256": files["cohort.json"]},
        "cohort_flow": flow.to_dict(orient="records"),
        "format": fmt,
        "tables": {
            t: {"file": f"data/{t}.{fmt}", "rows": n, "sha256": files[f"data/{t}.{fmt}"]}
            for t, n in result.counts.items()
        },
        "files": files,
        "deidentification": deid,
        "source": deid.pop("source"),
        "notes": notes,
    }
    (tmp / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    if out.exists():
        out.rmdir()  # empty, checked before
    tmp.rename(out)
    return ExportSummary(
        out_dir=str(out),
        created_at=created_at,
        user=user,
        cohort_name=d.name,
        cohort_json=cohort_json,
        format=fmt,
        dates=dates,
        k=k,
        row_counts=dict(result.counts),
        files=files,
        deidentification=deid,
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


def latest_batch_id(engine: Engine) -> int | None:
    """The newest load batch: with the definition, what a rebuild needs to match."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(etl_batches.c.batch_id))).scalar()
