"""Read stage: a file on disk -> its kind and a stream of string-typed chunks with their source line numbers.

Nothing is cast here: every cell stays text so that a rejected row can be stored exactly as it came.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from etl.kinds import KINDS, Kind, detect_kind
from etl.mapping import Mapping

#: Rows per chunk, by file kind (`chunk_rows_for`). Validation costs ~25 ms of CPU per chunk whatever its size
#: (pandas' per-call overhead), so a scores file loads 1M rows ~0.4 s faster in chunks of 50,000 than of 25,000; the
#: loader holds two chunks at most (etl/load.py). The other kinds keep 25,000: their row-wise validation holds more
#: per row, and a 423,000-row sessions file peaked at 317 MB in chunks of 50,000, at 242 MB in chunks of 25,000.
DEFAULT_CHUNK_ROWS = 25_000
CHUNK_ROWS = {"scores": 50_000}


def chunk_rows_for(kind: str) -> int:
    return CHUNK_ROWS.get(kind, DEFAULT_CHUNK_ROWS)


class FileLevelError(Exception):
    """The file cannot be loaded at all; the message is one line naming the file and the problem."""


@dataclass
class Chunk:
    #: Canonical column names, every cell a str ('' when empty).
    frame: pd.DataFrame
    #: Source line number of each row (the header is line 1 + skip_rows).
    lines: pd.Series
    #: The file's own header and separator, to rebuild a rejected row as it was.
    source_header: list[str]
    delimiter: str = ","
    #: The row as it came, by line (FHIR: the resource JSON); None: rebuilt from the cells in the file's order.
    raw: pd.Series | None = None
    #: Rows the reader itself rejected (malformed resources): columns line, reasons, raw.
    rejects: pd.DataFrame | None = None

    @property
    def rows_read(self) -> int:
        """Input rows in this chunk (one resource can make several rows: a panel's components)."""
        n = int(self.lines.nunique()) if self.raw is not None else len(self.frame)
        return n + (len(self.rejects) if self.rejects is not None else 0)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_text(path: Path, encoding: str) -> None:
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head.removeprefix(codecs.BOM_UTF8).strip():  # a BOM and blank lines, as an editor saves "nothing"
        raise FileLevelError(f"{path.name}: the file is empty")
    utf16 = utf16_encoding(head)
    wide = _codec_name(encoding).startswith(("utf-16", "utf-32"))
    if utf16 and not wide:
        raise FileLevelError(
            f"{path.name}: the file is UTF-16 text (as Excel's 'Unicode Text' saves it); load it with a mapping "
            f'whose [source] has encoding = "{utf16}" (see data/mappings/README.md, or draft one with `etl inspect`)'
        )
    if b"\x00" in head and not wide:
        raise FileLevelError(f"{path.name}: not a CSV text file (binary content)")
    if head[:4] == b"PK\x03\x04":
        raise FileLevelError(f"{path.name}: looks like a spreadsheet (.xlsx/.zip), not CSV")
    try:
        head.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(head) < 64 * 1024 or exc.start < len(head) - 4:  # not a character cut at the block edge
            raise _encoding_error(path, encoding, exc) from None
    except LookupError:
        raise FileLevelError(f"{path.name}: unknown encoding {encoding!r} in the mapping") from None


def utf16_encoding(head: bytes) -> str | None:
    """'utf-16' when the bytes start with a UTF-16 byte-order mark, 'utf-16-le'/'utf-16-be' when every other byte
    of the start is a NUL (UTF-16 without a BOM), else None."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") and head[:4] != b"\xff\xfe\x00\x00":
        return "utf-16"
    sample = head[:512]
    if len(sample) >= 8 and len(sample) % 2 == 0:
        odd, even = sample[1::2], sample[0::2]
        if odd.count(0) >= 0.9 * len(odd) and not even.count(0):
            return "utf-16-le"
        if even.count(0) >= 0.9 * len(even) and not odd.count(0):
            return "utf-16-be"
    return None


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


def read_header(path: Path, mapping: Mapping) -> tuple[list[str], list[str]]:
    """(source header, canonical header)."""
    _check_text(path, mapping.encoding)
    try:
        head = pd.read_csv(
            path,
            nrows=0,
            dtype=str,
            sep=mapping.delimiter,
            encoding=mapping.encoding,
            skiprows=mapping.skip_rows,
        )
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, mapping.encoding, exc) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise FileLevelError(f"{path.name}: not a readable CSV file ({_one_line(exc)})") from None
    source = [_blank_unnamed(str(c)) for c in head.columns]
    return source, mapping.canonical_header(source)


def _blank_unnamed(name: str) -> str:
    """pandas names an empty header cell 'Unnamed: 3': such a column (trailing separators) has no name."""
    return "" if name.startswith("Unnamed: ") and name[9:].split(".")[0].isdigit() else name


SEPARATOR_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


def _separator_hint(canonical: list[str], mapping: Mapping) -> str:
    """A header read as one column that holds another separator: say which, and how to load it."""
    if len(canonical) != 1:
        return ""
    for sep, name in SEPARATOR_NAMES.items():
        if sep in canonical[0] and sep != mapping.delimiter:
            shown = "\\t" if sep == "\t" else sep
            return (
                f"; the header looks {name}-separated: load it with a mapping whose [source] has "
                f'delimiter = "{shown}" (see data/mappings/README.md, or draft one with `etl inspect`)'
            )
    return ""


def _content_hint(canonical: list[str]) -> str:
    """A header that is not a header at all: JSON or a web page saved under a .csv name."""
    first = canonical[0].lstrip() if canonical else ""
    if first.startswith(("{", "[")):
        return (
            "; the file looks like JSON, not CSV (a FHIR file loads when named .json/.ndjson or with "
            '[source] format = "fhir" in a mapping)'
        )
    if first.startswith("<"):
        return "; the file looks like HTML or XML, not CSV (a web page or error page saved instead of the export?)"
    return ""


def resolve_kind(path: Path, canonical: list[str], mapping: Mapping, forced: str | None) -> Kind:
    name = forced or mapping.kind
    if name:
        if name not in KINDS:
            raise FileLevelError(f"{path.name}: unknown kind {name!r}; use one of {', '.join(KINDS)}")
        kind = KINDS[name]
    else:
        detected = detect_kind(canonical)
        if detected is None:
            closest = max(KINDS.values(), key=lambda k: len(set(k.required) & set(canonical)))
            missing = [c for c in closest.required if c not in canonical]
            if len(closest.required) - len(missing) >= 2:
                raise FileLevelError(
                    f"{path.name}: looks like a {closest.name} file but is missing required column(s): "
                    f"{', '.join(missing)}"
                )
            raise FileLevelError(
                f"{path.name}: cannot tell the file kind from its header {canonical[:8]}; "
                f"expected the columns of one of: {', '.join(KINDS)} (or pass --kind)"
                + _separator_hint(canonical, mapping)
                + _content_hint(canonical)
            )
        kind = detected
    present = set(canonical) | set(mapping.constants)
    missing = [c for c in kind.required if c not in present]
    if missing:
        raise FileLevelError(
            f"{path.name}: {kind.name} file is missing required column(s): {', '.join(missing)}"
        )
    dupes = sorted({c for c in canonical if c and canonical.count(c) > 1})
    if dupes:
        raise FileLevelError(f"{path.name}: column(s) appear more than once: {', '.join(dupes)}")
    return kind


def iter_chunks(
    path: Path, mapping: Mapping, source_header: list[str], canonical: list[str], chunk_rows: int
) -> Iterator[Chunk]:
    header_line = 1 + mapping.skip_rows
    next_line = header_line + 1
    quoted = _has_quotes_after_header(path, mapping, source_header)
    try:
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            sep=mapping.delimiter,
            encoding=mapping.encoding,
            skiprows=mapping.skip_rows,
            skip_blank_lines=False,
            chunksize=chunk_rows,
        )
        for raw in reader:
            # a quoted cell spanning lines moves every later line down; without quotes there is none
            extra = _embedded_newlines(raw) if quoted else np.zeros(len(raw), dtype="int64")
            lines = pd.Series(
                next_line + np.arange(len(raw)) + (np.cumsum(extra) - extra), index=raw.index, dtype="int64"
            )
            next_line += len(raw) + int(extra.sum())
            yield _chunk(raw, lines, mapping, source_header, canonical, mapping.delimiter)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, mapping.encoding, exc) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise FileLevelError(f"{path.name}: cannot be parsed as CSV ({_one_line(exc)})") from None


def _chunk(
    raw: pd.DataFrame,
    lines: pd.Series,
    mapping: Mapping,
    source_header: list[str],
    canonical: list[str],
    delimiter: str,
) -> Chunk:
    raw.columns = source_header
    frame = raw.copy()
    frame.columns = canonical
    frame = frame.fillna("")
    for col, value in mapping.constants.items():
        if col not in frame.columns:
            frame[col] = value
    # Blank lines are not rows: drop them (their line numbers simply do not appear).
    named = [i for i, c in enumerate(canonical) if c]
    empty = (frame.iloc[:, named] == "").all(axis=1) if named else pd.Series(True, index=frame.index)
    if empty.any():
        frame, lines = frame[~empty], lines[~empty]
    return Chunk(frame=frame, lines=lines, source_header=source_header, delimiter=delimiter)


# --- sources: one file -> segments of (kind, chunks) -----------------------------------------------------------------
FORMAT_SUFFIXES = {".xlsx": "xlsx", ".xlsm": "xlsx", ".json": "fhir", ".ndjson": "fhir", ".jsonl": "fhir"}


def detect_format(path: Path, mapping: Mapping) -> str:
    """csv, xlsx or fhir: the mapping's [source] format, else the file name, else the first bytes."""
    if mapping.format:
        return mapping.format
    if path.suffix.lower() in FORMAT_SUFFIXES:
        return FORMAT_SUFFIXES[path.suffix.lower()]
    if path.suffix.lower() == ".xls":
        raise FileLevelError(f"{path.name}: old binary .xls workbooks are not read; save it as .xlsx or CSV")
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:4] == b"PK\x03\x04":
        return "xlsx"
    from etl.fhir import is_fhir_head

    return "fhir" if is_fhir_head(head) else "csv"


class CsvSource:
    """A delimited text file: one kind, streamed in chunks by pandas."""

    format = "csv"

    def __init__(self, path: Path, mapping: Mapping, forced_kind: str | None) -> None:
        self.path, self.mapping = path, mapping
        self.source_header, self.canonical = read_header(path, mapping)
        self.kind = resolve_kind(path, self.canonical, mapping, forced_kind)
        self.batch_kind = self.kind.name
        self.kinds = (self.kind,)

    def segments(self, chunk_rows: int) -> Iterator[tuple[Kind, Iterator[Chunk]]]:
        yield self.kind, iter_chunks(self.path, self.mapping, self.source_header, self.canonical, chunk_rows)

    def message(self) -> str | None:
        return None


class XlsxSource(CsvSource):
    """The first (or named) sheet of a workbook: one kind, rows streamed by openpyxl in read-only mode."""

    format = "xlsx"

    def __init__(self, path: Path, mapping: Mapping, forced_kind: str | None) -> None:
        from etl.xlsx import XlsxError, XlsxSheet

        self.path, self.mapping = path, mapping
        try:
            self.sheet = XlsxSheet(path, mapping, forced_kind)
        except XlsxError as exc:
            raise FileLevelError(f"{path.name}: {exc}") from None
        self.source_header = self.sheet.source_header
        self.canonical = mapping.canonical_header(self.source_header)
        self.kind = resolve_kind(path, self.canonical, mapping, forced_kind)
        self.batch_kind = self.kind.name
        self.kinds = (self.kind,)

    def segments(self, chunk_rows: int) -> Iterator[tuple[Kind, Iterator[Chunk]]]:
        def chunks() -> Iterator[Chunk]:
            for raw, lines in self.sheet.frames(self.canonical, chunk_rows):
                yield _chunk(raw, lines, self.mapping, self.source_header, self.canonical, ",")

        yield self.kind, chunks()


def open_source(path: Path, mapping: Mapping, forced_kind: str | None = None):
    """The file as a source of (kind, chunks) segments, in load order; FileLevelError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise FileLevelError(f"{path.name}: is a folder; pass its files (e.g. {path.name}/*.csv)")
    if not path.is_file():
        raise FileLevelError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise FileLevelError(f"{path.name}: the file is empty")
    fmt = detect_format(path, mapping)
    if fmt == "xlsx":
        return XlsxSource(path, mapping, forced_kind)
    if fmt == "fhir":
        from etl.fhir import FhirFileError, FhirSource

        if forced_kind:
            raise FileLevelError(f"{path.name}: a FHIR file holds several kinds; --kind does not apply to it")
        try:
            return FhirSource(path, mapping)
        except FhirFileError as exc:
            raise FileLevelError(f"{path.name}: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FileLevelError(f"{path.name}: cannot be read ({_one_line(exc)})") from None
    return CsvSource(path, mapping, forced_kind)


def _encoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> FileLevelError:
    return FileLevelError(
        f"{path.name}: not readable as {encoding.removesuffix('-sig')} ({exc.reason} at byte {exc.start}); "
        "set `encoding` in the mapping (e.g. latin-1)"
    )


def _has_quotes_after_header(path: Path, mapping: Mapping, source_header: list[str]) -> bool:
    """Whether any quote character follows the header line (then a cell may span lines). A byte scan, ~20 ms per
    50 MB, instead of searching every cell of every chunk for newlines (0.15 s per 1M scores). Answers True
    whenever it cannot be sure: rows skipped before the header, a header cell with a newline, a header line not
    ended by a newline, an encoding that writes the quote as another byte."""
    if mapping.skip_rows or any("\n" in h for h in source_header):
        return True
    try:
        encoding = codecs.lookup(mapping.encoding).name
        quote = '"'.encode("utf-8" if encoding == "utf-8-sig" else encoding)  # no BOM before it
    except (LookupError, UnicodeError):
        return True
    if quote != b'"':
        return True
    with path.open("rb") as fh:
        header = fh.readline(1 << 16)  # a newline inside a quoted header cell is excluded above
        if not header.endswith(b"\n"):  # another line ending, or a very long header: do not guess
            return True
        for block in iter(lambda: fh.read(1 << 20), b""):
            if quote in block:
                return True
    return False


def _embedded_newlines(raw: pd.DataFrame) -> np.ndarray:
    """Newlines inside each record's quoted cells (zeros, cheaply, when there are none)."""
    counts = np.zeros(len(raw), dtype="int64")
    for col in raw.columns:
        s = raw[col]
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        has = s.str.contains("\n", regex=False)
        if has.fillna(False).any():
            counts += s.str.count("\n").fillna(0).to_numpy(dtype="int64")
    return counts


def raw_text(frame: pd.DataFrame, delimiter: str = ",") -> list[str]:
    """Rebuild rejected rows as delimited text in the file's own column order and separator."""
    out = []
    for values in frame.itertuples(index=False, name=None):
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="").writerow(values)
        out.append(buf.getvalue())
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
