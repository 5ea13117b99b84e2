"""Spreadsheet input (.xlsx): rows streamed with openpyxl's read-only mode, turned into text cells like a CSV's.

The sheet is the first one, or `[source] sheet`. The header is `[source] header_row` (1-based), else the row after
`skip_rows`, else found: the first of the top rows whose (mapped) cells name a file kind, which skips merged title
rows and notes above the table. Trailing empty columns and empty rows are dropped. Typed cells become text the way
the mapping expects to read it: numbers with the mapping's decimal mark, dates in the mapping's date format for
that column (ISO otherwise), so validation is the same as for CSV. Line numbers are the sheet's row numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd

from etl.kinds import KINDS, detect_kind
from etl.mapping import Mapping

HEADER_SCAN_ROWS = 30


class XlsxError(ValueError):
    """The workbook cannot be read (the loader turns this into a file-level error)."""


def _open(path: Path, mapping: Mapping):
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise XlsxError("reading .xlsx needs the package openpyxl (pip install 'openpyxl>=3.1')") from exc
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException, ...
        raise XlsxError(f"not a readable .xlsx spreadsheet ({' '.join(str(exc).split())[:200]})") from None
    if mapping.sheet is not None:
        if mapping.sheet not in wb.sheetnames:
            wb.close()
            raise XlsxError(f"no sheet named {mapping.sheet!r} (sheets: {', '.join(wb.sheetnames)})")
        return wb, wb[mapping.sheet]
    return wb, wb.worksheets[0]


def sheet_names(path: Path) -> list[str]:
    wb, _ = _open(path, Mapping())
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def _text(v: Any, decimal: str, date_format: str | None) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        if date_format:
            return v.strftime(date_format)
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.strftime(date_format) if date_format else v.isoformat()
    if isinstance(v, float):
        text = f"{int(v)}" if v.is_integer() and abs(v) < 1e15 else repr(v)
        return text.replace(".", decimal) if decimal != "." else text
    if isinstance(v, int):
        return str(v)
    return str(v).strip()


def _trim(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and cells[end - 1] == "":
        end -= 1
    return cells[:end]


class XlsxSheet:
    """Header and rows of one sheet, streamed."""

    def __init__(self, path: Path, mapping: Mapping, forced_kind: str | None = None) -> None:
        self.path = path
        self.mapping = mapping
        wb, ws = _open(path, mapping)
        self.sheet_name = ws.title
        try:
            self.header_row, self.source_header = self._find_header(ws, forced_kind)
        finally:
            wb.close()

    def _find_header(self, ws, forced_kind: str | None) -> tuple[int, list[str]]:
        if self.mapping.header_row is not None or self.mapping.skip_rows:
            target = self.mapping.header_row or self.mapping.skip_rows + 1
            for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
                if n == target:
                    return n, _trim([_text(v, ".", None) for v in row])
            raise XlsxError(f"sheet {ws.title!r} has no row {target} (header_row)")
        wanted = KINDS.get(forced_kind or self.mapping.kind or "")
        best: tuple[int, int, list[str]] | None = None
        for n, row in enumerate(ws.iter_rows(values_only=True, max_row=HEADER_SCAN_ROWS), start=1):
            cells = _trim([_text(v, ".", None) for v in row])
            filled = sum(1 for c in cells if c)
            if filled < 2:
                continue  # a title (merged cells keep their text in the first cell only) or a blank row
            canonical = self.mapping.canonical_header(cells)
            if (wanted and set(wanted.signature) <= set(canonical)) or (
                not wanted and detect_kind(canonical)
            ):
                return n, cells
            if best is None or filled > best[1]:
                best = (n, filled, cells)
        if best is None:
            raise XlsxError(
                f"sheet {ws.title!r} has no header row (no row with two or more cells at the top)"
            )
        return best[0], best[2]

    def rows(self, canonical: list[str]) -> Iterator[tuple[int, list[str]]]:
        """(sheet row number, cells as text) for every non-empty row below the header."""
        width = len(self.source_header)
        formats = [self.mapping.date_format_for(c) for c in canonical]
        decimal = self.mapping.decimal
        wb, ws = _open(self.path, self.mapping)
        try:
            for n, row in enumerate(
                ws.iter_rows(min_row=self.header_row + 1, values_only=True), start=self.header_row + 1
            ):
                cells = [
                    _text(v, decimal, formats[i] if i < width else None) for i, v in enumerate(row[:width])
                ]
                if len(cells) < width:
                    cells += [""] * (width - len(cells))
                if any(cells):
                    yield n, cells
        finally:
            wb.close()

    def frames(self, canonical: list[str], chunk_rows: int) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
        lines: list[int] = []
        data: list[list[str]] = []
        for n, cells in self.rows(canonical):
            lines.append(n)
            data.append(cells)
            if len(data) >= chunk_rows:
                yield (
                    pd.DataFrame(data, columns=self.source_header, dtype=object),
                    pd.Series(lines, dtype="int64"),
                )
                lines, data = [], []
        if data:
            yield (
                pd.DataFrame(data, columns=self.source_header, dtype=object),
                pd.Series(lines, dtype="int64"),
            )
