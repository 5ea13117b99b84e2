import datetime as dt

import pytest

from dashboard.queries import catalog as qc
from dashboard.queries import patient as qp
from dashboard.scope import Scope
from tests.dashboard.factories import AS_OF, d

ALL = Scope.clinic_wide()


def test_profile_and_episodes(warehouse):
    profile = qp.patient_profile(warehouse, ALL, "P1")
    assert profile.iloc[0]["last_name"] == "Berg"
    assert profile.iloc[0]["clinic_name"] == "Northside" and profile.iloc[0]["therapist_name"] == "Alex Kim"
    episodes = qp.patient_episodes(warehouse, ALL, "P1")
    assert len(episodes) == 1 and episodes.iloc[0]["visits"] == 5
    assert episodes.iloc[0]["as_of"] == AS_OF
    assert qp.patient_profile(warehouse, ALL, "unknown").empty


def test_episode_measures_carry_the_catalog(warehouse):
    m = qp.episode_measures(warehouse, ALL, "P1", 1).set_index("measure")
    assert list(m.index) == ["pain_leg", "odi", "slr_left"]  # catalog order
    assert m.loc["pain_leg", "unit"] == "points" and m.loc["pain_leg", "mcid_abs"] == 2.0
    assert m.loc["slr_left", "threshold_kind"] == "detectable_change"
    assert qp.episode_measures(warehouse, ALL, "P2", 1).empty  # another patient's episode


def test_scores_and_date_range(warehouse):
    everything = qp.patient_scores(warehouse, ALL, "P1")
    assert len(everything) == 10
    recent = qp.patient_scores(warehouse, ALL, "P1", d(20), d(6))
    assert sorted(recent["recorded_at"].dt.date.unique()) == [d(20), d(13), d(6)]  # both ends inclusive
    leg = everything[everything["measure"] == "pain_leg"]
    assert list(leg["value"]) == [7.0, 6.0, 5.5, 4.0, 3.0] and set(leg["side"]) == {"left"}


def test_sessions_and_date_range(warehouse):
    all_sessions = qp.patient_sessions(warehouse, ALL, "P1")
    assert set(all_sessions["setting"]) == {"clinic", "home"}
    week = qp.patient_sessions(warehouse, ALL, "P1", d(10), d(4))
    assert week["session_date"].min() == d(10) and week["session_date"].max() == d(4)


def test_patient_with_one_score_and_no_sessions(warehouse):
    assert len(qp.patient_scores(warehouse, ALL, "P3")) == 1
    assert qp.patient_sessions(warehouse, ALL, "P3").empty
    assert qp.patient_date_span(warehouse, ALL, "P3") == (d(3), d(3))
    assert qp.patient_date_span(warehouse, ALL, "unknown") == (None, None)


READERS = [
    ("profile", lambda e, s, p: qp.patient_profile(e, s, p)),
    ("episodes", lambda e, s, p: qp.patient_episodes(e, s, p)),
    ("measures", lambda e, s, p: qp.episode_measures(e, s, p, {"P1": 1, "P3": 3, "P4": 4}[p])),
    ("scores", lambda e, s, p: qp.patient_scores(e, s, p)),
    ("scores in range", lambda e, s, p: qp.patient_scores(e, s, p, dt.date(2000, 1, 1), AS_OF)),
    ("sessions", lambda e, s, p: qp.patient_sessions(e, s, p)),
]


@pytest.mark.parametrize(("name", "read"), READERS, ids=[n for n, _ in READERS])
def test_a_therapist_cannot_read_another_therapists_patient(warehouse, name, read):
    t1 = Scope.therapist("T1")
    assert not read(warehouse, t1, "P1").empty  # own patient: visible
    for other in ("P3", "P4"):  # T2's and T3's patients
        assert read(warehouse, t1, other).empty, f"{name} leaked {other}"
        assert read(warehouse, ALL, other).shape[1] == read(warehouse, t1, other).shape[1]
    assert qp.patient_date_span(warehouse, t1, "P4") == (None, None)


def test_clinic_scope(warehouse):
    c2 = Scope.clinics(["C2"])
    assert not qp.patient_profile(warehouse, c2, "P4").empty
    assert qp.patient_profile(warehouse, c2, "P1").empty


def test_catalog(warehouse):
    cat = qc.measures_catalog(warehouse).set_index("code")
    assert cat.loc["odi", "unit"] == "%" and cat.loc["slr_left", "better"] == "higher"
    assert qc.exercise_type_labels(warehouse)["nerve_mobilization"] == "Nerve mobilisation"
