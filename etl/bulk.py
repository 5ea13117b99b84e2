"""Fast bulk inserts of a DataFrame: multi-row INSERT statements on SQLite, COPY on PostgreSQL.

Only our own table and column names go into the statement text; every value travels as a parameter or COPY row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table

#: Rows per SQLite INSERT statement, capped so that parameters stay under 30,000 (SQLite allows 32,766). 1M scores
#: in one thread: one row per statement 1.87 s, 100 per statement 1.38 s, 1,000 or 4,000 1.36 s. Many rows per
#: statement also mean few GIL hand-overs: the driver releases the GIL while SQLite runs each statement and must
#: take it back from the read-ahead thread after each one. 1,000 rather than 4,000: the driver keeps every statement
#: it prepared, and the larger ones held ~5 MB more after a 10M-row load, in the same time.
SQLITE_ROWS_PER_STATEMENT = 1000


def _python_values(s: pd.Series, integer: bool) -> list[Any]:
    """One column as plain Python values (None for missing), as both drivers accept them. Whole-column numpy
    conversions only: a Python loop per value cost more than the insert of the value."""
    kind = s.dtype.kind
    if kind in "iu":
        return s.to_numpy().tolist()
    if kind == "f":
        arr = s.to_numpy(dtype=float)
        missing = np.isnan(arr)
        if not missing.any():
            return arr.astype(np.int64).tolist() if integer else arr.tolist()
        cast = int if integer else float
        return [None if m else cast(v) for v, m in zip(arr.tolist(), missing.tolist(), strict=True)]
    if kind == "b":
        return s.to_numpy(dtype=bool).tolist()
    values = s.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values.tolist()


@dataclass(frozen=True)
class Rows:
    """Rows held column-wise as Python lists, in a table's column order (or the order a caller names).

    Column-wise because every step that follows is a whole-list operation at C speed: the row-major parameter
    list of the SQLite statements is built by slice assignment, a subset by `itertools.compress`; only COPY on
    PostgreSQL wants one tuple per row.
    """

    columns: tuple[list[Any], ...]

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def tuples(self) -> Iterator[tuple]:
        return zip(*self.columns, strict=True)

    def subset(self, mask: np.ndarray) -> Rows:
        keep = mask.tolist()
        return Rows(tuple(list(compress(col, keep)) for col in self.columns))

    def flat(self, constant: Any = None, with_constant: bool = False) -> list[Any]:
        """Row-major values (row 0's columns, then row 1's, ...), optionally with one more constant per row."""
        width = len(self.columns) + with_constant
        out: list[Any] = [None] * (len(self) * width)
        for i, col in enumerate(self.columns):
            out[i::width] = col
        if with_constant:
            out[width - 1 :: width] = [constant] * len(self)
        return out


def prepare_rows(table: Table, frame: pd.DataFrame) -> Rows:
    """The frame's columns named like the table's, as Python values (the CPU-bound half, run in a worker thread
    by the loader while the database inserts the previous chunk)."""
    cols = []
    for column in table.columns:
        try:
            integer = column.type.python_type is int
        except NotImplementedError:
            integer = False
        cols.append(_python_values(frame[column.name], integer))
    return Rows(tuple(cols))


def _insert_sqlite(
    conn: Connection, table: Table, rows: Rows, names: list[str], constant: int | None
) -> None:
    """Statements of a few fixed sizes only (the largest, then 1,000, 100, 10 and 1 rows for the rest): the driver
    keeps every distinct statement text prepared in its cache, and one statement per chunk's exact remainder kept
    up to 128 prepared statements of ~1,000 rows (~45 MB resident after a 10M-row load)."""
    width = len(names)
    values = rows.flat(constant, with_constant=constant is not None)
    per = max(1, min(SQLITE_ROWS_PER_STATEMENT, 30_000 // width))
    one = "(" + ", ".join("?" * width) + ")"
    cur = (
        conn.connection.driver_connection.cursor()
    )  # the driver's own cursor: lists as parameters, no copies
    try:
        start = 0
        for size, count in statement_sizes(len(rows), per):
            step = size * width
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {', '.join([one] * size)}"  # noqa: S608
            cur.executemany(sql, (values[start + i * step : start + (i + 1) * step] for i in range(count)))
            start += count * step
    finally:
        cur.close()


def statement_sizes(n: int, largest: int) -> list[tuple[int, int]]:
    """(rows per statement, statements) covering n rows: as many of the largest as fit, then 1,000, 100, 10, 1."""
    out = []
    for size in sorted({largest, *(s for s in (1000, 100, 10, 1) if s < largest)}, reverse=True):
        count, n = divmod(n, size)
        if count:
            out.append((size, count))
    return out


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Rows,
    columns: Sequence[str] | None = None,
    constant: int | None = None,
) -> None:
    """Bulk-insert rows from `prepare_rows`; `columns` names what each row holds (default: the table's columns)
    and `constant`, when given, is one more value appended to every row (the batch_id of the fast path)."""
    if not len(rows):
        return
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows.tuples():
                copy.write_row(row if constant is None else (*row, constant))
    else:
        _insert_sqlite(conn, table, rows, names, constant)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """A DataFrame into a table whose columns it names (the marts)."""
    if not frame.empty:
        insert_rows(conn, table, prepare_rows(table, frame))
