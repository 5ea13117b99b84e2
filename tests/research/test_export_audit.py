"""Every export leaves one row in the append-only audit log, with its definition and row counts."""

from __future__ import annotations

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
