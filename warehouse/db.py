"""Engine set-up: the one place that knows SQLite needs pragmas and PostgreSQL needs a driver name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import Executable

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them through psycopg 3, the driver we install."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the warehouse at `url`.

    SQLite gets WAL (readers never block the loader), foreign keys and a busy timeout, on every connection: the
    dashboard reads while the ETL writes.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN really starts one (pysqlite defers it).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # autocommit at the driver; SQLAlchemy issues BEGIN itself
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def bulk_session(conn: Connection) -> None:
    """Settings for the ETL's own write transactions on PostgreSQL (SET LOCAL: they end with the transaction).

    JIT compilation cost 0.37 s of a 1.3 s grouping of 1M scores (its estimated cost passes `jit_above_cost`, and
    the query runs once: nothing to amortise). The dashboard's connections keep the server's settings. A no-op on
    SQLite.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")


def analyze_postgresql(conn: Connection, *tables: Table, columns: Sequence[str] = ()) -> None:
    """Fresh PostgreSQL statistics for tables the ETL has just filled (a no-op on SQLite, whose loader runs one
    sampled ANALYZE at the end). Autovacuum never analyzes temporary tables and reaches the others only later; until
    then the planner chose plans for tables of the old size (measured cases in etl/load.py and etl/summary.py)."""
    if conn.dialect.name != "postgresql":
        return
    cols = f" ({', '.join(columns)})" if columns else ""
    for table in tables:
        conn.exec_driver_sql(f"ANALYZE {table.name}{cols}")


@contextmanager
def sort_memory(conn: Connection, work_mem: str = "128MB") -> Iterator[None]:
    """A larger work_mem on PostgreSQL for the statements inside (the refresh's grouping of 1M scores sorted 78 MB
    on disk with the default 4 MB). Not for the whole load: with it the planner hashed the whole fact table for
    each chunk's merge instead of probing its index (re-export of 1M scores 8.8 -> 15.0 s)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql(f"SET LOCAL work_mem = '{work_mem}'")
    yield  # after an error the transaction is aborted, and rolling it back ends the SET LOCAL
    conn.exec_driver_sql("RESET work_mem")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def _driver_cursor(conn: Connection, stmt: Executable) -> Iterator[Any]:
    """The driver's cursor after executing a Core statement (bound parameters as compiled by SQLAlchemy)."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        yield cursor
    finally:
        cursor.close()


def fetch_rows(conn: Connection, stmt: Executable) -> tuple[list[str], list[tuple]]:
    """(column names, every row as a plain tuple) of a Core statement, through the driver's cursor.

    For bulk reads of derived data: SQLAlchemy's Row objects cost more than the query. The statement is still
    SQLAlchemy Core with bound parameters; only the result bypasses the Row layer.
    """
    with _driver_cursor(conn, stmt) as cursor:
        return [d[0] for d in cursor.description], cursor.fetchall()


def iter_rows(
    conn: Connection, stmt: Executable, batch: int = 5000
) -> Iterator[tuple[list[str], list[tuple]]]:
    """As `fetch_rows`, `batch` rows at a time (a whole result as tuples costs ~50 Python objects per row)."""
    with _driver_cursor(conn, stmt) as cursor:
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch):
            yield names, rows
