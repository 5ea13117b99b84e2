"""Outcome queries on SQLite and PostgreSQL over a small warehouse written here, every number traced by hand.

| episode | clinic/therapist | leg pain (baseline -> latest) | status                 | logged dose                                   |
|---------|------------------|-------------------------------|------------------------|-----------------------------------------------|
| Q1      | C1 / T1          | 8 -> 3, MCID at day 28        | discharged             | core 80 min, stretching 20 min (20 %: counts) |
| Q2      | C1 / T1          | 6 -> 6                        | discharged             | core 81 min, stretching 19 min (19 %: not)    |
| Q3      | C1 / T2          | 7, no follow-up               | active, no data 40 d   | nerve: 2 partial sessions, no minutes logged  |
| Q4      | C2 / T3          | 1.5 -> 1.0 (ceiling), MCID 30%| discharged             | glute 30 min home, stretching 10 min clinic   |
| Q5      | C2 / T3          | 9 -> 4, MCID at day 7         | active                 | no minutes at all: core 3 sessions, nerve 1   |
| Q6      | C1 / T2          | no baseline, latest 5         | active                 | nothing                                       |
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from dashboard.flags import FlagRules
from dashboard.queries import outcomes as q
from dashboard.scope import Scope
from warehouse.schema import (
    clinics,
    episode_summary,
    episodes,
    etl_batches,
    etl_rejects,
    exercises,
    patients,
    scores,
    sessions,
    therapists,
)

AS_OF = dt.date(2024, 3, 31)
START = dt.date(2024, 1, 1)
EXERCISES = {
    "bird dog": "core_strengthening",
    "piriformis stretch": "stretching",
    "sciatic nerve glide": "nerve_mobilization",
    "glute bridge": "glute_strengthening",
}
# patient: clinic, therapist, leg baseline, latest, mcid, end_date, last_activity (days after start)
EPISODES = {
    "Q1": ("C1", "T1", 8.0, 3.0, True, 50, 50),
    "Q2": ("C1", "T1", 6.0, 6.0, False, 50, 50),
    "Q3": ("C1", "T2", 7.0, None, None, None, 50),
    "Q4": ("C2", "T3", 1.5, 1.0, True, 40, 40),
    "Q5": ("C2", "T3", 9.0, 4.0, True, None, 85),
    "Q6": ("C1", "T2", None, 5.0, None, None, 88),
}
# pain_leg series: (day, value)
SCORES = {
    "Q1": [(0, 8.0), (14, 7.0), (28, 5.5), (42, 3.0)],
    "Q2": [(0, 6.0), (30, 6.0)],
    "Q3": [(0, 7.0)],
    "Q4": [(0, 1.5), (21, 1.0)],
    "Q5": [(0, 9.0), (7, 6.5), (35, 4.0)],
    "Q6": [(20, 5.0)],
}
# sessions: (patient, day, setting, exercise, status, duration_min, prescribed_min)
SESSIONS = [
    *[("Q1", d, "home", "bird dog", "completed", 20.0, 20.0) for d in (1, 2, 3, 4)],
    ("Q1", 5, "home", "piriformis stretch", "completed", 20.0, 20.0),
    ("Q1", 6, "home", "piriformis stretch", "missed", None, 20.0),  # not done: no dose
    ("Q2", 1, "home", "bird dog", "completed", 81.0, 80.0),
    ("Q2", 2, "home", "piriformis stretch", "completed", 19.0, 20.0),
    ("Q3", 1, "home", "sciatic nerve glide", "partial", None, 10.0),  # 10 x 0.5 = 5 min
    ("Q3", 2, "home", "sciatic nerve glide", "partial", None, 10.0),
    ("Q4", 1, "home", "glute bridge", "completed", 30.0, 30.0),
    ("Q4", 2, "clinic", "piriformis stretch", "completed", 10.0, 10.0),
    *[("Q5", d, "home", "bird dog", "completed", None, None) for d in (1, 2, 3)],
    ("Q5", 4, "clinic", "sciatic nerve glide", "completed", None, None),
    ("Q5", -10, "home", "glute bridge", "completed", 99.0, 99.0),  # before the start: not this episode
]


def build(engine: Engine) -> None:
    day = lambda n: START + dt.timedelta(days=n)  # noqa: E731
    with engine.begin() as conn:
        conn.execute(
            insert(etl_batches),
            [
                {
                    "batch_id": 1,
                    "file_name": "scores.csv",
                    "sha256": "0" * 64,
                    "kind": "scores",
                    "loaded_at": dt.datetime(2024, 3, 31, 22),
                    "status": "loaded_with_rejects",
                    "rows_read": 20,
                    "rows_inserted": 17,
                    "rows_rejected": 3,
                }
            ],
        )
        conn.execute(
            insert(etl_rejects),
            [
                {
                    "batch_id": 1,
                    "source_line": 3,
                    "raw_row": "x",
                    "reasons": "value: value '12' outside 0-10",
                },
                {
                    "batch_id": 1,
                    "source_line": 4,
                    "raw_row": "x",
                    "reasons": "value: value '-2' outside 0-10",
                },
                {
                    "batch_id": 1,
                    "source_line": 5,
                    "raw_row": "x",
                    "reasons": "measure: unknown measure 'mood'; value: value '11' outside 0-10",
                },
            ],
        )
        conn.execute(insert(clinics), [{"clinic_id": c, "name": c, "batch_id": 1} for c in ("C1", "C2")])
        conn.execute(
            insert(therapists),
            [
                {"therapist_id": t, "clinic_id": c, "name": t, "batch_id": 1}
                for t, c in (("T1", "C1"), ("T2", "C1"), ("T3", "C2"))
            ],
        )
        conn.execute(insert(exercises), [{"exercise": e, "exercise_type": t} for e, t in EXERCISES.items()])
        conn.execute(
            insert(patients),
            [
                {
                    "patient_id": p,
                    "clinic_id": c,
                    "therapist_id": t,
                    "birth_year": 1960 + i * 5,
                    "sex": "F" if i % 2 else "M",
                    "batch_id": 1,
                    "source_line": i,
                }
                for i, (p, (c, t, *_)) in enumerate(EPISODES.items())
            ],
        )
        conn.execute(
            insert(episodes),
            [
                {
                    "episode_id": i + 1,
                    "patient_id": p,
                    "start_date": START,
                    "end_date": day(e[5]) if e[5] is not None else None,
                    "side": "left",
                    "symptom_onset": START - dt.timedelta(weeks=4 + i),
                    "batch_id": 1,
                    "source_line": i,
                }
                for i, (p, e) in enumerate(EPISODES.items())
            ],
        )
        conn.execute(
            insert(scores),
            [
                {
                    "patient_id": p,
                    "measure": "pain_leg",
                    "recorded_at": dt.datetime.combine(day(d), dt.time(10)),
                    "side": "",
                    "value": v,
                    "batch_id": 1,
                    "source_line": 0,
                }
                for p, series in SCORES.items()
                for d, v in series
            ],
        )
        conn.execute(
            insert(sessions),
            [
                {
                    "patient_id": p,
                    "session_date": day(d),
                    "setting": setting,
                    "exercise": ex,
                    "exercise_type": EXERCISES[ex],
                    "status": status,
                    "duration_min": dur,
                    "prescribed_min": pres,
                    "batch_id": 1,
                    "source_line": i,
                }
                for i, (p, d, setting, ex, status, dur, pres) in enumerate(SESSIONS)
            ],
        )
        rows = []
        for i, (p, (c, t, base, latest, mcid, end, last)) in enumerate(EPISODES.items()):
            change = None if base is None or latest is None or p == "Q3" else latest - base
            rows.append(
                {
                    "episode_id": i + 1,
                    "patient_id": p,
                    "clinic_id": c,
                    "therapist_id": t,
                    "start_date": START,
                    "end_date": day(end) if end is not None else None,
                    "is_active": end is None,
                    "visits": 3,
                    "home_scheduled": 10,
                    "home_done": 7.0,
                    "adherence": 0.5 + 0.1 * i,
                    "home_scheduled_14d": 0,
                    "home_done_14d": 0.0,
                    "last_activity": day(last),
                    "as_of": AS_OF,
                    "refreshed_at": dt.datetime(2024, 3, 31, 23),
                    "pain_leg_baseline": base,
                    "pain_leg_latest": latest,
                    "pain_leg_change": change,
                    "pain_leg_mcid": mcid,
                }
            )
        conn.execute(insert(episode_summary), rows)


@pytest.fixture
def wh(engine) -> Engine:
    build(engine)
    return engine


def _data(engine: Engine, scope: Scope = Scope.clinic_wide()) -> q.OutcomeData:
    return q.load_outcomes(engine, scope, FlagRules())


def _types(data: q.OutcomeData, setting=None) -> dict[str, set[str]]:
    t = data.types(setting)
    out: dict[str, set[str]] = {}
    for r in t.itertuples():
        out.setdefault(str(data.episodes.set_index("episode_id").loc[r.episode_id, "patient_id"]), set()).add(
            r.exercise_type
        )
    return out


def test_exercise_type_rule_at_the_20_percent_edge(wh):
    data = _data(wh)
    assert _types(data) == {
        "Q1": {"core_strengthening", "stretching"},  # 20 % exactly counts
        "Q2": {"core_strengthening"},  # 19 % does not
        "Q3": {"nerve_mobilization"},  # minutes from the prescribed x 0.5 of partial sessions
        "Q4": {"glute_strengthening", "stretching"},
        "Q5": {"core_strengthening", "nerve_mobilization"},  # no minutes: 3 vs 1 done sessions (25 %)
    }
    assert _types(data, "home")["Q4"] == {"glute_strengthening"}
    assert _types(data, "clinic") == {"Q4": {"stretching"}, "Q5": {"nerve_mobilization"}}
    dose = data.dose.set_index(["episode_id", "exercise_type", "setting"])
    assert dose.loc[(3, "nerve_mobilization", "home"), "minutes"] == pytest.approx(10.0)
    assert dose.loc[(3, "nerve_mobilization", "home"), "done"] == pytest.approx(1.0)
    assert (5, "glute_strengthening", "home") not in dose.index  # before the episode start


def test_itt_completers_and_ceiling_counts(wh):
    view = q.outcome_view(_data(wh), q.OutcomeFilters())
    r = q.responders(view.episodes, "pain_leg")
    # eligible: baseline and not at the ceiling = Q1, Q2, Q3, Q5; reached: Q1, Q5
    assert (r["itt"].k, r["itt"].n) == (2, 4)
    # completers: discharged with follow-up = Q1, Q2 (Q4 is at the ceiling)
    assert (r["completers"].k, r["completers"].n) == (1, 2)
    assert r["ceiling"] == 1 and r["no_baseline"] == 1 and r["no_followup"] == 1
    md = q.missing_data(view).set_index("what")["episodes"]
    assert md["All starters (ITT)"] == 6
    assert md["Completers (discharged)"] == 3
    assert md["Dropped out (no data 14 d, not discharged)"] == 1  # Q3: last activity day 50, as of day 90
    assert md["Leg pain: ceiling effect (counted apart)"] == 1
    summary = q.type_summary(view).set_index("type")
    assert summary.loc["", "pain_leg_n"] == 4
    assert summary.loc["", "pain_leg_mean"] == pytest.approx((-5 + 0 - 0.5 - 5) / 4)
    assert summary.loc["core_strengthening", "episodes"] == 3  # Q1, Q2, Q5
    assert summary.loc["core_strengthening", "pain_leg_itt_k"] == 2
    assert summary.loc["stretching", "pain_leg_ceiling"] == 1  # Q4
    dq = q.data_quality_counts(view).set_index("measure")
    assert dq.loc["Leg pain", "patients_missing_baseline"] == 1
    assert dq.loc["Leg pain", "patients_missing_followup"] == 1


def test_weeks_to_mcid(wh):
    eps = _data(wh).episodes.set_index("patient_id")
    assert eps.loc["Q1", "weeks_to_mcid"] == pytest.approx(4.0)  # day 28: 8 -> 5.5 is 2.5 points
    assert eps.loc["Q5", "weeks_to_mcid"] == pytest.approx(1.0)
    assert eps.loc["Q4", "weeks_to_mcid"] == pytest.approx(3.0)  # 1.5 -> 1.0 is 33 %
    assert pd.isna(eps.loc["Q2", "weeks_to_mcid"])
    summary = q.type_summary(q.outcome_view(_data(wh), q.OutcomeFilters())).set_index("type")
    assert summary.loc["", "weeks_to_mcid_median"] == pytest.approx(3.0)


def test_clinics_scope_never_includes_other_clinics(wh):
    scope = Scope.clinics(["C2"])
    data = _data(wh, scope)
    assert sorted(data.episodes["patient_id"]) == ["Q4", "Q5"]
    assert set(data.dose["episode_id"]) <= {4, 5}
    assert set(q.outcome_episodes(wh, scope)["clinic_id"]) == {"C2"}
    assert set(q.weeks_to_mcid(wh, scope, data.catalog)["episode_id"]) == {4, 5}
    rec = q.recovery_scores(wh, scope, "pain_leg", (0, 11))
    assert set(rec["episode_id"]) == {4, 5}
    # a filter naming another clinic narrows to nothing, never widens
    assert q.outcome_view(data, q.OutcomeFilters(clinic_id="C1")).n == 0
    assert _data(wh, Scope.clinics([])).episodes.empty
    assert sorted(_data(wh, Scope.therapist("T2")).episodes["patient_id"]) == ["Q3", "Q6"]


def test_filters_and_recovery_bands(wh):
    data = _data(wh)
    assert q.outcome_view(data, q.OutcomeFilters(severity="severe")).n == 3  # Q1 (8), Q3 (7), Q5 (9)
    assert q.outcome_view(data, q.OutcomeFilters(sex="F")).n == 3
    assert q.outcome_view(data, q.OutcomeFilters(start_from=dt.date(2024, 1, 2))).n == 0
    assert q.outcome_view(data, q.OutcomeFilters(therapist_id="T3")).n == 2
    rec = q.recovery_scores(wh, Scope.clinic_wide(), "pain_leg", (7, 10.0001))
    assert sorted(rec.loc[rec["week"] == 0, "value"]) == [7.0, 8.0, 9.0]
    assert set(rec["week"]) == {0, 1, 2, 4, 5, 6}


def test_reject_reasons_cut_values(wh):
    r = q.reject_reasons(wh)
    assert r.to_dict("records") == [
        {"file_name": "scores.csv", "reason": "value: value … outside 0-10", "rows": 3},
        {"file_name": "scores.csv", "reason": "measure: unknown measure …", "rows": 1},
    ]


def test_cache_refills_when_the_warehouse_changes(wh):
    cache = q.OutcomeCache()
    a = cache.get(wh, Scope.clinic_wide())
    assert cache.get(wh, Scope.clinic_wide()) is a
    cache.get(wh, Scope.clinics(["C1"]))
    assert cache.fills == 2
    with wh.begin() as conn:
        conn.execute(
            episode_summary.update()
            .where(episode_summary.c.episode_id == 2)
            .values(refreshed_at=dt.datetime(2024, 4, 1))
        )
    assert cache.get(wh, Scope.clinic_wide()) is not a
    assert cache.fills == 3


def test_benchmarks_grey_small_groups(wh):
    view = q.outcome_view(_data(wh), q.OutcomeFilters())
    b = q.benchmarks(view, "therapist_id")
    assert set(b["group"]) == {"T1", "T2", "T3"}
    assert b["small_n"].all() and b["rank"].isna().all()  # n < 10: never ranked
    assert b.set_index("group").loc["T1", "n"] == 2
