"""The per-episode marts: baselines never faked, MCID rules at their edges, adherence with partial sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from etl.load import load_file
from tests.etl.helpers import AS_OF, PATIENTS_HEADER, SCORES_HEADER, SESSIONS_HEADER, rows, write_csv
from warehouse.schema import episode_measure_summary, episode_summary


def _load(engine, tmp_path, score_rows, session_rows=()):
    write_csv(
        tmp_path / "patients.csv",
        PATIENTS_HEADER,
        [["P1", "C1", "T1", 1970, "F", "2026-09-01", "", "", "left", "", ""]],
    )
    load_file(engine, tmp_path / "patients.csv", as_of=AS_OF)
    if score_rows:
        load_file(engine, write_csv(tmp_path / "scores.csv", SCORES_HEADER, score_rows), as_of=AS_OF)
    if session_rows:
        load_file(engine, write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, session_rows), as_of=AS_OF)


def _measure(engine, code):
    got = rows(engine, select(episode_measure_summary).where(episode_measure_summary.c.measure == code))
    return got[0] if got else None


@pytest.mark.parametrize(
    ("baseline", "latest", "reached", "worsened"),
    [
        (7, 5, True, False),  # exactly 2 points: MCID reached
        (7, 5.1, False, False),  # 1.9 points and 27 %: not reached
        (3, 2.1, True, False),  # 0.9 points but 30 %: reached by percent
        (5, 7, False, True),  # up by 2: worse by the MCID
        (5, 5, False, False),
    ],
)
def test_leg_pain_mcid_edges(engine, tmp_path, baseline, latest, reached, worsened):
    _load(
        engine,
        tmp_path,
        [
            ["P1", "2026-09-01T09:00", "pain_leg", baseline, ""],
            ["P1", "2026-10-20T09:00", "pain_leg", latest, ""],
        ],
    )
    s = _measure(engine, "pain_leg")
    assert s.baseline_value == baseline and s.latest_value == latest
    assert s.change == pytest.approx(latest - baseline)
    assert bool(s.mcid_reached) is reached and bool(s.worsened) is worsened


def test_slr_higher_is_better_and_uses_detectable_change(engine, tmp_path):
    _load(
        engine,
        tmp_path,
        [["P1", "2026-09-01", "slr_left", 40, ""], ["P1", "2026-10-20", "slr_left", 46, ""]],
    )
    s = _measure(engine, "slr_left")
    assert s.improvement == 6 and s.mcid_reached


def test_missing_baseline_is_not_faked(engine, tmp_path):
    """First leg pain three weeks after the evaluation: no baseline, no change, no MCID verdict."""
    _load(
        engine,
        tmp_path,
        [["P1", "2026-09-22", "pain_leg", 7, ""], ["P1", "2026-10-20", "pain_leg", 3, ""]],
    )
    s = _measure(engine, "pain_leg")
    assert s.baseline_value is None and s.change is None and s.mcid_reached is None
    assert s.latest_value == 3 and s.n_values == 2


def test_single_score_has_no_change(engine, tmp_path):
    _load(engine, tmp_path, [["P1", "2026-09-01", "odi", 40, ""]])
    s = _measure(engine, "odi")
    assert s.baseline_value == 40 and s.latest_value == 40 and s.change is None


def test_adherence_counts_partial_as_half_and_windows_14_days(engine, tmp_path):
    ex = ["Bird dog", "core_strengthening"]
    sessions = [
        ["P1", "2026-09-02", "home", *ex, "completed", 3, 10, 15, "", ""],
        ["P1", "2026-09-03", "home", *ex, "skipped", "", "", "", "", "pain"],
        ["P1", "2026-11-10", "home", *ex, "partial", 1, 10, 5, "", ""],  # inside the last 14 days
        ["P1", "2026-11-12", "home", *ex, "missed", "", "", "", "", ""],  # inside
        ["P1", "2026-11-15", "clinic", *ex, "completed", 3, 10, 15, "", ""],  # a visit, not home
    ]
    _load(engine, tmp_path, [["P1", "2026-09-01", "pain_leg", 7, ""]], sessions)
    (e,) = rows(engine, select(episode_summary))
    assert (e.home_scheduled, e.home_done) == (4, 1.5)
    assert e.adherence == pytest.approx(1.5 / 4)
    assert (e.home_scheduled_14d, e.home_done_14d) == (2, 0.5)
    assert e.adherence_14d == pytest.approx(0.25)
    assert e.visits == 1 and e.is_active
    assert str(e.last_activity) == "2026-11-15" and str(e.as_of) == AS_OF.isoformat()


def test_no_sessions_means_unknown_adherence(engine, tmp_path):
    _load(engine, tmp_path, [["P1", "2026-09-01", "pain_leg", 7, ""]])
    (e,) = rows(engine, select(episode_summary))
    assert e.home_scheduled == 0 and e.adherence is None and e.adherence_14d is None


def test_wide_caseload_columns_mirror_the_long_table(engine, tmp_path):
    _load(
        engine,
        tmp_path,
        [
            ["P1", "2026-09-01", "pain_leg", 7, ""],
            ["P1", "2026-10-20", "pain_leg", 4, ""],
            ["P1", "2026-10-20", "odi", 30, ""],  # no baseline
        ],
    )
    (e,) = rows(engine, select(episode_summary))
    assert (e.pain_leg_baseline, e.pain_leg_latest, e.pain_leg_change) == (7, 4, -3)
    assert e.pain_leg_mcid and not e.pain_leg_worsened
    assert e.odi_baseline is None and e.odi_latest == 30 and e.odi_mcid is None
    assert e.numbness_latest is None and e.slr_left_change is None


def test_instants_scored_on_one_side_or_on_both(engine, tmp_path):
    """n_values counts instants, not rows: three instants on one side, two instants on both sides (the worse side
    is the value)."""
    _load(
        engine,
        tmp_path,
        [
            ["P1", "2026-09-01T09:00", "pain_leg", 7, "left"],
            ["P1", "2026-09-20T09:00", "pain_leg", 6, "left"],
            ["P1", "2026-10-20T09:00", "pain_leg", 5, "left"],
            ["P1", "2026-09-01T09:00", "slr_left", 40, "left"],
            ["P1", "2026-09-01T09:00", "slr_left", 35, "right"],
            ["P1", "2026-10-20T09:00", "slr_left", 50, "left"],
            ["P1", "2026-10-20T09:00", "slr_left", 45, "right"],
        ],
    )
    leg, slr = _measure(engine, "pain_leg"), _measure(engine, "slr_left")
    assert (leg.n_values, leg.baseline_value, leg.latest_value) == (3, 7, 5)
    assert (slr.n_values, slr.baseline_value, slr.latest_value) == (
        2,
        35,
        45,
    )  # higher is better: the lower side
