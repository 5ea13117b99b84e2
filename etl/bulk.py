"""Fast bulk inserts of a DataFrame: executemany on SQLite, COPY on PostgreSQL.

Only our own table and column names go into the statement text; every value travels as a parameter or COPY row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table


def python_columns(frame: pd.DataFrame, table: Table) -> list[list[Any]]:
    """Column-wise lists of plain Python values (None for missing), as both drivers accept them."""
    out = []
    for column in table.columns:
        s = frame[column.name]
        integer = column.type.python_type is int if hasattr(column.type, "python_type") else False
        if integer and s.dtype.kind in "fiu":
            arr = s.to_numpy(dtype=float)
            out.append([None if v != v else int(v) for v in arr.tolist()])
        elif s.dtype.kind in "f":
            arr = s.to_numpy(dtype=float)
            values = arr.tolist()
            if np.isnan(arr).any():
                values = [None if v != v else v for v in values]
            out.append(values)
        elif s.dtype.kind == "b":
            out.append([bool(v) for v in s.tolist()])
        else:
            out.append(s.astype(object).where(s.notna(), None).tolist())
    return out


def prepare_rows(table: Table, frame: pd.DataFrame) -> list[tuple]:
    """Row tuples in the table's column order (the CPU-bound half, safe to run in a worker thread).

    PostgreSQL gets the same tuples through COPY's write_row: building COPY text column-wise in pandas was tried
    and cost three times more (string conversions), while the server-side row checks dominate either way.
    """
    return list(zip(*python_columns(frame, table), strict=True))


def insert_rows(
    conn: Connection,
    table: Table,
    rows: list[tuple],
    columns: Sequence[str] | None = None,
    constant: int | None = None,
) -> None:
    """Bulk-insert rows from `prepare_rows`; `columns` names what each row holds (default: the table's columns)
    and `constant`, when given, is one more value appended to every row (the batch_id of the fast path).

    Only our own table and column names go into the statement text; the values travel as COPY data or
    executemany parameters.
    """
    if not rows:
        return
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row if constant is None else (*row, constant))
    else:
        params = rows if constant is None else [(*r, constant) for r in rows]
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", params)  # noqa: S608


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """A DataFrame into a table whose columns it names (the marts)."""
    if not frame.empty:
        insert_rows(conn, table, prepare_rows(table, frame))
