"""`python -m etl inspect FILE`: what is this export, a draft mapping for it, and what would load - writing nothing.

Guesses the format, encoding, delimiter, decimal mark, lines above the header, date formats, the file kind and
which of its headers are which canonical column, then prints a draft mapping (TOML) and runs a dry load: the full
load (validation, merge, rejects) inside a transaction that is rolled back, against the warehouse given (so that
known patients count) or a throwaway one.
"""

from __future__ import annotations

import csv
import functools
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from etl.kinds import KINDS, detect_kind
from etl.mapping import BUILTIN_VALUES, Mapping, load_mapping
from etl.read import FileLevelError, detect_format, utf16_encoding
from etl.validate import date_part
from warehouse.catalog import measure_rows

SAMPLE_BYTES = 256 * 1024
SAMPLE_ROWS = 200
#: Header spellings seen in clinic exports -> canonical column (normalised: lower case, words only).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "patient_id": (
        "patient",
        "patient id",
        "pat id",
        "pid",
        "mrn",
        "patient number",
        "patient no",
        "user",
        "client",
        "client id",
        "patientennummer",
        "patienten id",
        "id",
    ),
    "recorded_at": (
        "recorded at",
        "date time",
        "datetime",
        "timestamp",
        "measured at",
        "assessment date",
        "recorded",
        "date",
        "datum",
        "time",
    ),
    "measure": ("measure", "measurement", "test", "outcome", "scale", "messung", "item"),
    "value": ("value", "score", "result", "wert", "reading"),
    "side": ("side", "seite", "laterality", "leg"),
    "visit_date": ("visit date", "visit", "date", "datum", "termin", "appointment"),
    "session_date": ("session date", "day", "date", "datum", "tag"),
    "setting": ("setting", "location", "place", "where", "ort"),
    "exercise": ("exercise", "exercise name", "ubung", "übung", "activity"),
    "exercise_type": ("exercise type", "category", "type", "kategorie"),
    "status": ("status", "done", "completed", "erledigt", "result status"),
    "sets": ("sets", "sets done", "saetze", "sätze"),
    "reps": ("reps", "reps done", "repetitions", "wiederholungen"),
    "duration_min": ("duration min", "duration", "minutes", "mins", "minuten", "dauer"),
    "prescribed_sets": ("target sets", "prescribed sets", "planned sets"),
    "prescribed_reps": ("target reps", "prescribed reps", "planned reps"),
    "prescribed_min": ("target minutes", "prescribed minutes", "planned minutes", "target min"),
    "pain_during": ("pain during", "pain", "pain 0 10", "schmerz"),
    "skip_reason": ("skip reason", "reason", "grund", "why skipped"),
    "clinic_id": ("clinic", "clinic id", "site", "praxis", "location id"),
    "therapist_id": ("therapist", "therapist id", "pt", "clinician", "therapeut"),
    "birth_year": ("birth year", "year of birth", "yob", "born", "geburtsjahr"),
    "sex": ("sex", "gender", "geschlecht"),
    "episode_start": (
        "episode start",
        "start",
        "start date",
        "intake date",
        "referral date",
        "beginn",
        "behandlungsbeginn",
        "aufnahme",
    ),
    "episode_end": (
        "episode end",
        "end",
        "end date",
        "discharge date",
        "discharged",
        "behandlungsende",
        "entlassung",
    ),
    "symptom_onset": ("symptom onset", "onset", "onset date"),
    "first_name": ("first name", "given name", "vorname"),
    "last_name": ("last name", "family name", "surname", "nachname"),
    "pain_leg": ("leg pain", "pain leg", "nprs leg", "beinschmerz", "leg pain 0 10"),
    "pain_back": ("back pain", "pain back", "nprs back", "ruckenschmerz", "rückenschmerz", "back pain 0 10"),
    "numbness": ("numbness", "tingling", "taubheit", "numbness 0 10"),
    "odi": ("odi", "oswestry", "oswestry disability index"),
    "slr_left": ("slr left", "slr l", "straight leg raise left"),
    "slr_right": ("slr right", "slr r", "straight leg raise right"),
    "lumbar_flexion": ("lumbar flexion", "flexion"),
    "vas_pain": ("vas", "vas pain"),
    "rmdq": ("rmdq", "roland morris"),
    "sbi": ("sbi", "sciatica bothersomeness", "sciatica bothersomeness index"),
    "fingertip_floor": ("fingertip floor", "fingertip to floor", "ftf", "fba", "finger boden abstand"),
    "schober": ("schober", "modified schober"),
    "promis_pf": ("promis pf", "promis physical function"),
    "promis_pi": ("promis pi", "promis pain interference"),
}


@functools.cache
def measure_columns() -> frozenset[str]:
    """Every measure of the catalog: a visits column or a scores `measure` value named after one loads as it is.
    Read on first use, not at import (the catalog is a file)."""
    return frozenset(m["code"] for m in measure_rows())


DATE_COLUMNS = {"recorded_at", "visit_date", "session_date", "episode_start", "episode_end", "symptom_onset"}
LABEL_COLUMNS = ("status", "setting", "sex", "side")
DATE_CANDIDATES = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%y",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y",
    "%Y/%m/%d",
)


def _norm(text: str) -> str:
    text = str(text).strip().lstrip("\ufeff").casefold()
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


@dataclass
class Guess:
    path: Path
    format: str
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    decimal: str = "."
    skip_rows: int = 0
    sheet: str | None = None
    header: list[str] = field(default_factory=list)
    kind: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # their header -> canonical
    dates: dict[str, str] = field(default_factory=dict)  # canonical column -> format
    unknown_labels: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fhir: dict[str, Counter] = field(default_factory=dict)

    def toml(self) -> str:
        """The draft mapping."""
        out = [
            f"# Draft mapping for {self.path.name}, guessed by `python -m etl inspect`: check every line.",
            "",
        ]
        out.append("[source]")
        out.append(f'name = "{re.sub(r"[^A-Za-z0-9_]+", "_", self.path.stem)}"')
        if self.kind and self.format != "fhir":
            out.append(f'kind = "{self.kind}"')
        if self.format != "csv":
            out.append(f'format = "{self.format}"')
        if self.format == "csv":
            out.append(f'encoding = "{self.encoding}"')
            out.append('delimiter = "{}"'.format("\\t" if self.delimiter == "\t" else self.delimiter))
            out.append(f'decimal = "{self.decimal}"')
            if self.skip_rows:
                out.append(f"skip_rows = {self.skip_rows}")
        if self.format == "xlsx":
            if self.sheet:
                out.append(f'sheet = "{self.sheet}"')
            out.append(f"header_row = {self.skip_rows + 1}")
        if self.format == "fhir":
            out += [
                "",
                "# Patients carry no clinic or therapist in most exports: name them here.",
                "[constants]",
            ]
            out += ['clinic_id = "CHANGE-ME"', 'therapist_id = "CHANGE-ME"']
            untracked = self.fhir.get("untracked") or Counter()
            if untracked:
                out += [
                    "",
                    "# Observation codes in the file that no measure tracks; map the ones you need:",
                    "[codes]",
                ]
                out += [f'# "{code}" = "measure_code"   # x{n}' for code, n in untracked.most_common(20)]
            out += [
                "",
                '# Procedures / Encounters that are exercise sessions: "system|code" = exercise_type',
                "[sessions]",
            ]
            return "\n".join(out) + "\n"
        plain = Mapping()
        renames = {t: ours for t, ours in self.columns.items() if plain.canonical_header([t])[0] != ours}
        unmapped = [h for h in self.header if h and h not in self.columns]
        if renames or unmapped:
            out += ["", "[columns]"]
            out += [f'"{theirs}" = "{ours}"' for theirs, ours in renames.items()]
            out += [f'# "{h}" = ?   (not recognised: ignored unless mapped)' for h in unmapped]
        for col, labels in self.unknown_labels.items():
            out += ["", f"[values.{col}]"]
            for label in labels:
                code = _measure_code(label) if col == "measure" else None
                if code:
                    out.append(f'"{label}" = "{code}"')
                else:
                    allowed = ", ".join(sorted(_canonical_values(col))) or "a measure code"
                    out.append(f'# "{label}" = ?   (one of {allowed})')
        missing = (
            [c for c in KINDS[self.kind].required if c not in self.columns.values()] if self.kind else []
        )
        if missing:
            out += [
                "",
                "# Required columns the file does not have: a fixed value for every row, if there is one",
                "[constants]",
            ]
            out += [f'# {c} = "?"' for c in missing]
        if self.dates:
            out += ["", "[dates]"]
            out += [f'{col} = "{fmt}"' for col, fmt in self.dates.items()]
        return "\n".join(out) + "\n"


def _measure_code(label: str) -> str | None:
    n = _norm(label)
    stripped = _norm(re.sub(r"\(.*?\)|\[.*?\]", "", label))
    return next(
        (c for c in sorted(measure_columns()) if n in SYNONYMS.get(c, ()) or stripped in SYNONYMS.get(c, ())),
        None,
    )


def _canonical_values(col: str) -> set[str]:
    return set(BUILTIN_VALUES.get(col, {}).values()) - {""}


# --- CSV sniffing ----------------------------------------------------------------------------------------------------
def _guess_encoding(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    utf16 = utf16_encoding(raw)
    if utf16:
        return utf16
    try:
        raw.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 4 and len(raw) >= SAMPLE_BYTES:
            return "utf-8-sig"  # a character cut at the sample's edge
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _guess_layout(lines: list[str]) -> tuple[str, int]:
    """(delimiter, lines above the header): the separator that splits most lines into the same number of fields."""
    best = (",", 0, -1.0)
    for delim in (",", ";", "\t", "|"):
        counts = [len(r) for r in csv.reader(lines, delimiter=delim)]
        if not counts:
            continue
        modal, freq = Counter(counts).most_common(1)[0]
        if modal < 2:
            continue
        score = freq / len(counts) + modal / 1000
        if score > best[2]:
            skip = next((i for i, n in enumerate(counts) if n == modal), 0)
            best = (delim, skip, score)
    return best[0], best[1]


def _guess_date(values: list[str]) -> str | None:
    values = [v for v in values if v][:SAMPLE_ROWS]
    if not values:
        return None
    for fmt in DATE_CANDIDATES:
        day_only = date_part(fmt)
        if all(_parses(v, fmt) or _parses(v, day_only) for v in values):
            return fmt  # a date alone in a column of date-times is read as 00:00
    return None


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _looks_like_date(values: list[str]) -> bool:
    values = [v for v in values if v][:SAMPLE_ROWS]
    return _guess_date(values) is not None or all(re.match(r"\d{4}-\d{2}-\d{2}", v) for v in values)


def _match_header(header: list[str], columns: dict[str, list[str]]) -> tuple[str | None, dict[str, str]]:
    """(kind, their header -> canonical) choosing the kind whose required columns the header covers best."""
    best: tuple[int, str | None, dict[str, str]] = (-1, None, {})
    for kind in KINDS.values():
        wanted = (
            set(kind.required) | set(kind.optional) | (measure_columns() if kind.name == "visits" else set())
        )
        taken: dict[str, str] = {}
        for h in header:
            n = _norm(h)
            if not n:
                continue
            stripped = _norm(re.sub(r"\(.*?\)|\[.*?\]", "", h))
            direct = n.replace(" ", "_")
            candidates = [direct] if direct in wanted else []
            candidates += [
                c for c in SYNONYMS if c in wanted and (n in SYNONYMS[c] or stripped in SYNONYMS[c])
            ]
            for c in candidates:
                if c in taken.values():
                    continue
                if c in DATE_COLUMNS and any(columns.get(h, [])) and not _looks_like_date(columns[h]):
                    continue
                taken[h] = c
                break
        covered = len(set(kind.required) & set(taken.values()))
        score = covered * 100 - (len(kind.required) - covered) * 10 + len(taken)
        if covered == len(kind.required):
            score += 1000
        if score > best[0]:
            best = (score, kind.name, taken)
    kind = best[1] if best[0] >= 1000 else None
    if kind is None:
        detected = detect_kind(Mapping(columns=best[2]).canonical_header(header))
        kind = detected.name if detected else best[1]
    return kind, best[2]


def _columns_of(rows: list[list[str]], header: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {h: [] for h in header}
    for r in rows:
        for h, v in zip(header, r, strict=False):
            out[h].append(v.strip())
    return out


def _finish_guess(g: Guess, rows: list[list[str]]) -> None:
    cols = _columns_of(rows, g.header)
    g.kind, g.columns = _match_header(g.header, cols)
    for theirs, ours in g.columns.items():
        values = cols.get(theirs, [])
        if ours in DATE_COLUMNS:
            fmt = _guess_date(values)
            if fmt is None and any(values):
                g.notes.append(f"{theirs}: dates in a format not recognised; set [dates] {ours}")
            elif (
                fmt
                and fmt not in ("%Y-%m-%d",)
                and not (ours == "recorded_at" and fmt.startswith("%Y-%m-%d"))
            ):
                g.dates[ours] = fmt
                if fmt.startswith(("%m/%d", "%d/%m")):
                    ambiguous = all(
                        int(v.split("/")[0]) <= 12 and int(v.split("/")[1]) <= 12 for v in values if v
                    )
                    if ambiguous:
                        g.notes.append(
                            f"{theirs}: day and month cannot be told apart in these rows; check {fmt}"
                        )
        if ours == "measure":
            codes = measure_columns()
            unknown = sorted({v for v in values if v and v.lower() not in codes})
            if unknown:
                g.unknown_labels["measure"] = unknown[:30]
        if ours in LABEL_COLUMNS:
            known = set(BUILTIN_VALUES.get(ours, {}))
            unknown = sorted({v for v in values if v and v.lower() not in known})
            if unknown:
                g.unknown_labels[ours] = unknown[:20]
    # a date column still empty in this export (no discharges yet) will be written like the file's other dates
    day_formats = {date_part(f) for f in g.dates.values()}
    if len(day_formats) == 1:
        for theirs, ours in g.columns.items():
            if ours in DATE_COLUMNS and ours not in g.dates and not any(cols.get(theirs, [])):
                g.dates[ours] = next(iter(day_formats))
    if g.delimiter != ",":
        numeric = [v for h, ours in g.columns.items() for v in cols.get(h, []) if ours not in DATE_COLUMNS]
        if any(re.fullmatch(r"-?\d+,\d+", v) for v in numeric):
            g.decimal = ","


def guess(path: Path, sheet: str | None = None) -> Guess:
    fmt = detect_format(path, Mapping())
    g = Guess(path=path, format=fmt)
    if fmt == "fhir":
        from etl.fhir import FhirSource

        src = FhirSource(path, Mapping())
        g.kind = "fhir"
        g.fhir = {"resources": src.index.resource_types, "untracked": src.index.untracked}
        return g
    if fmt == "xlsx":
        xs = _first_table(path, sheet)
        g.sheet, g.header, g.skip_rows = xs.sheet_name, xs.source_header, xs.header_row - 1
        rows = []
        for _, cells in xs.rows(Mapping().canonical_header(xs.source_header)):
            rows.append(cells)
            if len(rows) >= SAMPLE_ROWS:
                break
        _finish_guess(g, rows)
        g.decimal = "."
        return g
    with path.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    g.encoding = _guess_encoding(raw)
    text = raw.decode(
        g.encoding.replace("-sig", "") if g.encoding != "utf-8-sig" else "utf-8-sig", errors="replace"
    )
    lines = text.splitlines()[: SAMPLE_ROWS + 20]
    if len(raw) >= SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    g.delimiter, g.skip_rows = _guess_layout(lines)
    parsed = list(csv.reader(lines[g.skip_rows :], delimiter=g.delimiter))
    if not parsed:
        raise FileLevelError(f"{path.name}: the file is empty")
    g.header = [h.strip() for h in parsed[0]]
    _finish_guess(g, parsed[1:])
    return g


def _first_table(path: Path, sheet: str | None):
    """The named sheet, else the first sheet whose top rows hold a table (a cover sheet is passed over)."""
    from etl.xlsx import XlsxError, XlsxSheet, sheet_names

    if sheet:
        return XlsxSheet(path, Mapping(sheet=sheet))
    first_error = None
    for name in sheet_names(path):
        try:
            return XlsxSheet(path, Mapping(sheet=name))
        except XlsxError as exc:
            first_error = first_error or exc
    raise first_error or XlsxError("the workbook has no sheet with a table")


def mapping_from_guess(g: Guess, directory: Path) -> Mapping:
    path = directory / "draft.toml"
    path.write_text(g.toml(), encoding="utf-8")
    return load_mapping(path)


# --- dry run ---------------------------------------------------------------------------------------------------------
def _reason_key(reason: str) -> str:
    return re.sub(r"'[^']*'", "'…'", reason.strip())


@dataclass
class DryRun:
    result: object
    top_reasons: list[tuple[str, int, int]]  # (reason, rows, first line)
    warehouse: str


def dry_run(
    path: Path, mapping: Mapping, db_url: str | None, as_of: date | None, kind: str | None = None
) -> DryRun:
    """Load the file inside a transaction that is rolled back: counts and the top reasons, nothing written."""
    from sqlalchemy import select

    from etl import read as reader
    from etl.load import BatchResult, _load_in_transaction
    from warehouse.db import make_engine
    from warehouse.migrate import current_revision, head_revision, upgrade
    from warehouse.schema import etl_rejects

    with tempfile.TemporaryDirectory(prefix="etl-inspect-") as tmp:
        if (
            db_url
            and db_url.startswith("sqlite:///")
            and not Path(db_url.removeprefix("sqlite:///")).is_file()
        ):
            db_url = None  # do not create a warehouse file by looking
        engine = make_engine(db_url) if db_url else None
        label = engine.url.render_as_string(hide_password=True) if engine else ""
        if engine is None or current_revision(engine) != head_revision():
            if engine is not None:
                engine.dispose()
            engine = make_engine(f"sqlite:///{tmp}/scratch.sqlite")
            upgrade(engine)
            label = (
                "a new empty warehouse (no known patients: facts of patients not in this file are rejected)"
            )
        result = BatchResult(file=str(path))
        reasons: Counter = Counter()
        first: dict[str, int] = {}
        try:
            source = reader.open_source(path, mapping, kind)
            result.kind = source.batch_kind
            with engine.connect() as conn:
                tx = conn.begin()
                try:
                    _load_in_transaction(
                        conn, path, "dry-run", source, mapping, as_of or date.today(), 50_000, result, None
                    )
                    q = select(etl_rejects.c.source_line, etl_rejects.c.reasons).where(
                        etl_rejects.c.batch_id == result.batch_id
                    )
                    for line, text in conn.execute(q):
                        for part in dict.fromkeys(_reason_key(p) for p in text.split("; ")):
                            reasons[part] += 1
                            first.setdefault(part, line)
                finally:
                    tx.rollback()
        except reader.FileLevelError as exc:
            result.status, result.message = "failed", str(exc)
        finally:
            engine.dispose()
    top = [(r, n, first[r]) for r, n in reasons.most_common(8)]
    return DryRun(result=result, top_reasons=top, warehouse=label)


def report(
    path: Path, mapping_path: str | None, db_url: str | None, as_of: date | None, kind: str | None
) -> tuple[str, int]:
    """The text `inspect` prints, and its exit code (2 when the file cannot be read at all)."""
    out: list[str] = []
    try:
        g = guess(path)
    except FileLevelError as exc:
        return f"error: {exc}\n", 2
    except Exception as exc:  # a guess is best effort: say so, go on with the mapping given
        g = None
        out.append(f"could not guess the layout ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
    if g is not None:
        out.append(f"{path.name}: {g.format}" + (f", sheet {g.sheet!r}" if g.sheet else ""))
        if g.format == "fhir":
            types = ", ".join(f"{t} x{n}" for t, n in g.fhir["resources"].most_common())
            out.append(f"  resources: {types}")
        else:
            if g.format == "csv":
                delim = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[g.delimiter]
                out.append(
                    f"  encoding {g.encoding}, {delim}-separated, decimal {g.decimal!r}, header on line {g.skip_rows + 1}"
                )
            else:
                out.append(f"  header on row {g.skip_rows + 1}")
            out.append(f"  kind: {g.kind or 'not recognised'}")
            if g.dates:
                out.append("  dates: " + ", ".join(f"{c} {f}" for c, f in g.dates.items()))
        for note in g.notes:
            out.append(f"  note: {note}")
    with tempfile.TemporaryDirectory(prefix="etl-inspect-") as tmp:
        try:
            if mapping_path:
                mapping = load_mapping(mapping_path)
                out.append(f"\nmapping: {mapping_path}")
            elif g is not None:
                out.append("\ndraft mapping (save it, check it, pass it with --mapping):\n")
                out.append(g.toml())
                mapping = mapping_from_guess(g, Path(tmp))
            else:
                mapping = Mapping()
        except Exception as exc:  # MappingError, or a draft that does not parse
            return "\n".join(out) + f"\nerror: {exc}\n", 2
        run = dry_run(path, mapping, db_url, as_of, kind)
    r = run.result
    out.append(f"dry run against {run.warehouse} (rolled back: nothing was written)")
    if r.status == "failed":
        out.append(f"  error: {r.message}")
        return "\n".join(out) + "\n", 2
    out.append(
        f"  would load: {r.rows_read:,} rows read, {r.rows_inserted:,} new, {r.rows_updated:,} updated, "
        f"{r.rows_unchanged:,} unchanged, {r.rows_rejected:,} rejected"
    )
    if r.message:
        out.append(f"  {r.message}")
    if run.top_reasons:
        out.append("  top reasons for rejects:")
        for reason, n, line in run.top_reasons:
            out.append(f"    {n:>6,} x {reason} (first on line {line})")
    return "\n".join(out) + "\n", 0


def cmd_inspect(args) -> int:
    # args.db is resolved like every command's (--db, $OUTCOMES_DB_URL, data/warehouse.sqlite); a SQLite file that
    # does not exist is not created: the dry run then uses a throwaway warehouse
    text, code = report(Path(args.file), args.mapping, args.db, args.as_of, args.kind)
    print(text, end="")
    return code


def add_parser(sub, with_db) -> None:
    import argparse

    def _date(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None

    p = sub.add_parser(
        "inspect",
        help="guess a new export's layout and a draft mapping; dry-run the load (nothing is written)",
    )
    p.add_argument("file", help="CSV, .xlsx, FHIR Bundle (.json) or NDJSON file")
    p.add_argument("--mapping", default=None, help="check this mapping instead of the guessed one")
    p.add_argument(
        "--db",
        default=None,
        help="warehouse whose patients count as known (default: $OUTCOMES_DB_URL, else data/warehouse.sqlite "
        "if it exists, else a throwaway empty one); only read, the dry run is rolled back",
    )
    p.add_argument("--kind", choices=["patients", "scores", "visits", "sessions"], default=None)
    p.add_argument("--as-of", type=_date, default=None, help="treat dates after this day as in the future")
    p.set_defaults(func=cmd_inspect)
