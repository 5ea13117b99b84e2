"""Property: whatever rows come in, each is loaded, rejected or an identical repeat: never two, never none."""

from __future__ import annotations

import csv

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from etl.load import load_file
from tests.etl.helpers import AS_OF, SCORES_HEADER, patients_file, rows
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.schema import etl_rejects, measures, patients, scores

junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
patient = st.one_of(st.sampled_from(["P1", "P2", "P3", "P99", ""]), junk)
when = st.one_of(
    st.dates(
        min_value=__import__("datetime").date(2025, 1, 1), max_value=__import__("datetime").date(2027, 6, 1)
    ).map(str),
    st.sampled_from(["2026-02-30", "", "yesterday", "2026-09-01T10:00:00", "2026-09-01 10:00"]),
    junk,
)
measure = st.one_of(
    st.sampled_from(["pain_leg", "odi", "slr_left", "numbness", "PAIN_LEG", "grip", ""]), junk
)
value = st.one_of(
    st.floats(min_value=-20, max_value=200, allow_nan=False).map(lambda v: f"{v:.2f}"),
    st.sampled_from(["", "abc", "7", "1e3", "NaN", "inf"]),
    junk,
)
side = st.sampled_from(["", "left", "right", "both", "L", "up"])
row = st.tuples(patient, when, measure, value, side)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(row, min_size=1, max_size=40))
def test_every_row_loaded_or_rejected(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("prop")
    engine = make_engine(f"sqlite:///{tmp}/w.sqlite")
    upgrade(engine)
    load_file(engine, patients_file(tmp), as_of=AS_OF)
    path = tmp / "scores.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SCORES_HEADER)
        w.writerows(data)
    result = load_file(engine, path, as_of=AS_OF, chunk_rows=7)
    assert result.status != "failed" or "parsed" in (result.message or "")
    if result.status == "failed":
        return  # a junk cell made the file unparseable as CSV: nothing loaded, said once
    rejected = {r.source_line for r in rows(engine, select(etl_rejects.c.source_line))}
    loaded = {r.source_line for r in rows(engine, select(scores.c.source_line))}
    assert not rejected & loaded
    # scores has no foreign keys (migration 0008): the loader's validation is what keeps orphans out
    orphans = select(scores.c.source_line).where(
        scores.c.patient_id.not_in(select(patients.c.patient_id))
        | scores.c.measure.not_in(select(measures.c.code))
    )
    assert rows(engine, orphans) == []
    assert len(rejected) == result.rows_rejected
    assert len(loaded) == result.rows_inserted
    assert result.rows_read == result.rows_inserted + result.rows_rejected + result.rows_unchanged
    blank = sum(1 for r in data if all(c == "" for c in r))  # empty rows are not rows
    assert result.rows_read == len(data) - blank
    engine.dispose()
