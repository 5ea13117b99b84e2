"""SQLite bulk inserts: every row lands once, in order, whatever the count against the statement sizes, and only a
few distinct statement texts exist (the driver keeps each distinct text prepared in its cache)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine

from etl.bulk import SQLITE_ROWS_PER_STATEMENT, insert_rows, prepare_rows, statement_sizes

SIZES = [0, 1, 9, 999, SQLITE_ROWS_PER_STATEMENT, SQLITE_ROWS_PER_STATEMENT + 1, 12_345]


@pytest.mark.parametrize("n", SIZES)
def test_every_row_once_with_the_constant(n):
    engine = create_engine("sqlite://")
    md = MetaData()
    t = Table(
        "t", md, Column("a", Integer), Column("b", String), Column("c", Float), Column("batch", Integer)
    )
    md.create_all(engine)
    frame = pd.DataFrame(
        {"a": range(n), "b": [f"p{i}" for i in range(n)], "c": [i / 7 if i % 5 else None for i in range(n)]}
    )
    staged = Table("s", MetaData(), Column("a", Integer), Column("b", String), Column("c", Float))
    with engine.begin() as conn:
        insert_rows(conn, t, prepare_rows(staged, frame), ["a", "b", "c", "batch"], constant=7)
        got = conn.exec_driver_sql("SELECT a, b, c, batch FROM t ORDER BY rowid").all()
    assert got == [(i, f"p{i}", i / 7 if i % 5 else None, 7) for i in range(n)]


@pytest.mark.parametrize("n", [*SIZES, 24_987, 99_999])
def test_few_statement_sizes(n):
    sizes = statement_sizes(n, SQLITE_ROWS_PER_STATEMENT)
    assert sum(size * count for size, count in sizes) == n
    assert {size for size, _ in sizes} <= {SQLITE_ROWS_PER_STATEMENT, 1000, 100, 10, 1}
