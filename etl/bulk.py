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


def prepare_rows(table: Table, frame: pd.DataFrame, dialect: str = "sqlite") -> list[tuple] | list[str]:
    """Rows in the table's column order, ready for `insert_rows` (the CPU-bound half, run in a worker thread).

    SQLite: tuples for executemany. PostgreSQL: lines of COPY text built column-wise, so the main thread only
    joins and sends them (psycopg's per-row write_row cost more than the COPY itself).
    """
    if dialect == "postgresql":
        return copy_lines(table, frame)
    return list(zip(*python_columns(frame, table), strict=True))


def _escape_copy(text: pd.Series) -> pd.Series:
    """COPY text format: backslash, tab, newline and carriage return are written as escapes."""
    if not text.str.contains(r"[\\\t\n\r]", regex=True).any():
        return text
    return (
        text.str.replace("\\", "\\\\", regex=False)
        .str.replace("\t", "\\t", regex=False)
        .str.replace("\n", "\\n", regex=False)
        .str.replace("\r", "\\r", regex=False)
    )


def copy_lines(table: Table, frame: pd.DataFrame) -> list[str]:
    """Each row as one line of PostgreSQL COPY text (tab-separated, \\N for NULL, without the newline).

    Meant for the stage tables' plain types (text, integers, floats, booleans): floats keep their shortest
    round-trip form, so values arrive exactly as validated.
    """
    if frame.empty:
        return []
    line: pd.Series | None = None
    for column in table.columns:
        s = frame[column.name]
        integer = column.type.python_type is int if hasattr(column.type, "python_type") else False
        if s.dtype.kind in "fiu":
            arr = s.to_numpy(dtype=float)
            nan = np.isnan(arr)
            clean = np.where(nan, 0.0, arr)
            text = (clean.astype(np.int64) if integer else clean).astype(str)
            part = pd.Series(np.where(nan, "\\N", text), dtype="str")
        elif s.dtype.kind == "b":
            part = pd.Series(np.where(s.to_numpy(dtype=bool), "t", "f"), dtype="str")
        else:
            missing = s.isna().to_numpy()
            text = _escape_copy(s.astype(object).where(~missing, "").astype("str").reset_index(drop=True))
            part = text.where(~missing, "\\N")
        line = part if line is None else line + "\t" + part
    return line.tolist()


def insert_rows(
    conn: Connection,
    table: Table,
    rows: list[tuple] | list[str],
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
            if isinstance(rows[0], str):
                end = ("" if constant is None else f"\t{int(constant)}") + "\n"
                copy.write(end.join(rows) + end)
            else:
                for row in rows:
                    copy.write_row(row if constant is None else (*row, constant))
    else:
        params = rows if constant is None else [(*r, constant) for r in rows]
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", params)  # noqa: S608


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """A DataFrame into a table as it is (the marts): tuples on both backends (COPY write_row on PostgreSQL),
    which handle whatever Python types the frame's object columns hold."""
    if not frame.empty:
        insert_rows(conn, table, prepare_rows(table, frame))
