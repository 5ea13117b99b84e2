"""Flag rules at their threshold edges, in Python and in SQL (the two must agree)."""

import datetime as dt

import pytest
from sqlalchemy import Boolean, Date, Float, Integer, case, literal, select

from dashboard import flags as fl

R = fl.FlagRules()
AS_OF = dt.date(2024, 3, 31)


def _sql(engine, expr) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(case((expr, 1), else_=0))).scalar_one())


def _f(v):
    return literal(v, Float)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pain_leg": 2.0}, True),  # exactly the MCID
        ({"pain_leg": 1.99}, False),
        ({"pain_leg": 5.74 - 3.74}, True),  # float noise at the edge still counts
        ({"numbness": 2.0}, True),
        ({"numbness": -3.0}, False),  # better, not worse
        ({"slr_left": -6.0}, True),
        ({"slr_right": -5.9}, False),
        ({"slr_right": 10.0}, False),
        ({"pain_leg": None, "numbness": None}, False),
        ({}, False),
    ],
)
def test_worsening(sqlite_warehouse, changes, expected):
    assert fl.is_worsening(changes, R) is expected
    cols = {code: _f(changes.get(code)) for code, _ in R.worsening}
    assert _sql(sqlite_warehouse, fl.worsening_sql(cols, R)) is expected


@pytest.mark.parametrize(
    ("days", "visits", "reached", "expected"),
    [
        (41, 7, {}, False),  # not due yet
        (42, 0, {}, True),  # 6 weeks
        (0, 8, {}, True),  # 8 visits
        (42, 0, {"pain_leg": True}, False),
        (42, 0, {"odi": True}, False),
        (42, 0, {"pain_leg": False, "odi": None}, True),
        (42, 0, {"numbness": True}, True),  # not a response measure
    ],
)
def test_not_responding(sqlite_warehouse, days, visits, reached, expected):
    assert fl.is_not_responding(days, visits, reached, R) is expected
    start = AS_OF - dt.timedelta(days=days)
    cols = {c: literal(reached.get(c), Boolean) for c in R.response_measures}
    expr = fl.not_responding_sql(
        literal(start, Date), literal(AS_OF, Date), literal(visits, Integer), cols, R
    )
    assert _sql(sqlite_warehouse, expr) is expected


@pytest.mark.parametrize(
    ("adherence", "expected"),
    [(0.6, False), (3 / 5, False), (0.5999, True), (0.0, True), (None, False), (1.0, False)],
)
def test_low_adherence(sqlite_warehouse, adherence, expected):
    assert fl.is_low_adherence(adherence, R) is expected
    assert _sql(sqlite_warehouse, fl.low_adherence_sql(_f(adherence), R)) is expected


@pytest.mark.parametrize(
    ("last_days_ago", "start_days_ago", "expected"),
    [(13, 40, False), (14, 40, True), (None, 13, False), (None, 14, True), (0, 100, False)],
)
def test_no_recent_data(sqlite_warehouse, last_days_ago, start_days_ago, expected):
    last = None if last_days_ago is None else AS_OF - dt.timedelta(days=last_days_ago)
    start = AS_OF - dt.timedelta(days=start_days_ago)
    assert fl.is_no_recent_data(last, start, AS_OF, R) is expected
    expr = fl.no_recent_data_sql(literal(last, Date), literal(start, Date), literal(AS_OF, Date), R)
    assert _sql(sqlite_warehouse, expr) is expected


@pytest.mark.parametrize(
    ("baselines", "expected"),
    [
        ({"pain_leg": 7.0, "odi": 40.0}, False),
        ({"pain_leg": 0.0, "odi": 0.0}, False),
        ({"pain_leg": 7.0}, True),
        ({}, True),
    ],
)
def test_missing_baseline(sqlite_warehouse, baselines, expected):
    assert fl.is_missing_baseline(baselines, R) is expected
    cols = {c: _f(baselines.get(c)) for c in R.baseline_measures}
    assert _sql(sqlite_warehouse, fl.missing_baseline_sql(cols, R)) is expected


def test_thresholds_are_parameters():
    strict = fl.FlagRules(
        low_adherence=0.8, no_data_days=7, not_responding_weeks=4, worsening=(("pain_leg", 1.0),)
    )
    assert fl.is_low_adherence(0.7, strict)
    assert fl.is_no_recent_data(AS_OF - dt.timedelta(days=7), AS_OF - dt.timedelta(days=30), AS_OF, strict)
    assert fl.is_not_responding(28, 0, {}, strict)
    assert fl.is_worsening({"pain_leg": 1.0}, strict)
    assert not fl.is_worsening({"numbness": 5.0}, strict)


def test_rules_from_catalog_sign_by_better_direction():
    catalog = [
        {"code": "pain_leg", "better": "lower", "mcid_abs": 3.0},
        {"code": "numbness", "better": "lower", "mcid_abs": None},
        {"code": "slr_left", "better": "higher", "mcid_abs": 8.0},
    ]
    rules = fl.FlagRules.from_catalog(catalog, low_adherence=0.5)
    assert dict(rules.worsening) == {"pain_leg": 3.0, "numbness": 2.0, "slr_left": -8.0, "slr_right": -6.0}
    assert rules.low_adherence == 0.5
    assert set(rules.measures) >= {"pain_leg", "numbness", "slr_left", "slr_right", "odi"}


def test_flags_for_orders_flags():
    raised = fl.flags_for(
        changes={"pain_leg": 3.0},
        mcid_reached={},
        baselines={"pain_leg": 4.0},
        days_in_episode=50,
        visits=2,
        adherence_14d=0.2,
        last_activity=AS_OF - dt.timedelta(days=20),
        start_date=AS_OF - dt.timedelta(days=50),
        as_of=AS_OF,
        rules=R,
    )
    assert raised == list(fl.FLAGS)


# --- the flags the ETL stores on episode_summary follow the same rules -----------------------------------------
def _rule_vs_stored(engine, rules: fl.FlagRules) -> tuple[dict, dict]:
    """Per episode: the flags the Python rule raises (none for a discharged episode), and the stored columns."""
    from warehouse.schema import episode_measure_summary, episode_summary

    with engine.connect() as conn:
        episodes = conn.execute(select(episode_summary)).mappings().all()
        by_episode: dict[int, dict] = {}
        for m in conn.execute(select(episode_measure_summary)).mappings():
            by_episode.setdefault(m["episode_id"], {})[m["measure"]] = m
    expected, stored = {}, {}
    for ep in episodes:
        ms = by_episode.get(ep["episode_id"], {})
        raised = fl.flags_for(
            changes={k: v["change"] for k, v in ms.items()},
            mcid_reached={k: v["mcid_reached"] for k, v in ms.items()},
            baselines={k: v["baseline_value"] for k, v in ms.items()},
            days_in_episode=(ep["as_of"] - ep["start_date"]).days,
            visits=ep["visits"],
            adherence_14d=ep["adherence_14d"],
            last_activity=ep["last_activity"],
            start_date=ep["start_date"],
            as_of=ep["as_of"],
            rules=rules,
        )
        expected[ep["episode_id"]] = (
            raised if ep["is_active"] else [],
            len(raised) if ep["is_active"] else 0,
        )
        stored[ep["episode_id"]] = ([f for f in fl.FLAGS if ep[f"flag_{f}"] == 1], ep["n_flags"])
    return expected, stored


def test_stored_flag_columns_are_the_flag_names():
    from warehouse.schema import CASELOAD_FLAGS

    assert fl.FLAGS == CASELOAD_FLAGS
    assert tuple(f"flag_{f}" for f in CASELOAD_FLAGS) == fl.STORED_COLUMNS


def test_refresh_stores_the_flags_the_rule_raises(engine, tmp_path):
    """A generated warehouse loaded through the ETL (refresh in pandas), then recomputed in SQL: both match."""
    from etl.generate import generate
    from etl.load import load_files
    from etl.summary import sync_wide_measures

    paths = generate(tmp_path / "gen", 150, seed=11, as_of=AS_OF)
    load_files(engine, list(paths.values()), as_of=AS_OF)
    rules = fl.FlagRules.from_catalog(_catalog(engine))
    expected, stored = _rule_vs_stored(engine, rules)
    assert stored == expected
    raised = [f for flags, _ in expected.values() for f in flags]
    # The generator always measures a baseline; the fixture warehouse below covers missing_baseline.
    assert len(expected) >= 150
    assert all(f in raised for f in fl.FLAGS if f != fl.MISSING_BASELINE), {
        f: raised.count(f) for f in fl.FLAGS
    }

    with engine.begin() as conn:  # the SQL form writes the same columns
        conn.execute(episode_summary_table().update().values(n_flags=0, flag_worsening=0))
        sync_wide_measures(conn)
    assert _rule_vs_stored(engine, rules)[1] == expected


def test_sync_wide_measures_stores_the_flags_of_the_fixture_warehouse(warehouse):
    expected, stored = _rule_vs_stored(warehouse, fl.FlagRules.from_catalog(_catalog(warehouse)))
    assert stored == expected
    assert any(flags for flags, _ in expected.values())


def _catalog(engine) -> list[dict]:
    from dashboard.queries.catalog import measures_catalog

    return measures_catalog(engine).to_dict("records")


def episode_summary_table():
    from warehouse.schema import episode_summary

    return episode_summary


def test_rules_from_a_catalog_frame_treat_nan_as_no_threshold():
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"code": "numbness", "better": "lower", "mcid_abs": None},
            {"code": "odi", "better": "lower", "mcid_abs": 10.0},
        ]
    )
    assert dict(fl.FlagRules.from_catalog(frame.to_dict("records")).worsening)["numbness"] == 2.0
