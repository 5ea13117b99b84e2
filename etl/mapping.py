"""Import mappings: how one clinic's export differs from the canonical files (headers, labels, dates, units).

A mapping is a TOML file (see data/mappings/). Without one, canonical files load as they are; the built-in
label spellings below apply either way, and a mapping's own labels are added to them.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: Spellings every export uses for the same thing; a mapping may add more.
BUILTIN_VALUES: dict[str, dict[str, str]] = {
    "status": {
        "completed": "completed",
        "complete": "completed",
        "done": "completed",
        "yes": "completed",
        "y": "completed",
        "x": "completed",
        "1": "completed",
        "true": "completed",
        "partial": "partial",
        "partially": "partial",
        "half": "partial",
        "skipped": "skipped",
        "skip": "skipped",
        "no": "skipped",
        "n": "skipped",
        "0": "skipped",
        "false": "skipped",
        "missed": "missed",
        "not logged": "missed",
    },
    "setting": {
        "clinic": "clinic",
        "in clinic": "clinic",
        "in-clinic": "clinic",
        "home": "home",
        "hep": "home",
    },
    "sex": {
        "f": "F",
        "female": "F",
        "woman": "F",
        "m": "M",
        "male": "M",
        "man": "M",
        "x": "X",
        "other": "X",
        "diverse": "X",
        "u": "U",
        "unknown": "U",
    },
    "side": {
        "": "",
        "left": "left",
        "l": "left",
        "right": "right",
        "r": "right",
        "both": "both",
        "bilateral": "both",
        "b": "both",
    },
}

#: Factors from a source unit to the catalog unit of a measure.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("in", "cm"): 2.54,
    ("inch", "cm"): 2.54,
    ("mm", "cm"): 0.1,
    ("cm", "mm"): 10.0,
    ("rad", "degrees"): 57.29577951308232,
    ("fraction", "%"): 100.0,
}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Mapping:
    name: str = "canonical"
    kind: str | None = None
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    decimal: str = "."
    skip_rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_format: str | None = None
    date_formats: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    #: Input format: "csv", "xlsx" or "fhir"; None = recognised from the file name and content.
    format: str | None = None
    #: Spreadsheets: the sheet to read (default the first) and the 1-based row of the header (default: found).
    sheet: str | None = None
    header_row: int | None = None
    #: FHIR: "system|code" -> measure, added to the built-in LOINC codes (etl/fhir.py).
    codes: dict[str, str] = field(default_factory=dict)
    #: FHIR: "system|code" of a Procedure or Encounter type -> exercise_type; those resources become sessions.
    session_codes: dict[str, str] = field(default_factory=dict)
    #: FHIR: which Patient identifier (by system) is the patient_id; default the resource id.
    patient_identifier_system: str | None = None
    #: sha256 of the mapping file: a file loaded again with a different mapping is loaded again.
    fingerprint: str = "canonical"

    @property
    def label(self) -> str:
        return "canonical" if self.fingerprint == "canonical" else f"{self.name} ({self.fingerprint[:12]})"

    def canonical_header(self, header: list[str]) -> list[str]:
        """Rename a file's header to canonical names (case and surrounding space do not matter)."""
        renames = {k.strip().casefold(): v for k, v in self.columns.items()}
        out = []
        for col in header:
            key = str(col).strip().lstrip("\ufeff").casefold()
            out.append(renames.get(key, key.replace(" ", "_")))
        return out

    def labels_for(self, column: str) -> dict[str, str]:
        merged = dict(BUILTIN_VALUES.get(column, {}))  # keys are lower case
        merged.update({k.strip().lower(): v for k, v in self.values.get(column, {}).items()})
        return merged

    def date_format_for(self, column: str) -> str | None:
        return self.date_formats.get(column, self.date_format)


SOURCE_KEYS = {
    "name",
    "kind",
    "encoding",
    "delimiter",
    "decimal",
    "skip_rows",
    "format",
    "sheet",
    "header_row",
    "patient_identifier_system",
}
SECTIONS = {"source", "columns", "values", "dates", "units", "constants", "codes", "sessions"}
FORMATS = ("csv", "xlsx", "fhir")
#: Columns whose canonical values are fixed; a mapping may only map labels onto these.
CANONICAL_VALUES: dict[str, set[str]] = {
    "status": {"completed", "partial", "skipped", "missed"},
    "setting": {"clinic", "home"},
    "sex": {"F", "M", "X", "U"},
    "side": {"", "left", "right", "both"},
}
KNOWN_UNITS = sorted({u for pair in UNIT_FACTORS for u in pair})


def _check_date_format(path: Path, key: str, date_format: object) -> None:
    """A [dates] entry must be a format the loader can use: a bad directive (`%Q`) fails the mapping, not a load."""
    import pandas as pd

    if not isinstance(date_format, str) or "%" not in date_format:
        raise MappingError(
            f'{path}: [dates] {key} = {date_format!r} is not a date format; write it with % codes, e.g. "%d.%m.%Y"'
        )
    try:
        pd.to_datetime(pd.Series(["x"]), format=date_format, errors="coerce")
    except ValueError as exc:
        raise MappingError(f"{path}: [dates] {key} = {date_format!r}: {exc}") from None


def load_mapping(path: str | Path | None) -> Mapping:
    """Read and check a mapping file; every mistake found is a MappingError naming the file and the key."""
    if path is None:
        return Mapping()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(doc) - SECTIONS
    if unknown:
        raise MappingError(f"{path}: unknown section(s) {sorted(unknown)}; expected {sorted(SECTIONS)}")
    src = doc.get("source", {})
    bad_keys = set(src) - SOURCE_KEYS
    if bad_keys:
        raise MappingError(
            f"{path}: unknown key(s) in [source]: {sorted(bad_keys)}; expected {sorted(SOURCE_KEYS)}"
        )
    values = {str(c): {str(k): str(v) for k, v in m.items()} for c, m in doc.get("values", {}).items()}
    for column, labels in values.items():
        allowed = CANONICAL_VALUES.get(column)
        wrong = sorted({v for v in labels.values() if allowed is not None and v not in allowed})
        if wrong:
            raise MappingError(
                f"{path}: [values.{column}] maps to {wrong}, which are not {column} values; "
                f"use one of {sorted(allowed)}"
            )
    units = {str(k): str(v) for k, v in doc.get("units", {}).items()}
    from warehouse.catalog import measure_rows

    codes = sorted(m["code"] for m in measure_rows())
    for measure, unit in units.items():
        if measure not in codes:
            raise MappingError(f"{path}: [units] {measure!r} is not a measure code; use one of {codes}")
        if unit not in KNOWN_UNITS:
            raise MappingError(
                f"{path}: [units] {measure} = {unit!r} is not a unit we convert; use one of {KNOWN_UNITS}"
            )
    dates = {str(k): v for k, v in doc.get("dates", {}).items()}
    for key, date_format in dates.items():
        _check_date_format(path, key, date_format)
    delimiter = src.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise MappingError(
            f'{path}: [source] delimiter = {delimiter!r}; use one character, e.g. ";" or "\\t" for a tab'
        )
    decimal = src.get("decimal", ".")
    if decimal not in (".", ","):
        raise MappingError(f'{path}: [source] decimal = {decimal!r}; use "." or ","')
    skip_rows = src.get("skip_rows", 0)
    if not isinstance(skip_rows, int) or isinstance(skip_rows, bool) or skip_rows < 0:
        raise MappingError(
            f"{path}: [source] skip_rows = {skip_rows!r}; use the number of lines above the header"
        )
    fmt = src.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingError(f"{path}: [source] format = {fmt!r}; use one of {list(FORMATS)}")
    header_row = src.get("header_row")
    if header_row is not None and (not isinstance(header_row, int) or header_row < 1):
        raise MappingError(f"{path}: [source] header_row must be a row number (1 = the first row)")
    codes = {str(k): str(v) for k, v in doc.get("codes", {}).items()}
    session_codes = {str(k): str(v) for k, v in doc.get("sessions", {}).items()}
    for section, table in (("codes", codes), ("sessions", session_codes)):
        bad = sorted(k for k in table if "|" not in k)
        if bad:
            raise MappingError(
                f'{path}: [{section}] keys must be "system|code" (e.g. "http://loinc.org|72514-3"), not {bad}'
            )
    return Mapping(
        name=src.get("name", path.stem),
        kind=src.get("kind"),
        encoding=src.get("encoding", "utf-8-sig"),
        delimiter=delimiter,
        decimal=decimal,
        skip_rows=skip_rows,
        columns={str(k): str(v) for k, v in doc.get("columns", {}).items()},
        values=values,
        date_format=dates.get("format"),
        date_formats={k: v for k, v in dates.items() if k != "format"},
        units=units,
        constants={str(k): str(v) for k, v in doc.get("constants", {}).items()},
        format=fmt,
        sheet=src.get("sheet"),
        header_row=header_row,
        codes=codes,
        session_codes=session_codes,
        patient_identifier_system=src.get("patient_identifier_system"),
        fingerprint=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
