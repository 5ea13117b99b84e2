"""Every export leaves one row in the append-only audit log, with its definition, row counts and who: the
signed-in dashboard user the page passes, or `cli:<OS user>` from the command line."""

from __future__ import annotations

import getpass
import json

from sqlalchemy import select

from etl.generate import generate
from etl.load import load_files
from research.deid import ExportKey
from research.export import export_bundle
from tests.etl.helpers import AS_OF
from warehouse.schema import audit_log


def test_export_is_audited(sqlite_engine, tmp_path):
    load_files(sqlite_engine, list(generate(tmp_path / "g", 15, seed=2, as_of=AS_OF).values()), as_of=AS_OF)
    summary = export_bundle(sqlite_engine, tmp_path / "out", key=ExportKey(b"k" * 32, "explicit"))
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "export")).all()
    assert len(rows) == 1
    detail = json.loads(rows[0].detail)
    assert detail["row_counts"] == summary.row_counts
    assert rows[0].username == f"cli:{getpass.getuser()}" == summary.user


def test_export_audit_names_the_signed_in_user(sqlite_engine, tmp_path):
    load_files(sqlite_engine, list(generate(tmp_path / "g", 15, seed=2, as_of=AS_OF).values()), as_of=AS_OF)
    key = ExportKey(b"k" * 32, "explicit")
    summary = export_bundle(sqlite_engine, tmp_path / "out", key=key, user="rae")
    assert summary.user == "rae"
    with sqlite_engine.connect() as conn:
        who = conn.execute(select(audit_log.c.username).where(audit_log.c.action == "export")).scalars().all()
    assert who == ["rae"]
