"""The ETL's PostgreSQL session settings hold inside its transaction only, and the larger work_mem only inside
the refresh; on SQLite both are no-ops."""

from __future__ import annotations

from warehouse.db import bulk_session, sort_memory


def _show(conn, name: str) -> str:
    return conn.exec_driver_sql(f"SHOW {name}").scalar_one()


def test_settings_are_local_to_the_transaction(engine):
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            bulk_session(conn)
            with sort_memory(conn):
                assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
        return
    with engine.connect() as conn:
        jit, work_mem = _show(conn, "jit"), _show(conn, "work_mem")
    with engine.begin() as conn:
        bulk_session(conn)
        assert _show(conn, "jit") == "off"
        with sort_memory(conn, "96MB"):
            assert _show(conn, "work_mem") == "96MB"
        assert _show(conn, "work_mem") == work_mem  # the merge after the refresh plans with the default again
        assert _show(conn, "jit") == "off"
    with engine.connect() as conn:
        assert (_show(conn, "jit"), _show(conn, "work_mem")) == (jit, work_mem)
