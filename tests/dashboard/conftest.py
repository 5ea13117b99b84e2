"""Fixtures for the dashboard tests: a freshly migrated warehouse per test, filled from `factories`."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.dashboard import factories
from warehouse.db import make_engine
from warehouse.migrate import upgrade


@pytest.fixture
def warehouse(tmp_path) -> Engine:
    """A migrated SQLite warehouse holding the five patients of `factories`."""
    engine = make_engine(f"sqlite:///{tmp_path}/w.sqlite")
    upgrade(engine)
    factories.build(engine)
    yield engine
    engine.dispose()
