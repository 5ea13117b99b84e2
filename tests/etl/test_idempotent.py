"""Loading the same file twice changes nothing; a corrected re-export updates rows and keeps the old values."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from etl.load import load_file
from tests.etl.helpers import AS_OF, SCORES_HEADER, count, patients_file, rows, write_csv
from warehouse.schema import episode_measure_summary, etl_batches, etl_rejects, fact_revisions, scores

DATA = [
    ["P1", "2026-09-01T09:00:00", "pain_leg", "7", ""],
    ["P1", "2026-10-01T09:00:00", "pain_leg", "4", ""],
    ["P2", "2026-09-01T09:00:00", "pain_leg", "6", ""],
    ["P2", "2026-09-01T09:00:00", "odi", "140", ""],  # rejected
]


def _snapshot(engine):
    return [
        tuple(r)
        for r in rows(
            engine, select(scores).order_by(scores.c.patient_id, scores.c.measure, scores.c.recorded_at)
        )
    ]


def test_same_file_twice_changes_nothing(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = write_csv(tmp_path / "scores.csv", SCORES_HEADER, DATA)
    first = load_file(engine, path, as_of=AS_OF)
    before = (_snapshot(engine), count(engine, etl_rejects), count(engine, etl_batches))
    again = load_file(engine, path, as_of=AS_OF)
    assert first.rows_inserted == 3 and first.rows_rejected == 1
    assert again.status == "unchanged" and again.rows_loaded == 0 and again.batch_id == first.batch_id
    assert (_snapshot(engine), count(engine, etl_rejects), count(engine, etl_batches)) == before


def test_same_rows_in_a_new_file_are_unchanged(engine, tmp_path):
    """A different file (other sha256) with the same rows: read and compared, 0 new rows."""
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    load_file(engine, write_csv(tmp_path / "a.csv", SCORES_HEADER, DATA[:3]), as_of=AS_OF)
    before = _snapshot(engine)
    result = load_file(engine, write_csv(tmp_path / "b.csv", SCORES_HEADER, DATA[:3][::-1]), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 0, 3)
    assert _snapshot(engine) == before


def test_corrected_reexport_updates_and_records(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    first = load_file(engine, write_csv(tmp_path / "v1.csv", SCORES_HEADER, DATA[:3]), as_of=AS_OF)
    corrected = [DATA[0], ["P1", "2026-10-01T09:00:00", "pain_leg", "2", ""], DATA[2]]
    second = load_file(engine, write_csv(tmp_path / "v2.csv", SCORES_HEADER, corrected), as_of=AS_OF)
    assert (second.rows_inserted, second.rows_updated, second.rows_unchanged) == (0, 1, 2)
    (rev,) = rows(engine, select(fact_revisions))
    assert (
        rev.table_name == "scores" and rev.batch_id == second.batch_id and rev.old_batch_id == first.batch_id
    )
    assert json.loads(rev.old_values) == {"value": 4.0}
    assert json.loads(rev.row_key)["patient_id"] == "P1"
    latest = rows(
        engine,
        select(scores.c.value, scores.c.batch_id).where(
            scores.c.patient_id == "P1", scores.c.recorded_at > datetime(2026, 9, 30)
        ),
    )
    assert [tuple(r) for r in latest] == [(2.0, second.batch_id)]
    # the summary followed the correction
    (s,) = rows(
        engine,
        select(episode_measure_summary).where(
            episode_measure_summary.c.patient_id == "P1", episode_measure_summary.c.measure == "pain_leg"
        ),
    )
    assert (s.baseline_value, s.latest_value, s.change) == (7.0, 2.0, -5.0)


def test_patient_reassignment_is_an_update(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = patients_file(tmp_path, name="p2.csv")
    text = path.read_text().replace("P1,C1,T1", "P1,C1,T2")
    path.write_text(text)
    result = load_file(engine, path, as_of=AS_OF)
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 1, 2)
    assert count(engine, fact_revisions) == 1


def test_rows_rejected_for_unknown_patients_load_once_the_patients_are_in(engine, tmp_path):
    """The reject says "load its patients file first": after that, loading the same bytes again reads them again
    (only then), the waiting rows load, the others come back unchanged, and a further load changes nothing."""
    load_file(engine, patients_file(tmp_path, 3), as_of=AS_OF)
    data = [*DATA[:3], ["P4", "2026-09-01T09:00:00", "pain_leg", "5", ""]]
    path = write_csv(tmp_path / "scores.csv", SCORES_HEADER, data)
    first = load_file(engine, path, as_of=AS_OF)
    assert (first.rows_inserted, first.rows_rejected) == (3, 1)
    # no patients loaded since: nothing to retry
    assert load_file(engine, path, as_of=AS_OF).status == "unchanged"

    load_file(engine, patients_file(tmp_path, 4, name="more.csv"), as_of=AS_OF)
    again = load_file(engine, path, as_of=AS_OF)
    assert again.status == "loaded" and again.batch_id != first.batch_id
    assert (again.rows_inserted, again.rows_unchanged, again.rows_rejected) == (1, 3, 0)
    assert "read again" in again.message
    assert count(engine, scores) == 4

    third = load_file(engine, path, as_of=AS_OF)
    assert third.status == "unchanged" and third.batch_id == again.batch_id
