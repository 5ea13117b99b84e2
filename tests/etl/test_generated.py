"""The generator's deliberately dirty rows are exactly the rows the loader rejects, and nothing else is lost."""

from __future__ import annotations

from sqlalchemy import func, select

from etl.generate import generate_labelled
from etl.load import load_files
from tests.etl.helpers import AS_OF, rows
from warehouse.schema import etl_batches, etl_rejects


def test_loader_rejects_exactly_the_dirty_rows(engine, tmp_path):
    paths, problems = generate_labelled(tmp_path / "gen", 80, seed=3, as_of=AS_OF)
    results = {r.kind: r for r in load_files(engine, list(paths.values()), as_of=AS_OF)}
    assert results["patients"].rows_rejected == 0
    for kind in ("visits", "sessions", "scores"):
        expected = set((problems[kind]["row"] + 2).tolist())
        got = {
            r.source_line
            for r in rows(
                engine,
                select(etl_rejects.c.source_line)
                .join(etl_batches, etl_batches.c.batch_id == etl_rejects.c.batch_id)
                .where(etl_batches.c.kind == kind),
            )
        }
        assert got == expected, kind
        r = results[kind]
        assert r.rows_read == r.rows_inserted + r.rows_rejected + r.rows_unchanged
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(etl_batches)).scalar_one() == 4
