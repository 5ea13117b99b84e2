"""Create or upgrade a warehouse: Alembic migrations to head, then the catalogs seeded from TOML."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select

from warehouse import catalog
from warehouse.schema import exercise_types, measures

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the warehouse to the newest schema and refresh the catalogs; returns the revision it is at."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    seed_catalogs(engine)
    return head_revision()


def seed_catalogs(engine: Engine) -> None:
    """Insert or update the shipped catalog rows; rows a clinic added in the database stay."""
    with engine.begin() as conn:
        for table, key, rows in (
            (measures, "code", catalog.measure_rows()),
            (exercise_types, "code", catalog.exercise_type_rows()),
        ):
            existing = set(conn.execute(select(table.c[key])).scalars())
            for row in rows:
                if row[key] in existing:
                    conn.execute(table.update().where(table.c[key] == row[key]).values(**row))
                else:
                    conn.execute(table.insert().values(**row))
