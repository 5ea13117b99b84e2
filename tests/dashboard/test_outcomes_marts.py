"""The outcomes marts written by the ETL's summary refresh, against a direct pandas computation from the facts.

A generated clinic export (messy rows included) is loaded with the real loader on SQLite and PostgreSQL; then
`episode_exercise_dose` must equal the page's dose rule applied in pandas to `sessions` and `episodes`, and
`episode_first_mcid` the first leg-pain value reaching the MCID, computed in pandas from `scores`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from etl.generate import generate
from etl.load import load_files
from etl.summary import refresh_all
from tests.etl.helpers import AS_OF
from warehouse.schema import (
    episode_exercise_dose,
    episode_first_mcid,
    episode_measure_summary,
    episodes,
    measures,
    scores,
    sessions,
)

PARTIAL = 0.5
SHARE_EPS = 1e-9


def _frame(engine: Engine, table) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(select(table))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.astype(str), format="ISO8601")


@pytest.fixture
def loaded(engine, tmp_path) -> Engine:
    paths = generate(tmp_path / "gen", 40, seed=11, as_of=AS_OF)
    load_files(engine, list(paths.values()), as_of=AS_OF)
    return engine


def expected_dose(engine: Engine) -> pd.DataFrame:
    """The page's rule, in pandas from the facts: sessions dated from the episode start to its end (or open),
    completed and partial only; done = 1 / 0.5; minutes = duration, else prescribed x weight, else 0."""
    se = _frame(engine, sessions)
    ep = _frame(engine, episodes)[["episode_id", "patient_id", "start_date", "end_date"]]
    se = se[se["status"].isin(["completed", "partial"])].merge(ep, on="patient_id")
    day, start, end = _dates(se["session_date"]), _dates(se["start_date"]), _dates(se["end_date"])
    se = se[(day >= start) & (end.isna() | (day <= end))].copy()
    weight = np.where(se["status"] == "partial", PARTIAL, 1.0)
    se["done"] = weight
    se["minutes"] = (
        se["duration_min"].astype(float).fillna(se["prescribed_min"].astype(float) * weight).fillna(0.0)
    )
    by_setting = se.groupby(["episode_id", "patient_id", "setting", "exercise_type"], as_index=False)[
        ["done", "minutes"]
    ].sum()
    both = by_setting.groupby(["episode_id", "patient_id", "exercise_type"], as_index=False)[
        ["done", "minutes"]
    ].sum()
    out = pd.concat([by_setting, both.assign(setting="all")], ignore_index=True)
    rows = []
    for _, g in out.groupby(["episode_id", "setting"]):
        g = g.copy()
        if g["minutes"].sum() > 0:
            g["share"] = g["minutes"] / g["minutes"].sum()
        elif g["done"].sum() > 0:
            g["share"] = g["done"] / g["done"].sum()
        else:
            g["share"] = 0.0
        rows.append(g)
    return pd.concat(rows, ignore_index=True)


def expected_first_mcid(engine: Engine) -> pd.DataFrame:
    """First leg-pain value at or after the start whose drop from the baseline reaches 2 points or 30 %, for the
    episodes whose summary reached the MCID."""
    cat = _frame(engine, measures).set_index("code").loc["pain_leg"]
    ems = _frame(engine, episode_measure_summary)
    ems = ems[(ems["measure"] == "pain_leg") & (ems["mcid_reached"] == True)]  # noqa: E712 (0/1 on SQLite)
    ep = _frame(engine, episodes)[["episode_id", "start_date"]]
    sc = _frame(engine, scores)
    sc = sc[sc["measure"] == "pain_leg"]
    m = (
        ems[["episode_id", "patient_id", "baseline_value"]]
        .merge(ep, on="episode_id")
        .merge(sc, on="patient_id")
    )
    m["at"], m["start"] = _dates(m["recorded_at"]), _dates(m["start_date"])
    drop = m["baseline_value"] - m["value"]
    reached = (drop >= cat["mcid_abs"] - 1e-9) | (
        (m["baseline_value"] > 0) & (drop * 100 >= m["baseline_value"] * (cat["mcid_pct"] - 1e-9))
    )
    m = m[(m["at"] >= m["start"]) & reached]
    first = m.groupby("episode_id").agg(first=("at", "min"), start=("start", "first"))
    first["days_to_mcid"] = (first["first"].dt.normalize() - first["start"]).dt.days
    return first.reset_index()


def test_dose_mart_equals_pandas_from_sessions(loaded):
    got = _frame(loaded, episode_exercise_dose)
    want = expected_dose(loaded)
    assert len(got) > 100 and set(got["setting"]) == {"home", "clinic", "all"}
    key = ["episode_id", "setting", "exercise_type"]
    got = got.sort_values(key, ignore_index=True)
    want = want.sort_values(key, ignore_index=True)
    assert got[key].astype(str).equals(want[key].astype(str))
    assert (got["patient_id"] == want["patient_id"]).all()
    for c in ("done", "minutes", "share"):
        np.testing.assert_allclose(
            got[c].astype(float), want[c].astype(float), rtol=1e-9, atol=1e-9, err_msg=c
        )
    # the shares of one episode and setting add up to 1 (or 0 when nothing was done)
    sums = got.groupby(["episode_id", "setting"])["share"].sum()
    assert ((sums - 1).abs() < 1e-9).all()


def test_first_mcid_mart_equals_pandas_from_scores(loaded):
    got = _frame(loaded, episode_first_mcid).sort_values("episode_id", ignore_index=True)
    want = expected_first_mcid(loaded).sort_values("episode_id", ignore_index=True)
    assert len(want) > 5
    assert got["episode_id"].tolist() == want["episode_id"].tolist()
    assert set(got["measure"]) == {"pain_leg"}
    assert got["days_to_mcid"].astype(int).tolist() == want["days_to_mcid"].astype(int).tolist()
    assert (_dates(got["first_mcid_at"]) == want["first"]).all()


def test_refresh_rewrites_the_marts_idempotently(loaded):
    before = _frame(loaded, episode_exercise_dose).sort_values(["episode_id", "setting", "exercise_type"])
    with loaded.begin() as conn:
        refresh_all(conn, as_of=AS_OF)
    after = _frame(loaded, episode_exercise_dose).sort_values(["episode_id", "setting", "exercise_type"])
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    assert len(_frame(loaded, episode_first_mcid)) == len(expected_first_mcid(loaded))
