"""Portable SQL pieces that SQLite and PostgreSQL spell differently (used by the ETL's rules and the dashboard)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """Whole days from the first date to the second (`end - start`), as an integer."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between_default(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    # CAST: `date - date` is an integer, but a timestamp or text operand would give an interval or fail.
    return f"(CAST({compiler.process(end, **kw)} AS DATE) - CAST({compiler.process(start, **kw)} AS DATE))"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"CAST(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}) AS INTEGER)"
