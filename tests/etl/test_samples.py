"""The files in data/sample/ as a new user meets them: the clean ones load with no reject, the dirty ones reject
exactly the rows they were written to reject, with the reasons data/README.md shows."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from etl.load import EXIT_OK, EXIT_REJECTS, exit_code, load_file, load_files
from tests.etl.helpers import AS_OF, count, rows, write_csv
from warehouse.schema import (
    clinics,
    episodes,
    etl_batches,
    etl_rejects,
    fact_revisions,
    patients,
    scores,
    sessions,
    therapists,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
DIRTY = SAMPLE / "dirty"
KINDS = ("patients", "scores", "visits", "sessions")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _visit_scores() -> int:
    """Scores the wide sample makes: one per non-empty measure cell."""
    return sum(
        1
        for r in _read(SAMPLE / "visits.csv")
        for k, v in r.items()
        if k not in ("patient_id", "visit_date") and v
    )


def _rejects(engine: Engine, batch_id: int) -> dict[int, str]:
    q = select(etl_rejects.c.source_line, etl_rejects.c.reasons).where(etl_rejects.c.batch_id == batch_id)
    return {r.source_line: r.reasons for r in rows(engine, q)}


def _load_samples(engine: Engine):
    return load_files(engine, sorted(SAMPLE.glob("*.csv")), as_of=AS_OF)


# --- the clean samples -------------------------------------------------------------------------------------------
def test_one_sample_per_kind():
    assert sorted(p.stem for p in SAMPLE.glob("*.csv")) == sorted(KINDS)
    assert sorted(p.stem for p in DIRTY.glob("*.csv")) == sorted(KINDS)


def test_samples_load_with_zero_rejects(engine):
    results = _load_samples(engine)
    assert [r.kind for r in results] == ["patients", "sessions", "scores", "visits"]  # patients first
    for r in results:
        assert (r.status, r.rows_rejected, r.message) == ("loaded", 0, None), r
        assert r.rows_inserted == r.rows_read
    assert exit_code(results) == EXIT_OK
    assert count(engine, patients) == count(engine, episodes) == 6
    assert count(engine, clinics) == 2 and count(engine, therapists) == 3
    assert count(engine, sessions) == len(_read(SAMPLE / "sessions.csv")) == 40
    assert count(engine, scores) == len(_read(SAMPLE / "scores.csv")) + _visit_scores()


def test_samples_show_what_the_readme_promises(engine):
    _load_samples(engine)
    named = rows(engine, select(patients.c.patient_id).where(patients.c.first_name.is_not(None)))
    assert len(named) == 1
    discharged = rows(engine, select(episodes.c.patient_id).where(episodes.c.end_date.is_not(None)))
    assert len(discharged) == 1
    sess = rows(engine, select(sessions.c.setting, sessions.c.status, sessions.c.skip_reason))
    assert {s.setting for s in sess} == {"home", "clinic"}
    assert {s.status for s in sess} == {"completed", "partial", "skipped", "missed"}
    assert all(s.skip_reason for s in sess if s.status == "skipped")
    dates = [r[0] for r in rows(engine, select(sessions.c.session_date))]
    dates += [r[0].date() for r in rows(engine, select(scores.c.recorded_at))]
    assert min(dates).isoformat() >= "2026-09-01" and max(dates).isoformat() <= "2026-11-30"


def test_samples_reload_changes_nothing(engine):
    _load_samples(engine)
    again = _load_samples(engine)
    assert {r.status for r in again} == {"unchanged"}
    assert sum(r.rows_inserted + r.rows_updated for r in again) == 0
    assert exit_code(again) == EXIT_OK
    assert count(engine, etl_batches) == 4 and count(engine, fact_revisions) == 0


# --- the dirty samples: line -> the reasons that row must carry, every one of them --------------------------------
EXPECTED_REJECTS: dict[str, dict[int, list[str]]] = {
    "patients": {
        3: ["patient_id: missing", "birth_year: missing"],
        4: ["birth_year: not a year 'nineteen-eighty'"],
        5: ["birth_year: outside 1900-2026 '1850'"],
        6: ["sex: unknown value 'Q'"],
        7: ["episode_start: not a valid date '2026-02-30'"],
        8: ["episode_start: in the future (after 2026-11-20) '2026-12-01'"],
        9: ["episode_end: before episode_start"],
        10: ["symptom_onset: after episode_start"],
        11: ["side: unknown value 'middle'"],
        12: ["duplicate of line 2 (same patient_id, episode_start) with different values"],
        13: ["episode_start: missing"],
    },
    "scores": {
        3: ["value: value '12' outside 0-10"],
        4: ["recorded_at: not a valid date '2026-02-30'"],
        5: ["recorded_at: in the future (after 2026-11-20) '2026-12-24'"],
        6: ["measure: unknown measure 'grip_strength'"],
        7: ["patient_id: unknown patient 'X99'"],
        8: ["patient_id: missing", "recorded_at: missing", "value: missing"],
        9: ["value: not a number 'high'"],
        10: ["side: unknown value 'upwards'"],
        11: ["duplicate of line 2 (same patient_id, measure, recorded_at, side) with different values"],
        13: ["measure: missing"],
    },
    "visits": {
        3: ["pain_leg: value '11' outside 0-10"],
        4: ["visit_date: not a valid date '18.11.2026'"],
        5: ["visit_date: in the future (after 2026-11-20) '2026-12-02'"],
        6: ["patient_id: missing"],
        7: ["visit_date: missing"],
        8: ["pain_leg: not a number 'seven'"],
        9: ["no measure values on this visit"],
        10: ["patient_id: unknown patient 'X99'"],
        11: ["duplicate of line 2 (same patient_id, measure, recorded_at, side) with different values"],
        12: ["slr_left: value '200' outside 0-90"],
    },
    "sessions": {
        3: ["status: unknown value 'done?'"],
        4: ["exercise_type: unknown type 'yoga'"],
        5: ["exercise_type: manual_therapy is given in the clinic only, not at home"],
        6: ["exercise: 'Glute bridge' is recorded as glute_strengthening, not stretching"],
        7: ["setting: unknown value 'gym'"],
        8: ["sets: not a whole number '2.5'"],
        9: ["duration_min: outside 0-600 '-5'"],
        10: ["pain_during: outside 0-10 '11'"],
        11: ["session_date: in the future (after 2026-11-20) '2026-12-01'"],
        12: ["session_date: not a valid date '2026-11-31'"],
        13: ["patient_id: unknown patient 'X99'"],
        14: ["session_date: missing", "exercise: missing", "exercise_type: missing"],
        15: ["setting: missing", "status: missing"],
        16: ["duplicate of line 2 (same patient_id, session_date, setting, exercise) with different values"],
        17: ["reps: not a number 'ten'"],
    },
}
#: (rows loaded, identical repeats counted unchanged) of each dirty file.
EXPECTED_LOADED = {"patients": (2, 0), "scores": (2, 1), "visits": (1, 0), "sessions": (2, 0)}


@pytest.mark.parametrize("kind", KINDS)
def test_dirty_sample_rejects_exactly_its_bad_rows(engine, kind):
    _load_samples(engine)
    path = DIRTY / f"{kind}.csv"
    result = load_file(engine, path, as_of=AS_OF)
    expected = EXPECTED_REJECTS[kind]
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert result.kind == kind and result.status == "loaded_with_rejects"
    assert result.rows_read == n_lines - 1
    assert (result.rows_inserted, result.rows_unchanged) == EXPECTED_LOADED[kind]
    assert result.rows_rejected == len(expected)
    assert exit_code([result]) == EXIT_REJECTS
    got = _rejects(engine, result.batch_id)
    assert set(got) == set(expected)
    for line, fragments in expected.items():
        reasons = got[line].split("; ")
        assert len(reasons) == len(fragments), (line, got[line])
        for fragment in fragments:
            assert any(fragment in r for r in reasons), (line, fragment, got[line])


def test_dirty_samples_cover_every_reason_the_readme_lists():
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    shown = [f for rejects in EXPECTED_REJECTS.values() for fs in rejects.values() for f in fs]
    for reason in (
        "missing",
        "not a valid date",
        "in the future",
        "outside",
        "not a number",
        "unknown measure",
        "unknown patient",
        "unknown type",
        "clinic only",
        "is recorded as",
        "unknown value",
        "not a whole number",
        "not a year",
        "before episode_start",
        "after episode_start",
        "no measure values on this visit",
        "with different values",
    ):
        assert reason in readme
        assert any(reason in f for f in shown), reason


def test_walk_through_commands(engine):
    """data/README.md's walk-through, as a new user types it: exit codes 0, 0, 3, and readable rejects."""
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "OUTCOMES_DB_URL": url}

    def etl(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "etl", *args]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert etl("init").returncode == 0
    samples = [str(p.relative_to(ROOT)) for p in sorted(SAMPLE.glob("*.csv"))]
    first = etl("load", *samples, "--as-of", "2026-11-20")
    assert first.returncode == 0, first.stdout + first.stderr
    again = etl("load", *samples, "--as-of", "2026-11-20")
    assert again.returncode == 0 and again.stdout.count("unchanged: ") == 4
    dirty = etl("load", *[str(p) for p in sorted(DIRTY.glob("*.csv"))], "--as-of", "2026-11-20")
    assert dirty.returncode == 3 and "python -m etl rejects --batch" in dirty.stdout
    rejects = etl("rejects")
    assert rejects.returncode == 0
    assert "patients.csv:3 (batch 5): patient_id: missing; birth_year: missing" in rejects.stdout
    assert "scores.csv:3 (batch 7): value: value '12' outside 0-10" in rejects.stdout
    assert "    S01,2026-11-18T09:00:00,pain_back,12," in rejects.stdout
    status = etl("status")
    assert status.returncode == 0 and "patients: 8" in status.stdout


# --- what data/README.md says about every file, beyond the samples -----------------------------------------------
def test_line_numbers_count_blank_lines(engine, tmp_path):
    _load_samples(engine)
    path = tmp_path / "scores.csv"
    path.write_text(
        "patient_id,recorded_at,measure,value\nS01,2026-11-01,pain_leg,3\n\nS01,2026-11-02,pain_leg,30\n"
    )
    result = load_file(engine, path, as_of=AS_OF)
    assert set(_rejects(engine, result.batch_id)) == {4}


def test_line_numbers_with_a_multi_line_cell(engine, tmp_path):
    _load_samples(engine)
    path = tmp_path / "sessions.csv"
    path.write_text(
        "patient_id,session_date,setting,exercise,exercise_type,status,skip_reason\n"
        'S01,2026-10-03,home,Bird dog,core_strengthening,skipped,"felt\nunwell"\n'
        "S01,2026-10-04,home,Bird dog,core_strengthening,bogus,\n"
    )
    result = load_file(engine, path, as_of=AS_OF)
    assert set(_rejects(engine, result.batch_id)) == {4}  # the line an editor shows; actual: 3


def test_one_time_zone_offset_is_dropped(engine, tmp_path):
    _load_samples(engine)
    header = ["patient_id", "recorded_at", "measure", "value"]
    path = write_csv(tmp_path / "tz.csv", header, [["S01", "2026-10-08T09:00:00+02:00", "pain_leg", "5"]])
    result = load_file(engine, path, as_of=AS_OF)
    assert result.rows_inserted == 1
    when = rows(engine, select(scores.c.recorded_at).where(scores.c.batch_id == result.batch_id))[0][0]
    assert when.isoformat() == "2026-10-08T09:00:00"  # the clinic's wall-clock time


def test_offsets_across_a_dst_change_load(engine, tmp_path):
    _load_samples(engine)
    header = ["patient_id", "recorded_at", "measure", "value"]
    path = write_csv(
        tmp_path / "tz.csv",
        header,
        [
            ["S01", "2026-10-08T09:00:00+02:00", "pain_leg", "5"],
            ["S01", "2026-11-08T09:00:00+01:00", "pain_leg", "4"],
        ],
    )
    result = load_file(engine, path, as_of=AS_OF)
    assert (result.status, result.rows_inserted) == ("loaded", 2)
