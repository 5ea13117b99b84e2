"""Read stage: a file on disk -> its kind and a stream of string-typed chunks with their source line numbers.

Nothing is cast here: every cell stays text so that a rejected row can be stored exactly as it came.
"""

from __future__ import annotations

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

DEFAULT_CHUNK_ROWS = 50_000


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_text(path: Path, encoding: str) -> None:
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head.strip():
        raise FileLevelError(f"{path.name}: the file is empty")
    if b"\x00" in head:
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
    source = [str(c) for c in head.columns]
    return source, mapping.canonical_header(source)


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
            )
        kind = detected
    present = set(canonical) | set(mapping.constants)
    missing = [c for c in kind.required if c not in present]
    if missing:
        raise FileLevelError(
            f"{path.name}: {kind.name} file is missing required column(s): {', '.join(missing)}"
        )
    dupes = sorted({c for c in canonical if canonical.count(c) > 1 and c})
    if dupes:
        raise FileLevelError(f"{path.name}: column(s) appear more than once: {', '.join(dupes)}")
    return kind


def iter_chunks(
    path: Path, mapping: Mapping, source_header: list[str], canonical: list[str], chunk_rows: int
) -> Iterator[Chunk]:
    header_line = 1 + mapping.skip_rows
    next_line = header_line + 1
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
            extra = _embedded_newlines(raw)  # a quoted cell spanning lines moves every later line down
            lines = pd.Series(
                next_line + np.arange(len(raw)) + (np.cumsum(extra) - extra), index=raw.index, dtype="int64"
            )
            next_line += len(raw) + int(extra.sum())
            raw.columns = source_header
            frame = raw.copy()
            frame.columns = canonical
            frame = frame.fillna("")
            for col, value in mapping.constants.items():
                if col not in frame.columns:
                    frame[col] = value
            # Blank lines are not rows: drop them (their line numbers simply do not appear).
            empty = (frame == "").all(axis=1)
            if empty.any():
                frame, lines, raw = frame[~empty], lines[~empty], raw[~empty]
            yield Chunk(frame=frame, lines=lines, source_header=source_header, delimiter=mapping.delimiter)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, mapping.encoding, exc) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise FileLevelError(f"{path.name}: cannot be parsed as CSV ({_one_line(exc)})") from None


def _encoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> FileLevelError:
    return FileLevelError(
        f"{path.name}: not readable as {encoding.removesuffix('-sig')} ({exc.reason} at byte {exc.start}); "
        "set `encoding` in the mapping (e.g. latin-1)"
    )


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
