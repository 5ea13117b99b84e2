"""Fixtures for the dashboard tests: the project's fresh warehouses (tests/conftest.py) filled from `factories`."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dashboard.app import create_app
from dashboard.context import AppContext
from dashboard.scope import Scope
from tests.dashboard import factories


@pytest.fixture
def sqlite_warehouse(sqlite_engine) -> Engine:
    """A migrated SQLite warehouse holding the five patients of `factories`."""
    factories.build(sqlite_engine)
    return sqlite_engine


@pytest.fixture
def warehouse(engine) -> Engine:
    """The factories warehouse, once on SQLite and once on PostgreSQL."""
    factories.build(engine)
    return engine


def make_ctx(engine: Engine, scope: Scope = Scope.clinic_wide()) -> AppContext:
    return AppContext(engine=engine, scope_provider=lambda: scope)


@pytest.fixture
def ctx(sqlite_warehouse) -> AppContext:
    """A clinic-wide viewer's context on SQLite."""
    return make_ctx(sqlite_warehouse)


@pytest.fixture
def app(sqlite_warehouse):
    return create_app(sqlite_warehouse)
