"""The outcome packs (warehouse/outcome_pack.py) against the grouped SQL they stand in for, on SQLite and PostgreSQL.

Two warehouses: the hand-traced one of test_outcomes_queries.py (its marts written directly, packs built here) and a
generated clinic export loaded with the real loader (packs written by the summary refresh). Every table of the
filter-change callback must be the same from both paths, under filters and scopes; the packs must refuse to answer
when they cannot (therapist scope, other rules, a clinic without a pack) and follow patients who change clinic.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select, update

from dashboard.flags import FlagRules
from dashboard.queries import outcomes as q
from dashboard.queries import outcomes_packed as qp
from dashboard.scope import Scope
from etl.generate import generate
from etl.load import load_files
from etl.summary import refresh_summaries
from tests.dashboard.test_outcomes_queries import FILTER_CASES, build
from tests.etl.helpers import AS_OF
from warehouse.outcome_pack import rebuild_packs
from warehouse.schema import episode_summary, outcome_pack, patients

TABLES = ("type_summary", "dose_response", "dose_by_type", "monthly_trend", "missing_data", "dropout_by_week")


def assert_same(engine: Engine, filters: q.OutcomeFilters, scope: Scope = Scope.clinic_wide()) -> None:
    catalog = q.measure_thresholds(engine)
    packed = qp.packed_aggregates(engine, scope, filters, FlagRules(), catalog)
    assert packed is not None, "the packs should answer"
    sql = q.outcome_aggregates(engine, scope, filters, FlagRules(), catalog)
    assert packed.n == sql.n
    assert packed.n_pairs == sql.n_pairs
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(packed, name)().reset_index(drop=True),
            getattr(sql, name)().reset_index(drop=True),
            check_dtype=False,
            obj=f"{name} ({filters.describe()})",
        )
    for m in q.RESPONDER_MEASURES:
        if sql.n:
            assert packed.responders(m) == sql.responders(m)
    # same sample, same order (the fixed pseudo-random order of the SQL path)
    pd.testing.assert_frame_equal(
        packed.scatter_points().reset_index(drop=True), sql.scatter_points().reset_index(drop=True)
    )


@pytest.fixture
def traced(engine) -> Engine:
    build(engine)
    with engine.begin() as conn:
        rebuild_packs(conn, ["C1", "C2"], FlagRules())
    return engine


@pytest.mark.parametrize(
    "filters",
    [*FILTER_CASES, q.OutcomeFilters(therapist_id="T2"), q.OutcomeFilters(age_band="40-59", setting="home")],
    ids=lambda f: f.describe(),
)
def test_packs_give_the_grouped_sql_numbers(traced, filters):
    assert_same(traced, filters)


def test_packs_keep_the_scope(traced):
    assert_same(traced, q.OutcomeFilters(), Scope.clinics(["C2"]))
    catalog = q.measure_thresholds(traced)
    c2 = qp.packed_aggregates(traced, Scope.clinics(["C2"]), q.OutcomeFilters(), FlagRules(), catalog)
    assert c2.n == 2  # Q4, Q5
    # a clinic filter outside the scope reads nothing
    none = qp.packed_aggregates(
        traced, Scope.clinics(["C2"]), q.OutcomeFilters(clinic_id="C1"), FlagRules(), catalog
    )
    assert none is not None and none.n == 0
    assert qp.packed_aggregates(traced, Scope.clinics([]), q.OutcomeFilters(), FlagRules(), catalog).n == 0


def test_packs_decline_what_they_cannot_answer(traced):
    catalog = q.measure_thresholds(traced)
    f = q.OutcomeFilters()
    # a therapist's scope is enforced on episode_summary rows, not on per-clinic packs
    assert qp.packed_aggregates(traced, Scope.therapist("T1"), f, FlagRules(), catalog) is None
    # packs built with the default rules do not answer for other drop-out rules
    other = FlagRules(no_data_days=30)
    assert qp.packed_aggregates(traced, Scope.clinic_wide(), f, other, catalog) is None
    assert qp.aggregates(traced, Scope.clinic_wide(), f, other, catalog).n == 6  # the SQL path answers
    # a clinic whose pack is missing: the episodes in scope are not all packed
    with traced.begin() as conn:
        conn.execute(outcome_pack.delete().where(outcome_pack.c.clinic_id == "C2"))
    assert qp.packed_aggregates(traced, Scope.clinic_wide(), f, FlagRules(), catalog) is None
    assert qp.aggregates(traced, Scope.clinic_wide(), f, FlagRules(), catalog).n == 6


@pytest.fixture
def loaded(engine, tmp_path) -> Engine:
    paths = generate(tmp_path / "gen", 60, seed=5, as_of=AS_OF)
    load_files(engine, list(paths.values()), as_of=AS_OF)
    return engine


def test_the_load_writes_packs_that_match_the_marts(loaded):
    with loaded.connect() as conn:
        clinics = conn.execute(select(episode_summary.c.clinic_id).distinct()).scalars().all()
        packed = conn.execute(select(outcome_pack.c.clinic_id)).scalars().all()
    assert sorted(packed) == sorted(clinics) and len(clinics) > 1
    for filters in (
        q.OutcomeFilters(),
        q.OutcomeFilters(setting="home"),
        q.OutcomeFilters(severity="moderate"),
        q.OutcomeFilters(sex="F", age_band="40-59"),
        q.OutcomeFilters(start_from=AS_OF - dt.timedelta(days=120), start_to=AS_OF - dt.timedelta(days=30)),
        q.OutcomeFilters(clinic_id=clinics[0], setting="clinic"),
    ):
        assert_same(loaded, filters)
    assert_same(loaded, q.OutcomeFilters(), Scope.clinics([clinics[-1]]))


def test_a_patient_who_changes_clinic_leaves_the_old_pack(loaded):
    with loaded.begin() as conn:
        pid, old = conn.execute(select(patients.c.patient_id, patients.c.clinic_id).limit(1)).one()
        new = conn.execute(
            select(patients.c.clinic_id).where(patients.c.clinic_id != old).limit(1)
        ).scalar_one()
        conn.execute(update(patients).where(patients.c.patient_id == pid).values(clinic_id=new))
        refresh_summaries(conn, [pid], as_of=AS_OF)
    assert_same(loaded, q.OutcomeFilters(clinic_id=old))
    assert_same(loaded, q.OutcomeFilters(clinic_id=new))
    assert_same(loaded, q.OutcomeFilters())


def assert_same_rows(engine: Engine, filters: q.OutcomeFilters, scope: Scope = Scope.clinic_wide()) -> None:
    """The comparison callback's rows and tables (OLS, benchmarks) from the packs equal the SQL row path's."""
    catalog = q.measure_thresholds(engine)
    packs = qp.load_packs(engine, scope, filters, FlagRules(), catalog)
    assert packs is not None
    names = list(q._episode_rules(filters, catalog, FlagRules(), with_patient=True).cols)
    packed = qp.packed_rows(packs, filters, names, q.MODEL_COLUMNS)
    sql = q.outcome_rows(engine, scope, filters, FlagRules(), catalog, columns=q.MODEL_COLUMNS)
    by_id = ["episode_id"]
    same(
        packed.episodes.sort_values(by_id, ignore_index=True),
        sql.episodes.sort_values(by_id, ignore_index=True),
    )
    by_type = ["episode_id", "exercise_type"]
    same(
        packed.types.sort_values(by_type, ignore_index=True),
        sql.types.sort_values(by_type, ignore_index=True),
    )
    packed.catalog = sql.catalog
    for by in ("therapist_id", "clinic_id"):
        same(q.benchmarks(packed, by), q.benchmarks(sql, by))
    same(q.adjusted_comparison(packed), q.adjusted_comparison(sql))


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal values; the packed path holds ids as categoricals (the codes it already has), SQL as strings."""

    def plain(df: pd.DataFrame) -> pd.DataFrame:
        return df.astype({c: object for c in df.columns if df[c].dtype.name in ("category", "str", "string")})

    pd.testing.assert_frame_equal(plain(got), plain(want), check_dtype=False)


@pytest.mark.parametrize(
    "filters",
    [
        q.OutcomeFilters(),
        q.OutcomeFilters(setting="home"),
        q.OutcomeFilters(clinic_id="C1", therapist_id="T2"),
    ],
    ids=lambda f: f.describe(),
)
def test_packed_rows_give_the_row_path(traced, filters):
    assert_same_rows(traced, filters)


def test_packed_rows_on_a_loaded_export(loaded):
    assert_same_rows(loaded, q.OutcomeFilters())
    assert_same_rows(loaded, q.OutcomeFilters(setting="clinic", sex="F"))
    # columns the packs do not hold: the SQL path answers
    view = qp.rows(loaded, Scope.clinic_wide(), q.OutcomeFilters(), FlagRules(), columns=None)
    assert "patient_id" in view.episodes


def test_packed_quality_counts_equal_sql(loaded):
    catalog = q.measure_thresholds(loaded)
    for filters in (q.OutcomeFilters(), q.OutcomeFilters(severity="severe"), q.OutcomeFilters(sex="M")):
        packs = qp.load_packs(loaded, Scope.clinic_wide(), filters, FlagRules(), catalog)
        got = qp.packed_quality(packs, filters)
        want = q.quality_counts(loaded, Scope.clinic_wide(), filters, catalog)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert want["patients_missing_followup"].sum() > 0


def test_benchmark_sums_equal_pandas_groupby(loaded):
    """`benchmarks` sums per group with numpy; here the same columns from `summarise` and pandas' groupby."""
    view = q.outcome_rows(loaded, Scope.clinic_wide(), q.OutcomeFilters(), FlagRules())
    df = view.episodes
    for by in ("therapist_id", "clinic_id"):
        got = q.benchmarks(view, by).set_index("group").sort_index()
        s = q.summarise(df, by, measures=("pain_leg",))
        assert list(got.index) == list(s.index)
        np.testing.assert_array_equal(got["n"], s["episodes"])
        np.testing.assert_allclose(got["observed"], s["pain_leg_mean"], rtol=1e-12)
        np.testing.assert_allclose(got["responder_rate"], s["pain_leg_itt_rate"], rtol=1e-12)
        np.testing.assert_allclose(got["responder_lo"], s["pain_leg_itt_lo"], rtol=1e-12)
        np.testing.assert_array_equal(got["responder_n"], s["pain_leg_itt_n"])
        due = df["ftp_due"].astype(bool)
        ftp_n = due.groupby(df[by], sort=True).sum()
        ftp = (df["failure_to_progress"].astype(bool) & due).groupby(df[by], sort=True).sum()
        np.testing.assert_array_equal(got["ftp_n"], ftp_n)
        np.testing.assert_allclose(got["ftp_rate"], (ftp / ftp_n.where(ftp_n > 0)).to_numpy(), rtol=1e-12)


def test_a_hand_repair_of_the_summaries_rebuilds_the_packs(loaded):
    """`sync_wide_measures` (summaries written by other means than the refresh) must not leave the packs stale: the
    episode counts do not change, so the readers' count check cannot notice."""
    from sqlalchemy import update

    from etl.summary import sync_wide_measures
    from warehouse.schema import episode_measure_summary as ems

    with loaded.begin() as conn:
        conn.execute(
            update(ems)
            .where(ems.c.measure == "pain_leg", ems.c.change.is_not(None))
            .values(change=ems.c.change - 1)
        )
        sync_wide_measures(conn)
    assert_same(loaded, q.OutcomeFilters())
    assert_same(loaded, q.OutcomeFilters(severity="severe"))
