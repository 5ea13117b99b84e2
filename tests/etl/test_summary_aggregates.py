"""The refresh's per-episode aggregates (computed in SQL) give the marts the per-row pandas path gave.

`reference_rows` is the refresh's earlier implementation, kept here as the oracle: every score and session row of
the patients read back and assigned to its episode with an as-of merge; for scores the worse side kept per
instant, then the first value in the baseline window and the latest value per episode and measure; for sessions
the home adherence overall and over the recent window, clinic visits and the activity days. The data are built to
hit the edges: several episodes per patient (closed, open, one starting a few days after the previous one ended),
scores and sessions at exactly midnight on every window, baseline and recent-window bound, both sides scored at
the same instant (worse side counts, for lower- and higher-is-better measures), facts outside every window, every
session status. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import etl.summary
from etl.load import load_file
from etl.summary import _changes_and_mcid, _episode_windows, _read, _timestamps, refresh_summaries
from tests.etl.helpers import AS_OF, PATIENTS_HEADER, SCORES_HEADER, SESSIONS_HEADER, write_csv
from warehouse.config import SummaryRules
from warehouse.schema import (
    episode_exercise_dose,
    episode_first_mcid,
    episode_measure_summary,
    episode_summary,
    episodes,
    measures,
    outcome_pack,
    scores,
    sessions,
)

MEASURES = {"pain_leg": 10, "pain_back": 10, "odi": 100, "slr_left": 90, "lumbar_flexion": 60}
EXERCISES = [
    ("bridge", "core_strengthening"),
    ("hamstring stretch", "stretching"),
    ("plank", "core_strengthening"),
]
EPISODE_COMPARED = [
    "patient_id",
    "start_date",
    "end_date",
    "is_active",
    "home_scheduled",
    "home_done",
    "home_scheduled_14d",
    "home_done_14d",
    "adherence",
    "adherence_14d",
    "visits",
    "first_activity",
    "last_activity",
]
COMPARED = [
    "patient_id",
    "n_values",
    "baseline_value",
    "baseline_at",
    "latest_value",
    "latest_at",
    "change",
    "pct_change",
    "improvement",
    "mcid_reached",
    "worsened",
]


def _episodes_of(rng: random.Random, pid: str) -> list[tuple[date, date | None]]:
    start = AS_OF - timedelta(days=rng.randint(60, 200))
    out = []
    for k in range(rng.randint(1, 3)):
        length = rng.randint(10, 50)
        end = start + timedelta(days=length)
        last = k == 2 or end >= AS_OF - timedelta(days=5) or rng.random() < 0.3
        out.append((start, None if last and rng.random() < 0.6 else min(end, AS_OF)))
        if last:
            break
        start = end + timedelta(days=rng.choice([1, 3, 6, 7, 8, 20]))  # windows that touch or overlap
    return out


def _instants(rng: random.Random, eps: list[tuple[date, date | None]], rules: SummaryRules) -> list[datetime]:
    """Random instants plus every window and baseline bound at exactly midnight, and a second before it."""
    days: list[date] = []
    for start, end in eps:
        recent_end = (
            min(end + timedelta(days=1), AS_OF + timedelta(days=1)) if end else AS_OF + timedelta(days=1)
        )
        days += [
            recent_end - timedelta(days=rules.recent_window_days),
            start - timedelta(days=rules.baseline_days_before),
            start,
            start + timedelta(days=rules.baseline_days_after + 1),
        ]
        if end is not None:
            days += [end, end + timedelta(days=1)]
    out = []
    for d in days:
        midnight = datetime(d.year, d.month, d.day)
        out += [midnight, midnight - timedelta(seconds=1)]
    first = eps[0][0] - timedelta(days=20)
    span = (AS_OF - first).days
    out += [
        datetime(first.year, first.month, first.day) + timedelta(minutes=rng.randint(0, span * 1440))
        for _ in range(25)
    ]
    return sorted({t for t in out if t.date() <= AS_OF})


def _build(tmp_path, seed: int = 11) -> tuple[list[str], SummaryRules]:
    rng = random.Random(seed)
    rules = SummaryRules()
    pat_rows, score_rows, session_rows = [], [], []
    session_keys: set[tuple] = set()
    for i in range(40):
        pid = f"P{i:03d}"
        eps = _episodes_of(rng, pid)
        for start, end in eps:
            pat_rows.append(
                [
                    pid,
                    "C1",
                    "T1",
                    1970,
                    "F",
                    start.isoformat(),
                    end.isoformat() if end else "",
                    "",
                    "left",
                    "",
                    "",
                ]
            )
        for t in _instants(rng, eps, rules):
            for code in rng.sample(sorted(MEASURES), rng.randint(1, 3)):
                top = MEASURES[code]
                sides = [""] if rng.random() < 0.6 else ["left", "right"]
                for side in sides:
                    value = round(rng.uniform(0, top), 1) if rng.random() < 0.8 else float(rng.randint(0, 2))
                    score_rows.append([pid, t.strftime("%Y-%m-%dT%H:%M:%S"), code, value, side])
            if rng.random() < 0.7:
                for setting in rng.sample(["home", "clinic"], rng.randint(1, 2)):
                    for exercise, etype in rng.sample(EXERCISES, rng.randint(1, 2)):
                        status = rng.choice(["completed", "completed", "partial", "skipped", "missed"])
                        key = (pid, t.date(), setting, exercise)
                        if key in session_keys:
                            continue
                        session_keys.add(key)
                        session_rows.append(
                            [pid, t.date().isoformat(), setting, exercise, etype, status, "", "", "", "", ""]
                        )
    write_csv(tmp_path / "patients.csv", PATIENTS_HEADER, pat_rows)
    write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, session_rows)
    write_csv(tmp_path / "scores.csv", SCORES_HEADER, score_rows)
    return sorted({r[0] for r in pat_rows}), rules


# --- the oracle: the per-row pandas implementation the SQL aggregates replaced ------------------------------------
def _assign(facts: pd.DataFrame, windows: pd.DataFrame, col: str) -> pd.DataFrame:
    left = facts.sort_values(col)
    right = windows[["patient_id", "episode_id", "window_start", "window_end", "start_date"]].sort_values(
        "window_start"
    )
    merged = pd.merge_asof(
        left, right, left_on=col, right_on="window_start", by="patient_id", direction="backward"
    )
    keep = merged["episode_id"].notna() & (merged[col] < merged["window_end"])
    out = merged[keep].copy()
    out["episode_id"] = out["episode_id"].astype("int64")
    return out


def reference_rows(conn, ids: list[str], rules: SummaryRules) -> tuple[pd.DataFrame, pd.DataFrame]:
    catalog = pd.DataFrame(
        conn.execute(
            select(measures.c.code, measures.c.better, measures.c.mcid_abs, measures.c.mcid_pct)
        ).all(),
        columns=["measure", "better", "mcid_abs", "mcid_pct"],
    )
    ep = _read(
        conn,
        select(
            episodes.c.episode_id, episodes.c.patient_id, episodes.c.start_date, episodes.c.end_date
        ).where(episodes.c.patient_id.in_(ids)),
        ["episode_id", "patient_id", "start_date", "end_date"],
    )
    ep["start_date"] = _timestamps(ep["start_date"], day=True)
    ep["end_date"] = _timestamps(ep["end_date"], day=True)
    windows = _episode_windows(ep, AS_OF, rules)
    sc = _read(
        conn,
        select(scores.c.patient_id, scores.c.measure, scores.c.recorded_at, scores.c.value).where(
            scores.c.patient_id.in_(ids)
        ),
        ["patient_id", "measure", "recorded_at", "value"],
    )
    sc["recorded_at"] = _timestamps(sc["recorded_at"])
    sc = _assign(sc, windows, "recorded_at")
    se = _read(
        conn,
        select(sessions.c.patient_id, sessions.c.session_date, sessions.c.setting, sessions.c.status).where(
            sessions.c.patient_id.in_(ids)
        ),
        ["patient_id", "session_date", "setting", "status"],
    )
    se["session_date"] = _timestamps(se["session_date"], day=True)
    se = _assign(se, windows, "session_date")
    episode_rows = _reference_episode_rows(windows, sc, se, rules)

    sc = sc.merge(catalog, on="measure", how="left")
    sc["_worse"] = np.where(sc["better"] == "higher", -sc["value"], sc["value"])
    sc = sc.sort_values("_worse").drop_duplicates(["episode_id", "measure", "recorded_at"], keep="last")
    sc = sc.sort_values(["episode_id", "measure", "recorded_at"])
    g = sc.groupby(["episode_id", "measure"], sort=False)
    latest = g.tail(1).set_index(["episode_id", "measure"])
    n_values = g.size()
    lo = sc["start_date"] - pd.Timedelta(days=rules.baseline_days_before)
    hi = sc["start_date"] + pd.Timedelta(days=rules.baseline_days_after + 1)
    in_window = sc[(sc["recorded_at"] >= lo) & (sc["recorded_at"] < hi)]
    baseline = (
        in_window.groupby(["episode_id", "measure"], sort=False).head(1).set_index(["episode_id", "measure"])
    )
    out = latest[["patient_id", "better", "mcid_abs", "mcid_pct"]].copy()
    out["n_values"] = n_values
    out["latest_value"] = latest["value"]
    out["latest_at"] = latest["recorded_at"]
    out["baseline_value"] = baseline["value"]
    out["baseline_at"] = baseline["recorded_at"]
    _changes_and_mcid(out)  # the same derivation: this reference checks what feeds it
    return out.reset_index(), episode_rows


def _reference_episode_rows(windows, sc, se, rules: SummaryRules) -> pd.DataFrame:
    out = windows.set_index("episode_id")[["patient_id", "start_date", "end_date", "window_end"]].copy()
    out["is_active"] = out["end_date"].isna()
    se = se.assign(
        _done=se["status"].map({"completed": 1.0, "partial": rules.partial_session_weight}).fillna(0.0)
    )
    home = se[se["setting"] == "home"]
    out["home_scheduled"] = home.groupby("episode_id").size()
    out["home_done"] = home.groupby("episode_id")["_done"].sum()
    recent_end = out["window_end"].clip(upper=pd.Timestamp(AS_OF) + pd.Timedelta(days=1))
    recent_start = recent_end - pd.Timedelta(days=rules.recent_window_days)
    h = home.join(recent_start.rename("_rs"), on="episode_id").join(recent_end.rename("_re"), on="episode_id")
    recent = h[(h["session_date"] >= h["_rs"]) & (h["session_date"] < h["_re"])]
    out["home_scheduled_14d"] = recent.groupby("episode_id").size()
    out["home_done_14d"] = recent.groupby("episode_id")["_done"].sum()
    for c in ("home_scheduled", "home_done", "home_scheduled_14d", "home_done_14d"):
        out[c] = out[c].fillna(0)
    out["adherence"] = (out["home_done"] / out["home_scheduled"]).where(out["home_scheduled"] > 0)
    out["adherence_14d"] = (out["home_done_14d"] / out["home_scheduled_14d"]).where(
        out["home_scheduled_14d"] > 0
    )
    clinic_days = se[(se["setting"] == "clinic") & (se["_done"] > 0)]
    out["visits"] = clinic_days.groupby("episode_id")["session_date"].nunique()
    out["visits"] = out["visits"].fillna(0).astype(int)
    active_days = pd.concat(
        [
            se.loc[se["_done"] > 0, ["episode_id", "session_date"]].rename(columns={"session_date": "d"}),
            sc[["episode_id", "recorded_at"]].rename(columns={"recorded_at": "d"}),
        ]
    )
    active_days["d"] = active_days["d"].dt.normalize()
    out["first_activity"] = active_days.groupby("episode_id")["d"].min()
    out["last_activity"] = active_days.groupby("episode_id")["d"].max()
    return out.reset_index()


def _norm(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, str) and len(v) >= 19:
        return datetime.fromisoformat(v)
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _same(got, want, what) -> None:
    g, x = _norm(got), _norm(want)
    if isinstance(x, datetime) and isinstance(g, date) and not isinstance(g, datetime):
        x = x.date()
    if isinstance(g, str) and len(g) == 10:
        g = date.fromisoformat(g)
    assert g == x, (*what, g, x)


@pytest.mark.parametrize("weight", [0.5, 0.0])
def test_sql_aggregates_match_the_per_row_reference(engine, tmp_path, weight):
    ids, _ = _build(tmp_path)
    rules = SummaryRules(partial_session_weight=weight)
    for name in ("patients.csv", "scores.csv", "sessions.csv"):
        r = load_file(engine, tmp_path / name, as_of=AS_OF)
        assert r.status == "loaded", (r.status, r.message)
    with engine.begin() as conn:
        refresh_summaries(conn, ids, as_of=AS_OF, rules=rules)
        expected, expected_episodes = reference_rows(conn, ids, rules)
        es, ems = episode_summary, episode_measure_summary
        got = conn.execute(select(ems).order_by(ems.c.episode_id, ems.c.measure)).all()
        got_episodes = conn.execute(select(es).order_by(es.c.episode_id)).all()
    assert len(got_episodes) > 60 and len(expected) > 300  # several episodes per patient
    assert expected["baseline_value"].notna().sum() > 100 and expected["change"].notna().sum() > 100
    assert (expected_episodes["home_scheduled_14d"] > 0).sum() > 10 and (
        expected_episodes["visits"] > 0
    ).sum() > 10

    expected = expected.sort_values(["episode_id", "measure"]).reset_index(drop=True)
    assert [(r.episode_id, r.measure) for r in got] == list(
        zip(expected["episode_id"], expected["measure"], strict=True)
    )
    for r, (_, e) in zip(got, expected.iterrows(), strict=True):
        for col in COMPARED:
            _same(getattr(r, col), e[col], (r.episode_id, r.measure, col))

    expected_episodes = expected_episodes.sort_values("episode_id").reset_index(drop=True)
    assert [r.episode_id for r in got_episodes] == expected_episodes["episode_id"].tolist()
    for r, (_, e) in zip(got_episodes, expected_episodes.iterrows(), strict=True):
        for col in EPISODE_COMPARED:
            _same(getattr(r, col), e[col], (r.episode_id, col))


def _marts(conn) -> dict[str, list]:
    out = {}
    for t in (episode_summary, episode_measure_summary, episode_exercise_dose, episode_first_mcid):
        cols = [c for c in t.columns if c.name != "refreshed_at"]
        out[t.name] = conn.execute(select(*cols).order_by(*t.primary_key.columns)).all()
    p = outcome_pack.c
    out["packs"] = conn.execute(
        select(p.clinic_id, p.n_episodes, p.names, p.episodes, p.types).order_by(p.clinic_id)
    ).all()
    return out


def test_blocks_and_patient_order_do_not_change_the_marts(engine, tmp_path, monkeypatch):
    """The refresh selects each block's patients through its temporary table: several blocks (and the ids in
    another order, one twice) give the marts of one block."""
    ids, rules = _build(tmp_path)
    for name in ("patients.csv", "scores.csv", "sessions.csv"):
        assert load_file(engine, tmp_path / name, as_of=AS_OF).status == "loaded"
    with engine.begin() as conn:
        assert refresh_summaries(conn, ids, as_of=AS_OF, rules=rules) > 60
        whole = _marts(conn)
        assert all(whole[name] for name in whole)
        monkeypatch.setattr(etl.summary, "BLOCK_PATIENTS", 7)
        assert refresh_summaries(conn, [*ids[::-1], ids[0]], as_of=AS_OF, rules=rules) == len(
            whole["episode_summary"]
        )
        assert _marts(conn) == whole
