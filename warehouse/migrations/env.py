"""Alembic environment: runs against the connection `warehouse.migrate` hands in (or a URL for the alembic CLI)."""

from __future__ import annotations

from alembic import context

from warehouse.config import db_url_from_env
from warehouse.db import make_engine
from warehouse.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic -c warehouse/migrations/alembic.ini upgrade head` from a shell
    engine = make_engine(db_url_from_env(config.get_main_option("sqlalchemy.url") or None))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
