"""The fresh-patient fast path and the refresh of only the patients whose facts changed.

Rows of patients without facts are written straight into the fact table; the rest go through the stage and the
merge. Both must give the same warehouse, and the marts must follow every change while unchanged patients keep
theirs (same facts, same day).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from etl.load import load_file
from tests.etl.helpers import AS_OF, SCORES_HEADER, count, patients_file, rows, write_csv
from warehouse.schema import episode_measure_summary, episode_summary, fact_revisions, scores


def _scores(values: dict[str, list[float]]) -> list[list[object]]:
    out = []
    for pid, vals in values.items():
        for day, v in enumerate(vals, start=1):
            out.append([pid, f"2026-10-{day:02d} 09:00", "pain_leg", v, ""])
    return out


def _summaries(engine) -> dict[str, tuple]:
    es = episode_summary
    got = rows(engine, select(es.c.patient_id, es.c.as_of, es.c.refreshed_at))
    return {r.patient_id: (str(r.as_of), str(r.refreshed_at)) for r in got}


def _latest(engine, pid: str) -> float:
    m = episode_measure_summary
    q = select(m.c.latest_value).where(m.c.patient_id == pid, m.c.measure == "pain_leg")
    return rows(engine, q)[0][0]


def test_patient_split_across_chunks_and_conflicts_across_chunks(engine, tmp_path):
    """Chunks of 4 rows: P1's rows span two chunks (the second goes through the merge), and a conflicting
    repeat of P1's first key in a later chunk is rejected as a duplicate, an identical one counted unchanged."""
    load_file(engine, patients_file(tmp_path, 3), as_of=AS_OF)
    data = _scores({"P1": [7, 6, 5, 4, 3, 2], "P2": [5, 5]})
    data.append(["P1", "2026-10-01 09:00", "pain_leg", 1, ""])  # conflicts with line 2 (value 7)
    data.append(["P1", "2026-10-02 09:00", "pain_leg", 6, ""])  # identical to line 3
    r = load_file(engine, write_csv(tmp_path / "s.csv", SCORES_HEADER, data), as_of=AS_OF, chunk_rows=4)
    assert (r.rows_inserted, r.rows_rejected, r.rows_unchanged) == (8, 1, 1)
    assert count(engine, scores) == 8
    assert _latest(engine, "P1") == 2


def test_reexport_refreshes_only_changed_patients(engine, tmp_path):
    load_file(engine, patients_file(tmp_path, 3), as_of=AS_OF)
    first = {"P1": [7, 6, 5], "P2": [5, 4, 3], "P3": [8, 8, 8]}
    load_file(engine, write_csv(tmp_path / "a.csv", SCORES_HEADER, _scores(first)), as_of=AS_OF)
    before = _summaries(engine)
    assert set(before) == {"P1", "P2", "P3"}

    changed = {**first, "P2": [5, 4, 1]}  # P2's latest corrected; P1 and P3 exactly as before
    r = load_file(engine, write_csv(tmp_path / "b.csv", SCORES_HEADER, _scores(changed)), as_of=AS_OF)
    assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (0, 1, 8)
    assert count(engine, fact_revisions) == 1
    after = _summaries(engine)
    assert _latest(engine, "P2") == 1
    assert after["P1"] == before["P1"] and after["P3"] == before["P3"]  # not rewritten
    assert after["P2"][1] >= before["P2"][1]

    # The same rows (other bytes: reversed) on a later day: every patient's marts are recomputed for that day.
    later = AS_OF + timedelta(days=3)
    again = write_csv(tmp_path / "c.csv", SCORES_HEADER, _scores(changed)[::-1])
    r = load_file(engine, again, as_of=later)
    assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (0, 0, 9)
    assert {pid: v[0] for pid, v in _summaries(engine).items()} == dict.fromkeys(
        ("P1", "P2", "P3"), str(later)
    )


def test_fresh_and_known_patients_in_one_chunk(engine, tmp_path):
    """P1 already has scores (merge path), P2 has none (fast path): one file, one chunk, both loaded."""
    load_file(engine, patients_file(tmp_path, 2), as_of=AS_OF)
    load_file(engine, write_csv(tmp_path / "a.csv", SCORES_HEADER, _scores({"P1": [7, 6]})), as_of=AS_OF)
    both = _scores({"P1": [7, 5, 4], "P2": [6, 3]})
    r = load_file(engine, write_csv(tmp_path / "b.csv", SCORES_HEADER, both), as_of=AS_OF)
    assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (3, 1, 1)
    assert count(engine, scores) == 5
    assert _latest(engine, "P1") == 4 and _latest(engine, "P2") == 3
    batches = {b for (b,) in rows(engine, select(scores.c.batch_id).where(scores.c.patient_id == "P2"))}
    assert batches == {r.batch_id}


def test_default_chunk_size_is_the_file_kinds(engine, tmp_path, monkeypatch):
    """Without `chunk_rows`, a scores file is read in chunks of its own size and other kinds in the default one
    (etl.read.chunk_rows_for): counted by the loader's progress line, one per chunk."""
    import etl.read

    monkeypatch.setattr(etl.read, "DEFAULT_CHUNK_ROWS", 2)
    monkeypatch.setattr(etl.read, "CHUNK_ROWS", {"scores": 3})
    seen: list[str] = []
    load_file(engine, patients_file(tmp_path, 6), as_of=AS_OF, progress=seen.append)
    assert sum("rows read" in m for m in seen) == 3  # 6 patients / 2
    seen.clear()
    data = _scores({"P1": [7, 6, 5], "P2": [5, 4, 3]})
    load_file(engine, write_csv(tmp_path / "s.csv", SCORES_HEADER, data), as_of=AS_OF, progress=seen.append)
    assert sum("rows read" in m for m in seen) == 2  # 6 scores / 3
    assert count(engine, scores) == 6


def test_a_conflict_with_an_earlier_chunk_is_worded_as_one_within_a_chunk(engine, tmp_path):
    from warehouse.schema import etl_rejects

    load_file(engine, patients_file(tmp_path, 3), as_of=AS_OF)
    data = _scores({"P1": [7, 6, 5, 4]})
    data.append(["P1", "2026-10-01 09:00", "pain_leg", 1, ""])  # line 6 repeats line 2's key, other value
    r = load_file(engine, write_csv(tmp_path / "s.csv", SCORES_HEADER, data), as_of=AS_OF, chunk_rows=2)
    reasons = rows(engine, select(etl_rejects.c.reasons).where(etl_rejects.c.batch_id == r.batch_id))
    assert [x.reasons for x in reasons] == [
        "duplicate of line 2 (same patient_id, measure, recorded_at, side) with different values"
    ]
