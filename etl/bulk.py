"""Fast bulk inserts of a DataFrame: executemany on SQLite, COPY on PostgreSQL.

Only our own table and column names go into the statement text; every value travels as a parameter or COPY row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    """Row tuples in the table's column order (the CPU-bound half, safe to run in a worker thread)."""
    return list(zip(*python_columns(frame, table), strict=True))


def insert_rows(
    conn: Connection, table: Table, rows: Iterable[tuple], columns: Sequence[str] | None = None
) -> None:
    """Bulk-insert row tuples; `columns` names what each tuple holds (default: the table's columns in order).

    The fresh-patient fast path writes validated rows straight into a fact table with this, so the names let
    its tuples keep the stage's order plus a trailing batch_id.
    """
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        if not isinstance(rows, list):
            rows = list(rows)
        if not rows:
            return
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows)  # noqa: S608


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    if not frame.empty:
        insert_rows(conn, table, prepare_rows(table, frame))
