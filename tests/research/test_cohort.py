"""Cohort definitions: JSON round trip and validation, and every filter against a direct pandas computation."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from research.cohort import (
    AGE_BANDS,
    CohortDefinition,
    CohortError,
    DateRange,
    Range,
    exclusion_flow,
    select_cohort,
    table_one,
)
from tests.research.conftest import AS_OF

FULL = CohortDefinition(
    name="nerve glides, moderate pain",
    description="example",
    episode_start=DateRange(date(2026, 3, 1), date(2026, 10, 31)),
    age_bands=("40-49", "50-59", "60-69"),
    sexes=("F", "M"),
    clinics=("C01", "C02"),
    baseline_pain_leg=Range(3, 10),
    baseline_odi=Range(None, 80),
    symptom_duration_weeks=Range(1, 30),
    exercise_types=("nerve_mobilization",),
    min_adherence=0.2,
    min_followup_weeks=2,
    population="all_starters",
)


# --- the definition, without a warehouse --------------------------------------------------------------------------
def test_json_round_trip_is_exact():
    text = FULL.to_json()
    again = CohortDefinition.from_json(text)
    assert again == FULL
    assert again.to_json() == text
    assert json.loads(text)["schema_version"] == 1


def test_empty_definition_is_valid_and_minimal():
    d = CohortDefinition.from_json('{"schema_version": 1}')
    assert d == CohortDefinition()


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"schema_version": 1, "filters": {"age_band": []}}, "filters.age_band"),
        ({"schema_version": 1, "filters": {"age_bands": ["45-50"]}}, "filters.age_bands[0]"),
        ({"schema_version": 1, "filters": {"sexes": ["female"]}}, "filters.sexes[0]"),
        (
            {"schema_version": 1, "filters": {"baseline_pain_leg": {"min": 11}}},
            "filters.baseline_pain_leg.min",
        ),
        ({"schema_version": 1, "filters": {"baseline_odi": {"min": 50, "max": 10}}}, "filters.baseline_odi"),
        (
            {"schema_version": 1, "filters": {"episode_start": {"from": "2026-13-01"}}},
            "filters.episode_start.from",
        ),
        ({"schema_version": 1, "filters": {"min_adherence": 80}}, "filters.min_adherence"),
        ({"schema_version": 1, "filters": {"population": "finishers"}}, "filters.population"),
        (
            {"schema_version": 1, "filters": {"exercise_types": {"match": "most"}}},
            "filters.exercise_types.match",
        ),
        ({"schema_version": 1, "filters": {"clinics": "C01"}}, "filters.clinics"),
    ],
)
def test_invalid_definitions_name_the_field(doc, field):
    with pytest.raises(CohortError) as err:
        CohortDefinition.from_dict(doc)
    assert str(err.value).startswith(field), str(err.value)


def test_unknown_exercise_type_is_refused(shared: Engine):
    with pytest.raises(CohortError, match="yoga"):
        select_cohort(shared, CohortDefinition(exercise_types=("yoga",)))


# --- filters against pandas ---------------------------------------------------------------------------------------
def _reference(engine: Engine) -> pd.DataFrame:
    """Every episode with what the filters look at, computed in pandas from the raw tables."""
    with engine.connect() as conn:
        ep = pd.read_sql_table("episodes", conn)
        pt = pd.read_sql_table("patients", conn)
        es = pd.read_sql_table("episode_summary", conn)[["episode_id", "adherence"]]
        ms = pd.read_sql_table("episode_measure_summary", conn)
        se = pd.read_sql_table("sessions", conn)
    df = ep.merge(pt, on="patient_id").merge(es, on="episode_id", how="left")
    for col in ("start_date", "end_date", "symptom_onset"):
        df[col] = pd.to_datetime(df[col])
    df["age"] = df["start_date"].dt.year - df["birth_year"]
    df["symptom_weeks"] = (df["start_date"] - df["symptom_onset"]).dt.days / 7
    for code in ("pain_leg", "odi"):
        m = ms[ms["measure"] == code].set_index("episode_id")
        df[f"b_{code}"] = df["episode_id"].map(m["baseline_value"])
        if code == "pain_leg":
            span = pd.to_datetime(m["latest_at"]) - pd.to_datetime(m["baseline_at"])
            df["fu_days"] = df["episode_id"].map(span.dt.total_seconds() / 86400)
    se["session_date"] = pd.to_datetime(se["session_date"])
    got = se[se["status"].isin(["completed", "partial"])].merge(
        df[["episode_id", "patient_id", "start_date", "end_date"]], on="patient_id"
    )
    inside = (got["session_date"] >= got["start_date"]) & (
        got["end_date"].isna() | (got["session_date"] <= got["end_date"])
    )
    types = got[inside].groupby("episode_id")["exercise_type"].agg(set)
    df["types"] = df["episode_id"].map(types).apply(lambda v: v if isinstance(v, set) else set())
    return df


def _band_ok(age: int, bands: tuple[str, ...]) -> bool:
    return any(n in bands and lo <= age and (hi is None or age <= hi) for n, lo, hi in AGE_BANDS)


def _expected(df: pd.DataFrame, d: CohortDefinition) -> set[int]:
    keep = pd.Series(True, index=df.index)
    if d.episode_start.start:
        keep &= df["start_date"] >= pd.Timestamp(d.episode_start.start)
    if d.episode_start.end:
        keep &= df["start_date"] <= pd.Timestamp(d.episode_start.end)
    if d.age_bands:
        keep &= df["age"].apply(lambda a: _band_ok(a, d.age_bands))
    if d.sexes:
        keep &= df["sex"].isin(d.sexes)
    if d.clinics:
        keep &= df["clinic_id"].isin(d.clinics)
    r = d.symptom_duration_weeks
    if r.is_set:
        keep &= df["symptom_weeks"].notna()
        keep &= (df["symptom_weeks"] >= (r.min if r.min is not None else -1e9)) & (
            df["symptom_weeks"] <= (r.max if r.max is not None else 1e9)
        )
    if d.require_baseline:
        keep &= df["b_pain_leg"].notna()
    for r, col in ((d.baseline_pain_leg, "b_pain_leg"), (d.baseline_odi, "b_odi")):
        if r.is_set:
            lo = r.min if r.min is not None else -1e9
            hi = r.max if r.max is not None else 1e9
            keep &= df[col].notna() & (df[col] >= lo) & (df[col] <= hi)
    if d.min_followup_weeks is not None:
        keep &= (df["fu_days"] > 0) & (df["fu_days"] >= d.min_followup_weeks * 7)
    if d.population == "completers":
        keep &= df["end_date"].notna()
    if d.min_adherence is not None:
        keep &= df["adherence"] >= d.min_adherence
    if d.exercise_types:
        want = set(d.exercise_types)
        match = (lambda t: bool(t & want)) if d.exercise_types_match == "any" else (lambda t: want <= t)
        keep &= df["types"].apply(match)
    return set(df.loc[keep, "episode_id"].astype(int))


DEFINITIONS = {
    "everything": CohortDefinition(require_baseline=False),
    "with baseline": CohortDefinition(),
    "start range": CohortDefinition(episode_start=DateRange(AS_OF - timedelta(200), AS_OF - timedelta(50))),
    "age and sex": CohortDefinition(age_bands=("40-49", "50-59", "90+"), sexes=("F",)),
    "clinic completers": CohortDefinition(clinics=("C01",), population="completers"),
    "baseline ranges": CohortDefinition(baseline_pain_leg=Range(5, 8), baseline_odi=Range(None, 40)),
    "symptom duration": CohortDefinition(symptom_duration_weeks=Range(4, 12)),
    "types any": CohortDefinition(exercise_types=("nerve_mobilization", "posture_training")),
    "types all": CohortDefinition(
        exercise_types=("core_strengthening", "stretching"), exercise_types_match="all"
    ),
    "adherence and follow-up": CohortDefinition(min_adherence=0.6, min_followup_weeks=4),
    "any follow-up": CohortDefinition(min_followup_weeks=0),
    "full": FULL,
}


def test_filters_match_pandas_and_survive_a_json_round_trip(warehouse: Engine):
    df = _reference(warehouse)
    sizes = {}
    for name, d in DEFINITIONS.items():
        got = set(select_cohort(warehouse, d)["episode_id"])
        assert got == _expected(df, d), name
        sizes[name] = len(got)
    assert sizes["everything"] == len(df)
    _round_trip_gives_the_same_ids(warehouse)
    # each filter really filters, and none empties the cohort (else the comparison proves little)
    assert all(
        0 < n < len(df)
        for name, n in sizes.items()
        if name not in ("everything", "with baseline", "any follow-up")
    ), sizes


def _round_trip_gives_the_same_ids(warehouse: Engine):
    again = CohortDefinition.from_json(FULL.to_json())
    a = select_cohort(warehouse, FULL)
    assert not a.empty
    pd.testing.assert_frame_equal(a, select_cohort(warehouse, again))


def test_exclusion_flow_narrows_to_the_cohort(shared: Engine):
    flow = exclusion_flow(shared, FULL)
    assert list(flow["step"]) == [
        "episodes in warehouse",
        "started",
        "with baseline",
        "with follow-up",
        "in cohort",
    ]
    assert flow["episodes"].is_monotonic_decreasing
    assert flow["episodes"].iloc[-1] == len(select_cohort(shared, FULL))
    assert (flow["excluded"].iloc[1:] == -flow["episodes"].diff().iloc[1:]).all()


def test_table_one_columns_and_counts(shared: Engine):
    d = CohortDefinition(min_followup_weeks=0)
    t1 = table_one(shared, d)
    n = len(select_cohort(shared, d))
    assert list(t1.columns[:3]) == ["characteristic", "statistic", "All"]
    assert t1.set_index("characteristic").loc["Episodes", "All"] == str(n)
    assert "Nerve mobilisation" in t1.columns
    assert {"Age, years", "Leg pain (0-10)", "ODI (0-100)", "Symptom duration, weeks"} <= set(
        t1["characteristic"]
    )
    sexes = t1[t1["characteristic"].str.startswith("Sex ")]
    assert sum(int(v.split()[0]) for v in sexes["All"]) == n
