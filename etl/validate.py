"""Staging: canonical text chunks -> typed rows ready to load, and rejects with every reason.

All checks are vectorised over the chunk; reasons are written out only for the rows that fail, so a clean file
pays for masks, not for strings. Every input row leaves here either in `rows` (possibly as several rows, for wide
visit files), in `rejects`, or counted in `duplicate_lines` (an identical repeat of an earlier row): never two of
those, never none.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from etl.kinds import SESSIONS, Kind
from etl.mapping import UNIT_FACTORS, Mapping
from warehouse.sqltext import timestamp_text

DATE_FMT = "%Y-%m-%d"


@dataclass(frozen=True)
class MeasureRule:
    code: str
    min_value: float
    max_value: float
    unit: str


@dataclass
class Context:
    """What validation needs to know about the warehouse, read once per file."""

    as_of: date
    measures: dict[str, MeasureRule]
    exercise_types: dict[str, bool]  # code -> clinic only
    known_patients: set[str] = field(default_factory=set)
    exercises: dict[str, str] = field(default_factory=dict)  # exercise name -> type, as first seen
    mapping: Mapping = field(default_factory=Mapping)


@dataclass
class Staged:
    rows: pd.DataFrame
    rejects: pd.DataFrame  # columns: line, reasons (raw text is added by the loader)
    duplicate_lines: int = 0


# --- small vectorised helpers
class Reasons:
    """Collects (mask, message) pairs; a row is rejected when any mask holds for it."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self.items: list[tuple[pd.Series, pd.Series | str]] = []
        self.rejected = pd.Series(False, index=index)

    def add(self, mask: pd.Series, message: str | Callable[[pd.Index], pd.Series]) -> None:
        """`message` is text, or a function building texts for just the failing rows (clean rows pay nothing)."""
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            self.items.append((mask, message))
            self.rejected |= mask

    def text(self) -> pd.Series:
        """Each rejected row's reasons joined by '; ', in the order they were added (positions, not labels: a
        chunk with a few rejects paid more for pandas' label lookups than for the checks)."""
        rejected = self.rejected.to_numpy()
        position = np.cumsum(rejected) - 1  # of each rejected row among the rejected
        out = np.full(int(rejected.sum()), "", dtype=object)
        for mask, message in self.items:
            m = mask.to_numpy()
            part = message if isinstance(message, str) else message(mask.index[m]).astype(str).to_numpy()
            at = position[m]
            before = out[at]
            out[at] = np.where(before == "", "", before + "; ") + part
        return pd.Series(out, index=self.index[rejected], dtype=object)


def _quoted(s: pd.Series) -> pd.Series:
    return "'" + s.astype(str).str.slice(0, 60) + "'"


def quoting(prefix: str | pd.Series, values: pd.Series, suffix: str = "") -> Callable[[pd.Index], pd.Series]:
    """A lazy reason: prefix + 'the offending value' + suffix, built only for the rows that fail."""

    def build(idx: pd.Index) -> pd.Series:
        head = prefix if isinstance(prefix, str) else prefix.loc[idx].astype(str)
        return head + _quoted(values.loc[idx]) + suffix

    return build


def _clean(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip()


def _require(reasons: Reasons, df: pd.DataFrame, cols: tuple[str, ...]) -> None:
    for col in cols:
        reasons.add(df[col] == "", f"{col}: missing")


def _number(s: pd.Series, decimal: str) -> pd.Series:
    if decimal != ".":
        # a "." is a thousands separator only between groups of three digits ("1.234,5"); "6.5" in a file whose
        # decimal mark is "," is not a number (read as 65 it would pass the range check of a 0-100 measure)
        dotted = s.str.contains(".", regex=False).fillna(False)
        if dotted.any():
            grouped = s.str.fullmatch(r"[+-]?\d{1,3}(?:\.\d{3})+(?:" + re.escape(decimal) + r"\d*)?").fillna(
                False
            )
            s = s.where(~dotted | grouped, "not a number")
        s = s.str.replace(".", "", regex=False).str.replace(decimal, ".", regex=False)
    return pd.to_numeric(s, errors="coerce")


#: "7/10", "7 / 10", "7 out of 10", "6,5/10": a rating written with its scale (only for 0-10 measures).
OUT_OF_TEN = r"^\s*(\d+(?:[.,]\d+)?)\s*(?:/|out\s+of|of)\s*10\s*$"


def _out_of_ten(num: pd.Series, text: pd.Series, scale_is_ten: pd.Series | bool) -> pd.Series:
    """Fill unparsed values written as "x/10" or "x out of 10" where the measure's scale is 0-10."""
    todo = num.isna() & (text != "") & scale_is_ten
    if not todo.any():
        return num
    found = text[todo].str.extract(OUT_OF_TEN, flags=re.IGNORECASE)[0]
    parsed = pd.to_numeric(found.str.replace(",", ".", regex=False), errors="coerce")
    return num.fillna(parsed)


def date_part(fmt: str) -> str:
    """The date part of a strptime format: '%d.%m.%Y %H:%M' -> '%d.%m.%Y' (the format itself when it has no time)."""
    found = re.search(r"[\sT,]*%[HIMSpz]", fmt)
    return fmt[: found.start()] if found and found.start() > 0 else fmt


def _to_datetime(s: pd.Series, fmt: str) -> pd.Series:
    """pd.to_datetime with unparseable cells as NaT, naive at the clinic's wall-clock time. Cells with different
    UTC offsets (`+01` and `+02` across a DST change) make pandas refuse the whole column: then the offsets are cut
    off the times and the column read again, and what still fails is read cell by cell."""
    try:
        parsed = pd.to_datetime(s, format=fmt, errors="coerce")
    except ValueError:
        parsed = None
        if fmt == "ISO8601" or fmt.endswith("%z"):
            local = s.str.replace(r"(:\d\d(?:\.\d+)?)\s*(?:Z|[+-]\d\d(?::?\d\d)?)$", r"\1", regex=True)
            with contextlib.suppress(ValueError):
                parsed = pd.to_datetime(local, format=fmt.removesuffix("%z").rstrip(), errors="coerce")
        if parsed is None:

            def one(text: str) -> pd.Timestamp:
                try:
                    t = pd.to_datetime(text, format=fmt, errors="coerce")
                except ValueError:
                    return pd.NaT
                return t.tz_localize(None) if not pd.isna(t) and t.tzinfo is not None else t

            parsed = pd.Series([one(v) for v in s], index=s.index, dtype="datetime64[ns]")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_dates(
    reasons: Reasons, s: pd.Series, col: str, ctx: Context, *, required: bool, with_time: bool = False
) -> pd.Series:
    fmt = ctx.mapping.date_format_for(col)
    if fmt:
        parsed = _to_datetime(s, fmt)
        day_only = date_part(fmt)
        if with_time and day_only != fmt and parsed.isna().any():
            # a date alone means 00:00, with a format as without one
            missing = parsed.isna() & (s != "")
            parsed = parsed.where(~missing, _to_datetime(s[missing], day_only).reindex(s.index))
    elif with_time:
        # Keep the wall-clock time the clinic recorded: offsets differ across a DST change, and mixing them
        # would make pandas refuse the whole column.
        local = s.str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "", regex=True)
        parsed = _to_datetime(local, "ISO8601")
        # ISO 8601 also reads "2026-10" and "2026" (reduced precision) as the 1st of the month / year: a
        # measurement needs its day, which takes 8 characters at least (20261031, 2026-1-5); a length is cheaper
        # than a pattern on every distinct timestamp
        parsed = parsed.where((local.str.len() >= 8).fillna(False).to_numpy(dtype=bool))
    else:
        parsed = pd.to_datetime(s, format=DATE_FMT, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)  # keep the wall-clock time the clinic recorded
    empty = s == ""
    if required:
        reasons.add(empty, f"{col}: missing")
    bad = parsed.isna() & ~empty
    reasons.add(bad, quoting(f"{col}: not a valid date ", s))
    future = parsed.dt.normalize() > pd.Timestamp(ctx.as_of)
    reasons.add(future, quoting(f"{col}: in the future (after {ctx.as_of.isoformat()}) ", s))
    return parsed


def _labels(reasons: Reasons, s: pd.Series, col: str, ctx: Context, allowed_msg: str) -> pd.Series:
    labels = ctx.mapping.labels_for(col)
    mapped = s.str.lower().map(labels)
    reasons.add(mapped.isna() & (s != ""), quoting(f"{col}: unknown value ", s, f" ({allowed_msg})"))
    return mapped.fillna("")


def _relabel(s: pd.Series, col: str, ctx: Context) -> pd.Series:
    """Apply a mapping's own labels for an open-ended column (measure codes, exercise types); others pass."""
    labels = {k.strip().lower(): v for k, v in ctx.mapping.values.get(col, {}).items()}
    if not labels:
        return s
    return s.str.lower().map(labels).fillna(s)


def _date_text(parsed: pd.Series) -> pd.Series:
    return pd.Series(timestamp_text(parsed.to_numpy(dtype="datetime64[us]"), day=True), index=parsed.index)


def _datetime_text(parsed: pd.Series) -> pd.Series:
    """SQLAlchemy's SQLite storage format (warehouse/sqltext.py), so equal instants compare equal as text on
    SQLite. NaT (rows rejected anyway) is None."""
    return pd.Series(
        timestamp_text(parsed.to_numpy(dtype="datetime64[us]")), index=parsed.index, dtype=object
    )


#: What exports write in an optional number column for "no value" (compared in lower case): such a cell is empty,
#: not a reason to reject the session (a skipped session's "pain during" is "N/A"). Required numbers (a score's
#: value) still reject them as not a number.
NO_VALUE = frozenset({"n/a", "na", "-", "--", "\u2013", "\u2014", "none", "null"})


def _optional_number(
    reasons: Reasons, df: pd.DataFrame, col: str, ctx: Context, lo: float, hi: float, integer: bool = False
) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index)
    s = _clean(df[col])
    s = s.where(~s.str.lower().isin(NO_VALUE).fillna(False), "")  # "N/A" here is an empty cell, not a bad row
    num = _number_per_value(s, ctx.mapping.decimal)
    if hi == 10:
        num = _out_of_ten(num, s, True)
    _not_a_number(reasons, num, s, col, ctx.mapping.decimal)
    reasons.add((num < lo) | (num > hi), quoting(f"{col}: outside {lo:g}-{hi:g} ", s))
    if integer:
        reasons.add(num.notna() & (num != num.round()), quoting(f"{col}: not a whole number ", s))
    return num


def _number_per_value(s: pd.Series, decimal: str) -> pd.Series:
    """`_number` once per distinct text, broadcast to the rows: a chunk's counts, minutes and ratings hold a few
    dozen distinct values, and parsing every cell of the seven number columns was a third of validating a sessions
    chunk (0.65 of 2.0 s per 423,000 rows)."""
    codes, values = _distinct(s)
    return pd.Series(_number(values, decimal).to_numpy(dtype=float)[codes], index=s.index)


#: "7,5" or "-0,5": a number written with a decimal comma.
DECIMAL_COMMA = r"[+-]?\d+,\d+"


def _not_a_number(reasons: Reasons, num: pd.Series, text: pd.Series, label: str, decimal: str) -> None:
    """The reason for cells that are not numbers, and for "7,5" in a file read with a decimal point, the way out:
    a European export needs a mapping, and the bare "not a number '7,5'" did not say so."""
    bad = num.isna() & (text != "")
    reasons.add(bad, quoting(f"{label}: not a number ", text))
    if decimal == "." and bad.any():
        comma = bad & text.str.fullmatch(DECIMAL_COMMA).fillna(False).astype(bool)
        reasons.add(comma, 'a decimal comma? a mapping with decimal = "," under [source] reads it')


def _measure_value(
    reasons: Reasons, value_text: pd.Series, measure: pd.Series, ctx: Context, label: pd.Series | str
) -> pd.Series:
    """Parse values and check them against the catalog range of their measure, after unit conversion."""
    num = _number(value_text, ctx.mapping.decimal)
    ten = [code for code, rule in ctx.measures.items() if rule.min_value == 0 and rule.max_value == 10]
    num = _out_of_ten(num, value_text, measure.isin(ten))
    _not_a_number(reasons, num, value_text, label, ctx.mapping.decimal)
    converted, lo_values, hi_values = _in_catalog_units(num.to_numpy(dtype=float), measure, ctx)
    num = pd.Series(converted, index=num.index)
    lo = pd.Series(lo_values, index=measure.index)
    hi = pd.Series(hi_values, index=measure.index)
    out = (num < lo) | (num > hi)

    def outside(idx: pd.Index) -> pd.Series:
        rng = lo.loc[idx].map("{:g}".format) + "-" + hi.loc[idx].map("{:g}".format)
        return f"{label}: value " + _quoted(value_text.loc[idx]) + " outside " + rng

    reasons.add(out, outside)
    return num


def _in_catalog_units(
    values: np.ndarray, measure: pd.Series | np.ndarray, ctx: Context
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values converted to their measure's catalog unit as the mapping's [units] say, the measure's min, its max).
    Codes not in the catalog keep their value and get NaN bounds (they are rejected as unknown elsewhere)."""
    codes = list(ctx.measures)
    pos = pd.Index(codes).get_indexer(measure)  # -1: not in the catalog, the appended last entry
    factor = np.ones(len(codes) + 1)
    for code, unit in ctx.mapping.units.items():
        rule = ctx.measures.get(code)
        if rule is not None and unit != rule.unit and (unit, rule.unit) in UNIT_FACTORS:
            factor[codes.index(code)] = UNIT_FACTORS[(unit, rule.unit)]
    lo = np.append([r.min_value for r in ctx.measures.values()], np.nan)
    hi = np.append([r.max_value for r in ctx.measures.values()], np.nan)
    return values * factor[pos], lo[pos], hi[pos]


def _in_set(s: pd.Series, values: set[str]) -> pd.Series:
    """Membership by hashing each value in the set: pandas' isin on Arrow-backed strings first converts every
    member of `values` to an Arrow scalar, which for the warehouse's patient list cost more per chunk than the
    rest of the validation."""
    known = values.__contains__
    items = s.to_numpy(dtype=object)
    return pd.Series(np.fromiter(map(known, items), dtype=bool, count=len(items)), index=s.index)


def _known_patient(reasons: Reasons, pid: pd.Series, ctx: Context) -> None:
    unknown = ~_in_set(pid, ctx.known_patients) & (pid != "")
    reasons.add(unknown, quoting(UNKNOWN_PATIENT, pid, " (load its patients file first)"))


# --- duplicates inside one chunk
def _split_duplicates(
    rows: pd.DataFrame, key: list[str], values: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, set[int]]:
    """Keep the first row of each key. Later identical rows vanish; later conflicting rows are rejected.

    Returns (kept rows, conflict rejects [line, reasons], lines whose every row was an identical repeat).
    """
    later = rows.duplicated(key, keep="first")
    if not later.any():
        return rows, pd.DataFrame({"line": [], "reasons": []}), set()
    first = rows[~later]
    repeats = (
        rows[later]
        .reset_index()
        .merge(first[[*key, *values, "line"]], on=key, how="left", suffixes=("", "_first"))
    )
    same = pd.Series(True, index=repeats.index)
    for col in values:
        a, b = repeats[col], repeats[f"{col}_first"]
        same &= (a == b) | (a.isna() & b.isna())
    conflict = repeats[~same]
    conflict_lines = set(conflict["line"].astype(int))
    rejects = pd.DataFrame(
        {
            "line": conflict["line"].astype(int).to_numpy(),
            "reasons": (
                "duplicate of line "
                + conflict["line_first"].astype(int).astype(str)
                + " (same "
                + ", ".join(key)
                + ") with different values"
            ).to_numpy(),
        }
    )
    kept = first[~first["line"].isin(conflict_lines)]
    identical_lines = set(repeats.loc[same, "line"].astype(int)) - set(kept["line"]) - conflict_lines
    return kept, rejects, identical_lines


def _finish(
    reasons: Reasons, lines: pd.Series, rows: pd.DataFrame, key: list[str], values: list[str]
) -> Staged:
    rejected = reasons.rejected
    rejects = pd.DataFrame({"line": lines[rejected].to_numpy(), "reasons": reasons.text().to_numpy()})
    valid = rows[~rows["line"].isin(set(lines[rejected]))]
    kept, conflicts, identical = _split_duplicates(valid, key, values)
    if len(conflicts):
        rejects = pd.concat([rejects, conflicts], ignore_index=True)
    return Staged(rows=kept.reset_index(drop=True), rejects=rejects, duplicate_lines=len(identical))


#: The start of the reason a row gets when its patient is not in the warehouse; the loader looks for it to read a
#: file again once patients were loaded (etl/load.py, `_waited_for_patients`).
UNKNOWN_PATIENT = "patient_id: unknown patient "

# --- one function per kind
SCORE_KEY = ["patient_id", "measure", "recorded_at", "side"]
SESSION_KEY = ["patient_id", "session_date", "setting", "exercise"]
#: Everything but the key: the type and status, then every optional sessions column, in the file's order.
SESSION_VALUES = ["exercise_type", "status", *SESSIONS.optional]
PATIENT_KEY = ["patient_id", "episode_start"]
PATIENT_VALUES = [
    "clinic_id",
    "therapist_id",
    "birth_year",
    "sex",
    "episode_end",
    "symptom_onset",
    "side",
    "first_name",
    "last_name",
]


def stage_scores(df: pd.DataFrame, lines: pd.Series, ctx: Context) -> Staged:
    """Every rule is first evaluated once per distinct cell value (`_plain_scores`): a scores file repeats its
    patients, measures, sides, values and timestamps (one per measure at a visit): a chunk of 50,000 rows of the
    benchmark's file holds ~500 patients, ~100 values and ~25,000 timestamps. Rows that pass every rule that way
    are staged from those results; the others (a handful in a real file) go through the row-wise checks, which
    write the reasons. Same rules, same functions, both ways: the distinct values are checked by the very helpers
    the row-wise path calls.
    """
    plain, fast_rows, key = _plain_scores(df, lines, ctx)
    rest = ~plain
    if rest.any():
        reasons, slow_rows = _checked_scores(df[rest], lines[rest], ctx)
    else:
        reasons, slow_rows = Reasons(df.index[rest]), fast_rows.iloc[:0]
    if key is not None and reasons.rejected.all() and not pd.Series(key).duplicated().any():
        # the usual chunk: the rows that fail are rejected, the others have distinct keys
        rejected = lines[rest]
        rejects = pd.DataFrame({"line": rejected.to_numpy(), "reasons": reasons.text().to_numpy()})
        return Staged(
            rows=fast_rows.reset_index(drop=True), rejects=rejects if len(rejects) else _no_rejects()
        )
    rows = pd.concat([fast_rows, slow_rows]).sort_index(kind="stable") if len(fast_rows) else slow_rows
    return _finish(reasons, lines[rest], rows, SCORE_KEY, ["value"])


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame({"line": np.zeros(0, dtype="int64"), "reasons": np.zeros(0, dtype=object)})


def _distinct(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(code of each row, the distinct values as a Series indexed by code)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    return codes, pd.Series(uniques, dtype=s.dtype)


def _plain_scores(
    df: pd.DataFrame, lines: pd.Series, ctx: Context
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray | None]:
    """(mask of the rows every rule accepts, those rows staged, their natural key as one integer each or None).

    Each column's rules run on its distinct values and are broadcast by code; only the range check needs the
    row's measure and value together. The key numbers each column's distinct *staged* values (" P1" and "P1" are
    one patient), so equal keys are equal natural keys: a chunk without repeats skips the row-wise duplicate
    search, which hashed every cell again.
    """
    bad = np.zeros(len(df), dtype=bool)
    empty = pd.Series("", index=df.index)
    key: list[tuple[np.ndarray, int]] = []

    def per_value(s: pd.Series, check: Callable[[Reasons, pd.Series], pd.Series], in_key: bool = False):
        codes, values = _distinct(s)
        r = Reasons(values.index)
        out = check(r, values).to_numpy(dtype=object)
        bad[r.rejected.to_numpy()[codes]] = True
        if in_key:
            staged_codes, staged = pd.factorize(out, use_na_sentinel=False)
            key.append((staged_codes[codes], len(staged)))
        return out[codes]

    def patient(r: Reasons, v: pd.Series) -> pd.Series:
        pid = _clean(v)
        r.add(pid == "", "missing")
        _known_patient(r, pid, ctx)
        return pid

    def measure_code(r: Reasons, v: pd.Series) -> pd.Series:
        m = _relabel(_clean(v), "measure", ctx).str.lower()
        r.add(~m.isin(ctx.measures), "not a measure")
        return m

    def recorded(r: Reasons, v: pd.Series) -> pd.Series:
        when = _parse_dates(r, _clean(v), "recorded_at", ctx, required=True, with_time=True)
        return _datetime_text(when)

    def side(r: Reasons, v: pd.Series) -> pd.Series:
        return _labels(r, _clean(v), "side", ctx, "")

    def number(r: Reasons, v: pd.Series) -> pd.Series:
        num = _number(_clean(v), ctx.mapping.decimal)
        r.add(num.isna(), "not a plain number")  # "7/10", missing, junk: the row-wise path decides
        return num

    pid = per_value(df["patient_id"], patient, in_key=True)
    measure = per_value(df["measure"], measure_code, in_key=True)
    when = per_value(df["recorded_at"], recorded, in_key=True)
    sides = per_value(df.get("side", empty), side, in_key=True)
    value, lo, hi = _in_catalog_units(per_value(df["value"], number).astype(float), measure, ctx)
    with np.errstate(invalid="ignore"):
        bad |= (value < lo) | (value > hi)
    plain = ~bad
    index = df.index[plain]
    rows = pd.DataFrame(
        {
            "line": lines.to_numpy()[plain],
            **{
                name: pd.Series(
                    column[plain], index=index, dtype=object
                )  # kept as Python objects: see _objects
                for name, column in (
                    ("patient_id", pid),
                    ("measure", measure),
                    ("recorded_at", when),
                    ("side", sides),
                )
            },
            "value": value[plain],
        },
        index=index,
    )
    return plain, rows, _one_number(key, plain)


def _one_number(key: list[tuple[np.ndarray, int]], rows: np.ndarray) -> np.ndarray | None:
    """The selected rows' codes of each key column (code, number of codes) as one int64, None if it could
    overflow."""
    if np.prod([float(n) for _, n in key]) >= 2.0**62:
        return None
    combined = np.zeros(len(rows), dtype=np.int64)
    for codes, n in key:
        combined = combined * n + codes
    return combined[rows]


def _checked_scores(df: pd.DataFrame, lines: pd.Series, ctx: Context) -> tuple[Reasons, pd.DataFrame]:
    """The row-wise checks, with every reason written out; returns the reasons and all rows staged."""
    reasons = Reasons(df.index)
    pid = _clean(df["patient_id"])
    measure = _relabel(_clean(df["measure"]), "measure", ctx).str.lower()
    value_text = _clean(df["value"])
    _require(
        reasons, pd.DataFrame({"patient_id": pid, "measure": measure, "value": value_text}), SCORE_KEY[:2]
    )
    reasons.add(value_text == "", "value: missing")
    when = _parse_dates(reasons, _clean(df["recorded_at"]), "recorded_at", ctx, required=True, with_time=True)
    reasons.add(~measure.isin(ctx.measures) & (measure != ""), quoting("measure: unknown measure ", measure))
    value = _measure_value(reasons, value_text, measure, ctx, "value")
    side = _labels(
        reasons,
        _clean(df["side"]) if "side" in df else pd.Series("", index=df.index),
        "side",
        ctx,
        "left, right, both or empty",
    )
    _known_patient(reasons, pid, ctx)
    rows = pd.DataFrame(
        {
            "line": lines.to_numpy(),
            "patient_id": _objects(pid),
            "measure": _objects(measure),
            "recorded_at": _objects(_datetime_text(when)),
            "side": _objects(side),
            "value": value.to_numpy(dtype=float),
        },
        index=df.index,
    )
    return reasons, rows


def _objects(s: pd.Series) -> pd.Series:
    """Text kept as Python objects in the staged rows: they leave as Python values for the driver anyway, and
    letting pandas turn them into Arrow strings and back cost about a tenth of loading a scores chunk."""
    return pd.Series(s.to_numpy(dtype=object), index=s.index, dtype=object)


def stage_visits(df: pd.DataFrame, lines: pd.Series, ctx: Context) -> Staged:
    """Wide EMR rows: every measure column becomes a score at the visit date; a bad cell rejects the visit."""
    reasons = Reasons(df.index)
    pid = _clean(df["patient_id"])
    reasons.add(pid == "", "patient_id: missing")
    when = _parse_dates(reasons, _clean(df["visit_date"]), "visit_date", ctx, required=True)
    measure_cols = [c for c in df.columns if c in ctx.measures]
    parts = []
    any_value = pd.Series(False, index=df.index)
    for code in measure_cols:
        text = _clean(df[code])
        present = text != ""
        any_value |= present
        value = _measure_value(reasons, text, pd.Series(code, index=df.index), ctx, code)
        parts.append(
            pd.DataFrame(
                {
                    "line": lines.to_numpy(),
                    "patient_id": pid.to_numpy(),
                    "measure": code,
                    "recorded_at": _datetime_text(when).to_numpy(),
                    "side": "",
                    "value": value.to_numpy(dtype=float),
                },
                index=df.index,
            )[present.to_numpy()]
        )
    reasons.add(
        ~any_value, "no measure values on this visit (columns: " + ", ".join(measure_cols or ["none"]) + ")"
    )
    _known_patient(reasons, pid, ctx)
    rows = pd.concat(parts) if parts else pd.DataFrame(columns=["line", *SCORE_KEY, "value"])
    return _finish(reasons, lines, rows, SCORE_KEY, ["value"])


def stage_sessions(df: pd.DataFrame, lines: pd.Series, ctx: Context) -> Staged:
    reasons = Reasons(df.index)
    pid = _clean(df["patient_id"])
    exercise = _clean(df["exercise"])
    etype = (
        _relabel(_clean(df["exercise_type"]), "exercise_type", ctx)
        .str.lower()
        .str.replace(r"[\s-]+", "_", regex=True)  # "Nerve mobilization", "nerve-mobilization"
    )
    _require(
        reasons,
        pd.DataFrame({"patient_id": pid, "exercise": exercise, "exercise_type": etype}),
        ("patient_id", "exercise", "exercise_type"),
    )
    when = _parse_dates(reasons, _clean(df["session_date"]), "session_date", ctx, required=True)
    setting_text = _clean(df["setting"])
    status_text = _clean(df["status"])
    reasons.add(setting_text == "", "setting: missing")
    reasons.add(status_text == "", "status: missing")
    setting = _labels(reasons, setting_text, "setting", ctx, "clinic or home")
    status = _labels(reasons, status_text, "status", ctx, "completed, partial, skipped or missed")
    reasons.add(
        ~etype.isin(ctx.exercise_types) & (etype != ""), quoting("exercise_type: unknown type ", etype)
    )
    clinic_only = etype.map(ctx.exercise_types).fillna(False).astype(bool)
    reasons.add(
        clinic_only & (setting == "home"),
        lambda idx: "exercise_type: " + etype.loc[idx] + " is given in the clinic only, not at home",
    )
    # An exercise name means one exercise type, across files and inside this one.
    fresh = ~exercise.isin(ctx.exercises) & (exercise != "") & etype.isin(ctx.exercise_types)
    for name, typ in zip(
        exercise[fresh].drop_duplicates().tolist(),
        etype[fresh][~exercise[fresh].duplicated()].tolist(),
        strict=True,
    ):
        ctx.exercises.setdefault(name, typ)
    known_type = exercise.map(ctx.exercises)
    reasons.add(
        known_type.notna() & (known_type != etype) & (etype != ""),
        lambda idx: (
            "exercise: "
            + _quoted(exercise.loc[idx])
            + " is recorded as "
            + known_type.loc[idx].fillna("")
            + ", not "
            + etype.loc[idx]
        ),
    )
    numbers = {
        "sets": _optional_number(reasons, df, "sets", ctx, 0, 100, integer=True),
        "reps": _optional_number(reasons, df, "reps", ctx, 0, 1000, integer=True),
        "duration_min": _optional_number(reasons, df, "duration_min", ctx, 0, 600),
        "prescribed_sets": _optional_number(reasons, df, "prescribed_sets", ctx, 0, 100, integer=True),
        "prescribed_reps": _optional_number(reasons, df, "prescribed_reps", ctx, 0, 1000, integer=True),
        "prescribed_min": _optional_number(reasons, df, "prescribed_min", ctx, 0, 600),
        "pain_during": _optional_number(reasons, df, "pain_during", ctx, 0, 10),
    }
    _known_patient(reasons, pid, ctx)

    def opt_text(col: str) -> pd.Series:
        if col not in df.columns:
            return pd.Series(None, index=df.index, dtype=object)
        s = _clean(df[col])
        return s.where(s != "", None)

    rows = pd.DataFrame(
        {
            "line": lines.to_numpy(),
            "patient_id": pid.to_numpy(),
            "session_date": _date_text(when).to_numpy(),
            "setting": setting.to_numpy(),
            "exercise": exercise.to_numpy(),
            "exercise_type": etype.to_numpy(),
            "status": status.to_numpy(),
            **{k: v.to_numpy(dtype=float) for k, v in numbers.items()},
            "skip_reason": opt_text("skip_reason").to_numpy(),
            "therapist_id": opt_text("therapist_id").to_numpy(),
        },
        index=df.index,
    )
    return _finish(reasons, lines, rows, SESSION_KEY, SESSION_VALUES)


def stage_patients(df: pd.DataFrame, lines: pd.Series, ctx: Context) -> Staged:
    reasons = Reasons(df.index)
    cols = {
        c: _clean(df[c]) if c in df.columns else pd.Series("", index=df.index)
        for c in (
            "patient_id",
            "clinic_id",
            "therapist_id",
            "birth_year",
            "sex",
            "first_name",
            "last_name",
            "clinic_name",
            "therapist_name",
        )
    }
    _require(reasons, pd.DataFrame(cols), ("patient_id", "clinic_id", "therapist_id", "birth_year", "sex"))
    year = pd.to_numeric(cols["birth_year"], errors="coerce")
    reasons.add(
        (year.isna() | (year != year.round())) & (cols["birth_year"] != ""),
        quoting("birth_year: not a year ", cols["birth_year"]),
    )
    reasons.add(
        (year < 1900) | (year > ctx.as_of.year),
        quoting(f"birth_year: outside 1900-{ctx.as_of.year} ", cols["birth_year"]),
    )
    sex = _labels(reasons, cols["sex"], "sex", ctx, "F, M, X or U")
    start = _parse_dates(reasons, _clean(df["episode_start"]), "episode_start", ctx, required=True)
    end = _parse_dates(
        reasons,
        _clean(df.get("episode_end", pd.Series("", index=df.index))),
        "episode_end",
        ctx,
        required=False,
    )
    onset = _parse_dates(
        reasons,
        _clean(df.get("symptom_onset", pd.Series("", index=df.index))),
        "symptom_onset",
        ctx,
        required=False,
    )
    reasons.add(end < start, "episode_end: before episode_start")
    reasons.add(onset > start, "symptom_onset: after episode_start")
    side = _labels(
        reasons,
        _clean(df.get("side", pd.Series("", index=df.index))),
        "side",
        ctx,
        "left, right, both or empty",
    )

    def opt(s: pd.Series) -> np.ndarray:
        return s.where(s != "", None).to_numpy(dtype=object)

    rows = pd.DataFrame(
        {
            "line": lines.to_numpy(),
            "patient_id": cols["patient_id"].to_numpy(),
            "clinic_id": cols["clinic_id"].to_numpy(),
            "therapist_id": cols["therapist_id"].to_numpy(),
            "birth_year": year.to_numpy(dtype=float),
            "sex": sex.to_numpy(),
            "episode_start": _date_text(start).to_numpy(),
            "episode_end": _date_text(end).to_numpy(),
            "symptom_onset": _date_text(onset).to_numpy(),
            "side": side.to_numpy(),
            "first_name": opt(cols["first_name"]),
            "last_name": opt(cols["last_name"]),
            "clinic_name": opt(cols["clinic_name"]),
            "therapist_name": opt(cols["therapist_name"]),
        },
        index=df.index,
    )
    return _finish(reasons, lines, rows, PATIENT_KEY, PATIENT_VALUES)


STAGERS = {
    "scores": stage_scores,
    "visits": stage_visits,
    "sessions": stage_sessions,
    "patients": stage_patients,
}


def stage(kind: Kind, df: pd.DataFrame, lines: pd.Series, ctx: Context) -> Staged:
    return STAGERS[kind.name](df, lines, ctx)
