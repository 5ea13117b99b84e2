"""The ETL's date and timestamp text is exactly what SQLAlchemy itself stores on SQLite (warehouse/sqltext.py)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Date, DateTime
from sqlalchemy.dialects import sqlite

from warehouse.sqltext import timestamp_text

SQLITE = sqlite.dialect()
#: SQLAlchemy's own conversion of a bound value on SQLite: the text it stores and compares with.
AS_DATETIME = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
AS_DATE = Date().dialect_impl(SQLITE).bind_processor(SQLITE)
#: The range numpy's datetime64[us] and pandas both hold.
INSTANTS = st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2261, 12, 31))


@given(st.lists(INSTANTS, max_size=30))
def test_same_text_as_sqlalchemy(values: list[datetime]) -> None:
    arr = np.array(values, dtype="datetime64[us]")
    assert timestamp_text(arr).tolist() == [AS_DATETIME(v) for v in values]
    assert timestamp_text(arr, day=True).tolist() == [AS_DATE(v.date()) for v in values]


def test_missing_values_are_none_and_repeats_are_kept_in_place() -> None:
    arr = np.array(["2025-01-31T08:00", "NaT", "2025-01-31T08:00", "2024-02-29"], dtype="datetime64[us]")
    assert timestamp_text(arr).tolist() == [
        "2025-01-31 08:00:00.000000",
        None,
        "2025-01-31 08:00:00.000000",
        "2024-02-29 00:00:00.000000",
    ]
    assert timestamp_text(arr, day=True).tolist() == ["2025-01-31", None, "2025-01-31", "2024-02-29"]
    assert AS_DATE(date(2024, 2, 29)) == "2024-02-29"


def test_empty() -> None:
    assert timestamp_text(np.zeros(0, dtype="datetime64[us]")).tolist() == []
