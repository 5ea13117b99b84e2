"""Fixtures for the dashboard tests: a freshly migrated warehouse per test, filled from `factories`.

`warehouse` runs each test on SQLite and, when the project's tests/conftest.py provides a `pg_engine` fixture (a
fresh migrated PostgreSQL warehouse), on PostgreSQL too; without it the PostgreSQL variant is skipped.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dashboard.app import create_app
from dashboard.context import AppContext
from dashboard.scope import Scope
from tests.dashboard import factories
from warehouse.db import make_engine
from warehouse.migrate import upgrade


@pytest.fixture
def sqlite_warehouse(tmp_path) -> Engine:
    """A migrated SQLite warehouse holding the five patients of `factories`."""
    engine = make_engine(f"sqlite:///{tmp_path}/w.sqlite")
    upgrade(engine)
    factories.build(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request) -> Engine:
    """The factories warehouse on each backend available."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_warehouse")
    try:
        engine = request.getfixturevalue("pg_engine")
    except pytest.FixtureLookupError:
        pytest.skip("no pg_engine fixture (tests/conftest.py) in this checkout")
    factories.build(engine)
    return engine


def make_ctx(engine: Engine, scope: Scope = Scope.clinic_wide()) -> AppContext:
    return AppContext(engine=engine, scope_provider=lambda: scope)


@pytest.fixture
def ctx(warehouse) -> AppContext:
    """A clinic-wide viewer's context."""
    return make_ctx(warehouse)


@pytest.fixture
def app(sqlite_warehouse):
    return create_app(sqlite_warehouse)
