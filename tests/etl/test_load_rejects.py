"""Every reason a row can be rejected, on SQLite and PostgreSQL; valid rows of the same file still load."""

from __future__ import annotations

from sqlalchemy import select

from etl.kinds import SESSIONS
from etl.load import EXIT_REJECTS, exit_code, load_file, load_files
from tests.etl.helpers import (
    AS_OF,
    SCORES_HEADER,
    SESSIONS_HEADER,
    VISITS_HEADER,
    count,
    patients_file,
    rows,
    write_csv,
)
from warehouse.schema import etl_batches, etl_rejects, scores, sessions


def _rejects(engine, batch_id):
    q = (
        select(etl_rejects.c.source_line, etl_rejects.c.reasons, etl_rejects.c.raw_row)
        .where(etl_rejects.c.batch_id == batch_id)
        .order_by(etl_rejects.c.source_line)
    )
    return {r.source_line: (r.reasons, r.raw_row) for r in rows(engine, q)}


def test_score_rows_rejected_with_every_reason(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = write_csv(
        tmp_path / "scores.csv",
        SCORES_HEADER,
        [
            ["P1", "2026-09-01T10:00:00", "pain_leg", "7", "left"],  # 2 ok
            ["P1", "2026-09-02", "pain_leg", "14", ""],  # 3 out of range
            ["P1", "2026-02-30", "pain_leg", "3", ""],  # 4 impossible date
            ["P1", "2027-01-01", "pain_leg", "3", ""],  # 5 future
            ["P1", "2026-09-03", "grip", "3", ""],  # 6 unknown measure
            ["P99", "2026-09-03", "pain_leg", "3", ""],  # 7 unknown patient
            ["", "", "pain_leg", "", ""],  # 8 several missing fields
            ["P1", "2026-09-04", "odi", "abc", ""],  # 9 not a number
            ["P1", "2026-09-05", "slr_left", "95", "sideways"],  # 10 out of range and bad side
            ["P2", "2026-09-01", "odi", "40", ""],  # 11 ok
        ],
    )
    result = load_file(engine, path, as_of=AS_OF)
    assert (result.rows_read, result.rows_inserted, result.rows_rejected) == (10, 2, 8)
    assert result.status == "loaded_with_rejects"
    assert exit_code([result]) == EXIT_REJECTS
    rej = _rejects(engine, result.batch_id)
    assert set(rej) == {3, 4, 5, 6, 7, 8, 9, 10}
    assert "outside 0-10" in rej[3][0]
    assert "not a valid date '2026-02-30'" in rej[4][0]
    assert "in the future" in rej[5][0]
    assert "unknown measure 'grip'" in rej[6][0]
    assert "unknown patient 'P99'" in rej[7][0]
    assert {"patient_id: missing", "recorded_at: missing", "value: missing"} <= set(rej[8][0].split("; "))
    assert "not a number 'abc'" in rej[9][0]
    assert "outside 0-90" in rej[10][0] and "side: unknown value 'sideways'" in rej[10][0]
    assert rej[9][1] == "P1,2026-09-04,odi,abc,"  # the raw row, as it came
    assert count(engine, scores) == 2


def test_session_rows_rejected(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = write_csv(
        tmp_path / "sessions.csv",
        SESSIONS_HEADER,
        [
            ["P1", "2026-09-02", "home", "Bird dog", "core_strengthening", "done", 3, 10, 15, 2, ""],  # 2 ok
            ["P1", "2026-09-03", "home", "Bird dog", "core_strengthening", "done?", 3, 10, 15, "", ""],  # 3
            ["P1", "2026-09-04", "home", "Bird dog", "yoga", "completed", 3, 10, 15, "", ""],  # 4
            [
                "P1",
                "2026-09-05",
                "home",
                "Soft tissue",
                "manual_therapy",
                "completed",
                "",
                "",
                20,
                "",
                "",
            ],  # 5
            [
                "P1",
                "2026-09-06",
                "garden",
                "Bird dog",
                "core_strengthening",
                "completed",
                3,
                10,
                15,
                "",
                "",
            ],  # 6
            ["P1", "2026-09-07", "home", "Bird dog", "stretching", "completed", 3, 10, 15, "", ""],  # 7
            [
                "P1",
                "2026-09-08",
                "home",
                "Bird dog",
                "core_strengthening",
                "skipped",
                "",
                "",
                "",
                "",
                "pain",
            ],  # 8 ok
            [
                "P1",
                "2026-09-09",
                "home",
                "Bird dog",
                "core_strengthening",
                "partial",
                "2.5",
                10,
                5,
                11,
                "",
            ],  # 9
        ],
    )
    result = load_file(engine, path, as_of=AS_OF)
    rej = _rejects(engine, result.batch_id)
    assert set(rej) == {3, 4, 5, 6, 7, 9}
    assert "status: unknown value 'done?'" in rej[3][0]
    assert "exercise_type: unknown type 'yoga'" in rej[4][0]
    assert "clinic only" in rej[5][0]
    assert "setting: unknown value 'garden'" in rej[6][0]
    assert "recorded as core_strengthening, not stretching" in rej[7][0]
    assert "sets: not a whole number" in rej[9][0] and "pain_during: outside 0-10" in rej[9][0]
    got = rows(engine, select(sessions.c.status, sessions.c.skip_reason).order_by(sessions.c.session_date))
    assert [tuple(r) for r in got] == [("completed", None), ("skipped", "pain")]


def test_duplicates_inside_a_file(engine, tmp_path):
    """Identical repeats count as unchanged; a repeat with other values is rejected, pointing at the first line,
    also when the two rows fall into different chunks."""
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    data = [
        ["P1", "2026-09-01", "pain_leg", "7", ""],  # 2
        ["P1", "2026-09-01", "pain_leg", "7", ""],  # 3 identical repeat
        ["P1", "2026-09-01", "pain_leg", "8", ""],  # 4 conflict, same chunk
        ["P1", "2026-09-02", "pain_leg", "6", ""],  # 5
        ["P2", "2026-09-02", "pain_leg", "5", ""],  # 6
        ["P1", "2026-09-02", "pain_leg", "6", ""],  # 7 identical, next chunk
        ["P1", "2026-09-01", "pain_leg", "9", ""],  # 8 conflict with line 2, next chunk
    ]
    path = write_csv(tmp_path / "scores.csv", SCORES_HEADER, data)
    result = load_file(engine, path, as_of=AS_OF, chunk_rows=4)
    assert result.rows_read == 7
    assert (result.rows_inserted, result.rows_unchanged, result.rows_rejected) == (3, 2, 2)
    rej = _rejects(engine, result.batch_id)
    assert set(rej) == {4, 8}
    assert "duplicate of line 2" in rej[4][0]
    assert "duplicate of line 2" in rej[8][0]
    values = rows(
        engine,
        select(scores.c.patient_id, scores.c.value).order_by(scores.c.patient_id, scores.c.recorded_at),
    )
    assert [tuple(v) for v in values] == [("P1", 7.0), ("P1", 6.0), ("P2", 5.0)]


def test_wide_visits_become_scores_and_a_bad_cell_rejects_the_visit(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = write_csv(
        tmp_path / "visits.csv",
        [*VISITS_HEADER, "notes"],
        [
            ["P1", "2026-09-01", "7", "5", "4", "40", "44", "eval"],
            ["P1", "2026-10-01", "3", "", "2", "55", "", ""],
            ["P1", "2026-10-08", "3", "x", "2", "55", "30", ""],
            ["P2", "2026-10-08", "", "", "", "", "", "nothing measured"],
        ],
    )
    result = load_file(engine, path, as_of=AS_OF)
    assert (result.rows_read, result.rows_inserted, result.rows_rejected) == (4, 2, 2)
    assert "ignored columns" in result.message and "notes" in result.message
    assert count(engine, scores) == 5 + 3
    rej = _rejects(engine, result.batch_id)
    assert "pain_back: not a number 'x'" in rej[4][0]
    assert "no measure values" in rej[5][0]


def test_patients_must_come_first_but_one_run_orders_them(engine, tmp_path):
    s = write_csv(tmp_path / "a_scores.csv", SCORES_HEADER, [["P1", "2026-09-01", "pain_leg", "7", ""]])
    p = patients_file(tmp_path, name="z_patients.csv")
    results = load_files(engine, [s, p], as_of=AS_OF)
    assert [r.kind for r in results] == ["patients", "scores"]
    assert all(r.rows_rejected == 0 for r in results)


def test_batches_record_lineage(engine, tmp_path):
    result = load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    (batch,) = rows(engine, select(etl_batches))
    assert batch.file_name == "patients.csv" and len(batch.sha256) == 64
    assert batch.status == "loaded" and batch.rows_read == 3 and batch.batch_id == result.batch_id


def test_columns_the_loader_does_not_read_are_named_in_the_batch_message(engine, tmp_path):
    """A misspelled optional column would lose its values without a word: the message names it. The canonical
    columns alone say nothing."""
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    header = [*SESSIONS.required, "duration", "pain"]
    row = ["P1", "2026-10-01", "home", "bird dog", "core_strengthening", "completed", "20", "3"]
    result = load_file(engine, write_csv(tmp_path / "sessions.csv", header, [row]), as_of=AS_OF)
    assert result.rows_inserted == 1
    assert "ignored columns (not sessions columns" in result.message
    assert result.message.endswith(": duration, pain")

    plain = write_csv(
        tmp_path / "scores.csv", SCORES_HEADER, [["P1", "2026-10-01 09:00", "pain_leg", "5", ""]]
    )
    assert load_file(engine, plain, as_of=AS_OF).message is None


def test_no_value_markers_in_optional_numbers_are_empty(engine, tmp_path):
    """ "N/A", "-" and the like in an optional number column load as no value; other text still rejects the row,
    and a score's (required) value of "N/A" is still not a number."""
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    header = [*SESSIONS.required, "sets", "pain_during"]
    base = ["home", "bird dog", "core_strengthening", "skipped"]
    data = [
        ["P1", "2026-10-01", *base, "-", "N/A"],
        ["P1", "2026-10-02", *base, " n/a ", "none"],
        ["P1", "2026-10-03", *base, "3", "\u2013"],
        ["P1", "2026-10-04", *base, "three", ""],
    ]
    result = load_file(engine, write_csv(tmp_path / "sessions.csv", header, data), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (3, 1)
    got = rows(engine, select(sessions.c.sets, sessions.c.pain_during).order_by(sessions.c.session_date))
    assert [tuple(r) for r in got] == [(None, None), (None, None), (3, None)]
    assert "sets: not a number 'three'" in _rejects(engine, result.batch_id)[5][0]

    scores_path = write_csv(
        tmp_path / "scores.csv", SCORES_HEADER, [["P1", "2026-10-01 09:00", "pain_leg", "N/A", ""]]
    )
    assert load_file(engine, scores_path, as_of=AS_OF).rows_rejected == 1


def test_exercise_types_written_with_hyphens_or_spaces(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    header = list(SESSIONS.required)
    data = [
        ["P1", "2026-10-01", "home", "slider", "Nerve-Mobilization", "completed"],
        ["P1", "2026-10-02", "home", "slider", "nerve mobilization", "completed"],
    ]
    result = load_file(engine, write_csv(tmp_path / "sessions.csv", header, data), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (2, 0)
    got = rows(engine, select(sessions.c.exercise_type).distinct())
    assert [r.exercise_type for r in got] == ["nerve_mobilization"]
