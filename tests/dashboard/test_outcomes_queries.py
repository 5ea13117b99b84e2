"""Outcome queries on SQLite and PostgreSQL over a small warehouse written here, every number traced by hand.

The marts the page reads (`episode_exercise_dose`, `episode_first_mcid`) are written by the ETL's code
(`etl.summary_dose.refresh_outcome_marts`) from the facts below; the grouped-SQL path (`outcome_aggregates`) and the
row path (`outcome_rows` + the DataFrame functions) must give the same numbers.

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
from sqlalchemy import Engine, insert, select

from bench.outcomes_naive import naive_tables
from dashboard.queries import outcomes as q
from dashboard.scope import Scope
from etl.summary_dose import refresh_outcome_marts
from warehouse.config import SummaryRules
from warehouse.schema import (
    clinics,
    episode_exercise_dose,
    episode_first_mcid,
    episode_measure_summary,
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
        conn.execute(
            insert(episode_measure_summary),
            [
                {
                    "episode_id": r["episode_id"],
                    "measure": "pain_leg",
                    "patient_id": r["patient_id"],
                    "n_values": len(SCORES[r["patient_id"]]),
                    "baseline_value": r["pain_leg_baseline"],
                    "latest_value": r["pain_leg_latest"],
                    "change": r["pain_leg_change"],
                    "mcid_reached": r["pain_leg_mcid"],
                }
                for r in rows
            ],
        )
        refresh_outcome_marts(conn, list(EPISODES), SummaryRules())


@pytest.fixture
def wh(engine) -> Engine:
    build(engine)
    return engine


def _agg(engine: Engine, filters: q.OutcomeFilters = q.OutcomeFilters(), scope: Scope = Scope.clinic_wide()):
    return q.outcome_aggregates(engine, scope, filters)


def _rows(engine: Engine, filters: q.OutcomeFilters = q.OutcomeFilters(), scope: Scope = Scope.clinic_wide()):
    return q.outcome_rows(engine, scope, filters)


def _types(engine: Engine, setting=None) -> dict[str, set[str]]:
    view = _rows(engine, q.OutcomeFilters(setting=setting))
    patient = view.episodes.set_index("episode_id")["patient_id"]
    out: dict[str, set[str]] = {}
    for r in view.types.itertuples():
        out.setdefault(str(patient[r.episode_id]), set()).add(r.exercise_type)
    return out


def _dose(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(select(episode_exercise_dose)).mappings().all())
    return df.set_index(["episode_id", "exercise_type", "setting"])


def test_exercise_type_rule_at_the_20_percent_edge(wh):
    assert _types(wh) == {
        "Q1": {"core_strengthening", "stretching"},  # 20 % exactly counts
        "Q2": {"core_strengthening"},  # 19 % does not
        "Q3": {"nerve_mobilization"},  # minutes from the prescribed x 0.5 of partial sessions
        "Q4": {"glute_strengthening", "stretching"},
        "Q5": {"core_strengthening", "nerve_mobilization"},  # no minutes: 3 vs 1 done sessions (25 %)
    }
    assert _types(wh, "home")["Q4"] == {"glute_strengthening"}
    assert _types(wh, "clinic") == {"Q4": {"stretching"}, "Q5": {"nerve_mobilization"}}
    dose = _dose(wh)
    assert dose.loc[(3, "nerve_mobilization", "home"), "minutes"] == pytest.approx(10.0)
    assert dose.loc[(3, "nerve_mobilization", "home"), "done"] == pytest.approx(1.0)
    assert (5, "glute_strengthening", "home") not in dose.index  # before the episode start
    # the 'all' rows are home + clinic; shares are within the row's setting
    assert dose.loc[(4, "stretching", "all"), "share"] == pytest.approx(0.25)  # 10 of 40 minutes
    assert dose.loc[(4, "stretching", "clinic"), "share"] == pytest.approx(1.0)
    assert dose.loc[(5, "core_strengthening", "all"), "share"] == pytest.approx(
        0.75
    )  # 3 of 4 done, no minutes
    assert dose.loc[(1, "stretching", "all"), "share"] == pytest.approx(0.20)


def test_itt_completers_and_ceiling_counts(wh):
    view, agg = _rows(wh), _agg(wh)
    r = q.responders(view.episodes, "pain_leg")
    assert agg.responders("pain_leg") == r
    # eligible: baseline and not at the ceiling = Q1, Q2, Q3, Q5; reached: Q1, Q5
    assert (r["itt"].k, r["itt"].n) == (2, 4)
    # completers: discharged with follow-up = Q1, Q2 (Q4 is at the ceiling)
    assert (r["completers"].k, r["completers"].n) == (1, 2)
    assert r["ceiling"] == 1 and r["no_baseline"] == 1 and r["no_followup"] == 1
    pd.testing.assert_frame_equal(agg.missing_data(), q.missing_data(view), check_dtype=False)
    md = agg.missing_data().set_index("what")["episodes"]
    assert md["All starters (ITT)"] == 6
    assert md["Completers (discharged)"] == 3
    assert md["Dropped out (no data 14 d, not discharged)"] == 1  # Q3: last activity day 50, as of day 90
    assert md["Leg pain: ceiling effect (counted apart)"] == 1
    summary = agg.type_summary().set_index("type")
    assert summary.loc["", "pain_leg_n"] == 4
    assert summary.loc["", "pain_leg_mean"] == pytest.approx((-5 + 0 - 0.5 - 5) / 4)
    assert summary.loc["core_strengthening", "episodes"] == 3  # Q1, Q2, Q5
    assert summary.loc["core_strengthening", "pain_leg_itt_k"] == 2
    assert summary.loc["stretching", "pain_leg_ceiling"] == 1  # Q4
    dq = q.quality_counts(wh, Scope.clinic_wide(), q.OutcomeFilters()).set_index("measure")
    pd.testing.assert_frame_equal(dq.reset_index(), q.data_quality_counts(view), check_dtype=False)
    assert dq.loc["Leg pain", "patients_missing_baseline"] == 1
    assert dq.loc["Leg pain", "patients_missing_followup"] == 1


def test_weeks_to_mcid(wh):
    eps = _rows(wh).episodes.set_index("patient_id")
    assert eps.loc["Q1", "weeks_to_mcid"] == pytest.approx(4.0)  # day 28: 8 -> 5.5 is 2.5 points
    assert eps.loc["Q5", "weeks_to_mcid"] == pytest.approx(1.0)
    assert eps.loc["Q4", "weeks_to_mcid"] == pytest.approx(3.0)  # 1.5 -> 1.0 is 33 %
    assert pd.isna(eps.loc["Q2", "weeks_to_mcid"])
    summary = _agg(wh).type_summary().set_index("type")
    assert summary.loc["", "weeks_to_mcid_median"] == pytest.approx(3.0)  # 1, 3, 4 weeks
    assert summary.loc["core_strengthening", "weeks_to_mcid_median"] == pytest.approx(2.5)  # Q1 4, Q5 1
    assert summary.loc["core_strengthening", "weeks_to_mcid_n"] == 2
    with wh.connect() as conn:
        days = dict(
            conn.execute(select(episode_first_mcid.c.episode_id, episode_first_mcid.c.days_to_mcid)).all()
        )
    assert days == {1: 28, 4: 21, 5: 7}


def test_clinics_scope_never_includes_other_clinics(wh):
    scope = Scope.clinics(["C2"])
    view = _rows(wh, scope=scope)
    assert sorted(view.episodes["patient_id"]) == ["Q4", "Q5"]
    assert set(view.types["episode_id"]) <= {4, 5}
    assert set(view.episodes["clinic_id"]) == {"C2"}
    agg = _agg(wh, scope=scope)
    assert agg.n == 2 and set(agg.pairs["episode_id"]) <= {4, 5}
    assert agg.type_summary().set_index("type").loc["", "weeks_to_mcid_n"] == 2  # Q4, Q5
    rec = q.recovery_scores(wh, scope, "pain_leg", (0, 11))
    assert set(rec["episode_id"]) == {4, 5}
    # a filter naming another clinic narrows to nothing, never widens
    assert _agg(wh, q.OutcomeFilters(clinic_id="C1"), scope).n == 0
    assert _rows(wh, q.OutcomeFilters(clinic_id="C1"), scope).n == 0
    assert _agg(wh, scope=Scope.clinics([])).n == 0
    assert _rows(wh, scope=Scope.clinics([])).episodes.empty
    assert sorted(_rows(wh, scope=Scope.therapist("T2")).episodes["patient_id"]) == ["Q3", "Q6"]
    assert q.quality_counts(wh, Scope.clinics([]), q.OutcomeFilters())["episodes"].tolist() == [0, 0]


def test_filters_and_recovery_bands(wh):
    for filters, n in (
        (q.OutcomeFilters(severity="severe"), 3),  # Q1 (8), Q3 (7), Q5 (9)
        (q.OutcomeFilters(sex="F"), 3),
        (q.OutcomeFilters(start_from=dt.date(2024, 1, 2)), 0),
        (q.OutcomeFilters(start_to=dt.date(2024, 1, 1)), 6),
        (q.OutcomeFilters(therapist_id="T3"), 2),
        (q.OutcomeFilters(age_band="60-74"), 3),  # born 1960, 1965, 1970: 64, 59, 54... see below
    ):
        assert _agg(wh, filters).n == _rows(wh, filters).n
        if filters.age_band is None:
            assert _agg(wh, filters).n == n
    # ages at the 2024 start: 64, 59, 54, 49, 44, 39
    assert _agg(wh, q.OutcomeFilters(age_band="60-74")).n == 1
    assert _agg(wh, q.OutcomeFilters(age_band="40-59")).n == 4
    assert _agg(wh, q.OutcomeFilters(age_band="<40")).n == 1
    rec = q.recovery_scores(wh, Scope.clinic_wide(), "pain_leg", (7, 10.0001))
    assert sorted(rec.loc[rec["week"] == 0, "value"]) == [7.0, 8.0, 9.0]
    assert set(rec["week"]) == {0, 1, 2, 4, 5, 6}


FILTER_CASES = [
    q.OutcomeFilters(),
    q.OutcomeFilters(setting="home"),
    q.OutcomeFilters(setting="clinic"),
    q.OutcomeFilters(clinic_id="C1"),
    q.OutcomeFilters(severity="severe", sex="M"),
    q.OutcomeFilters(start_from=dt.date(2025, 1, 1)),
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: f.describe())
def test_grouped_sql_gives_the_row_path_numbers(wh, filters):
    """Every table of the filter-change callback, from grouped SQL, equals the DataFrame function over rows."""
    agg, view = _agg(wh, filters), _rows(wh, filters)
    assert agg.n == view.n
    assert agg.n_pairs == len(view.episodes[["adherence", "pain_leg_change"]].dropna())
    for name in ("type_summary", "dose_response", "dose_by_type", "monthly_trend", "missing_data"):
        got, want = getattr(agg, name)(), getattr(q, name)(view)
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False, obj=name
        )
    pd.testing.assert_frame_equal(agg.dropout_by_week(), q.dropout_by_week(view), check_dtype=False)
    for m in q.RESPONDER_MEASURES:
        if view.n:
            assert agg.responders(m) == q.responders(view.episodes, m)
    points = q.scatter_points(view)
    assert sorted(agg.scatter_points()["episode_id"]) == sorted(points["episode_id"])


def test_reject_reasons_cut_values(wh):
    r = q.reject_reasons(wh)
    assert r.to_dict("records") == [
        {"file_name": "scores.csv", "reason": "value: value … outside 0-10", "rows": 3},
        {"file_name": "scores.csv", "reason": "measure: unknown measure …", "rows": 1},
    ]


def test_benchmarks_grey_small_groups(wh):
    b = q.benchmarks(_rows(wh), "therapist_id")
    assert set(b["group"]) == {"T1", "T2", "T3"}
    assert b["small_n"].all() and b["rank"].isna().all()  # n < 10: never ranked
    assert b.set_index("group").loc["T1", "n"] == 2


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: f.describe())
def test_sql_rules_give_the_old_pandas_numbers(wh, filters):
    """The rules as SQL expressions against the pandas implementation the page used before the marts (kept as the
    benchmark's naive baseline: whole tables read, rules applied in pandas)."""
    naive = naive_tables(wh, filters)
    agg = _agg(wh, filters)
    for name in (
        "type_summary",
        "dose_response",
        "dose_by_type",
        "monthly_trend",
        "missing_data",
        "dropout_by_week",
    ):
        pd.testing.assert_frame_equal(
            getattr(agg, name)().reset_index(drop=True),
            naive[name].reset_index(drop=True),
            check_dtype=False,
            obj=name,
        )
    assert sorted(agg.scatter_points()["episode_id"]) == sorted(naive["scatter"]["episode_id"])


def test_model_columns_suffice_for_the_comparison(wh):
    """The comparison callback reads only `MODEL_COLUMNS`; its tables must not change."""
    full = _rows(wh)
    narrow = q.outcome_rows(wh, Scope.clinic_wide(), q.OutcomeFilters(), columns=q.MODEL_COLUMNS)
    assert set(narrow.episodes.columns) < set(full.episodes.columns)
    for by in ("therapist_id", "clinic_id"):
        pd.testing.assert_frame_equal(q.benchmarks(narrow, by), q.benchmarks(full, by))
    pd.testing.assert_frame_equal(q.adjusted_comparison(narrow), q.adjusted_comparison(full))
