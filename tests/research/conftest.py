"""Fixtures for the research tests: one generated clinic export, loaded into fresh warehouses (both backends via
the project's `engine` fixture) or once per session into a shared read-only SQLite warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from etl.generate import generate
from etl.load import load_files
from research.deid import ExportKey
from research.export import export_bundle
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.schema import sessions

AS_OF = date(2026, 11, 20)
N_PATIENTS = 80
SEED = 11
TEST_KEY = ExportKey(b"research-tests-0123456789abcdef", "explicit")
#: Free text written into a few skip reasons: a name, an original id and a full date that must never leave.
FREE_TEXT = "Rang Mrs Mockford on 2026-09-14 about P000003"


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("gen"), N_PATIENTS, seed=SEED, as_of=AS_OF)


def fill(engine: Engine, files: dict[str, Path]) -> Engine:
    """Load the generated files, then put free text into three skip reasons."""
    load_files(engine, list(files.values()), as_of=AS_OF)
    with engine.begin() as conn:
        ids = (
            conn.execute(
                select(sessions.c.session_id)
                .where(sessions.c.status == "skipped")
                .order_by(sessions.c.session_id)
            )
            .scalars()
            .all()[:3]
        )
        conn.execute(update(sessions).where(sessions.c.session_id.in_(ids)).values(skip_reason=FREE_TEXT))
    return engine


@pytest.fixture
def warehouse(engine: Engine, generated: dict[str, Path]) -> Engine:
    """A fresh warehouse holding the generated cohort, on SQLite and on PostgreSQL."""
    return fill(engine, generated)


@pytest.fixture(scope="session")
def shared_url(tmp_path_factory: pytest.TempPathFactory, generated: dict[str, Path]) -> str:
    """A SQLite warehouse built once per session, for tests that only read."""
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'warehouse.sqlite'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        fill(engine, generated)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def shared(shared_url: str) -> Iterator[Engine]:
    engine = make_engine(shared_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def bundle(shared: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV bundle of every episode of the shared warehouse."""
    out = tmp_path_factory.mktemp("bundles") / "all"
    export_bundle(shared, out, key=TEST_KEY)
    return out
