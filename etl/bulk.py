"""Fast bulk inserts of a DataFrame: one JSON document per chunk on SQLite, COPY on PostgreSQL.

Only our own table and column names go into the statement text; every value travels as a parameter or COPY row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
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


#: json_each and the JSON functions are built into every SQLite from 3.38 on; older builds get executemany.
SQLITE_JSON = sqlite3.sqlite_version_info >= (3, 38, 0)


@dataclass(frozen=True)
class JsonRows:
    """A chunk's rows as one JSON array of arrays, inserted by a single `INSERT ... SELECT ... FROM json_each(?)`.

    Why: executemany hands SQLite one row at a time and re-takes the GIL after each, so the read-ahead thread's
    validation and the insert kept stopping each other. One statement per chunk runs the whole insert inside
    SQLite with the GIL released, in parallel with the validation of the next chunk. The JSON is written by
    json.dumps in the worker thread: floats in their round-trip form, so stored values are exactly the validated
    ones. `where` optionally keeps (or drops) the rows whose element at a position is in a set of values.
    """

    text: str
    count: int
    where: tuple[int, tuple[str, ...], bool] | None = None

    def __len__(self) -> int:
        return self.count

    def only(self, position: int, values: set[str], keep: bool = True) -> JsonRows:
        return JsonRows(self.text, self.count, (position, tuple(sorted(values)), keep))


def prepare_rows(table: Table, frame: pd.DataFrame, dialect: str | None = None) -> list[tuple] | JsonRows:
    """Rows in the table's column order, ready for `insert_rows` (the CPU-bound half, run in a worker thread).

    dialect "sqlite": one JSON text (see JsonRows), for the loader's stage-shaped rows whose values are plain
    text, numbers and None. Otherwise tuples: executemany, or COPY's write_row on PostgreSQL (building COPY
    text column-wise in pandas was tried and cost three times more; the server-side row checks dominate).
    """
    columns = python_columns(frame, table)
    if dialect == "sqlite" and SQLITE_JSON:
        text = json.dumps(list(zip(*columns, strict=True)), allow_nan=False, ensure_ascii=False)
        return JsonRows(text, len(frame))
    return list(zip(*columns, strict=True))


def _insert_json(
    conn: Connection, table: Table, rows: JsonRows, names: list[str], constant: int | None
) -> None:
    n = len(names) - (constant is not None)
    values = [f"json_extract(value, '$[{i}]')" for i in range(n)]
    params: list[Any] = []
    if constant is not None:
        values.append("?")
        params.append(int(constant))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)} FROM json_each(?)"  # noqa: S608
    params.append(rows.text)
    if rows.where is not None:
        position, keys, keep = rows.where
        sql += f" WHERE json_extract(value, '$[{int(position)}]') {'IN' if keep else 'NOT IN'} "
        sql += "(SELECT value FROM json_each(?))"
        params.append(json.dumps(list(keys), ensure_ascii=False))
    conn.exec_driver_sql(sql, tuple(params))


def insert_rows(
    conn: Connection,
    table: Table,
    rows: list[tuple] | JsonRows,
    columns: Sequence[str] | None = None,
    constant: int | None = None,
) -> None:
    """Bulk-insert rows from `prepare_rows`; `columns` names what each row holds (default: the table's columns)
    and `constant`, when given, is one more value appended to every row (the batch_id of the fast path).

    Only our own table and column names go into the statement text; the values travel as COPY data or
    executemany parameters.
    """
    if not len(rows):
        return
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    if isinstance(rows, JsonRows):
        _insert_json(conn, table, rows, names, constant)
    elif conn.dialect.name == "postgresql":
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
