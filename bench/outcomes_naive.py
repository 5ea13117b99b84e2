"""The naive baseline of `python -m bench.outcomes`: what the outcomes page would do without marts or SQL grouping.

Every call reads the whole tables it needs with `pandas.read_sql` (episode_summary, patients, episodes, sessions,
scores; only the columns used, but every row), applies the page's rules in pandas (the code the page used before the
marts, kept here as the reference), filters in memory and builds the same tables with the DataFrame functions of
`dashboard.queries.outcomes`. Figures are not built (that only flatters the baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from dashboard.flags import FlagRules
from dashboard.queries import outcomes as q
from dashboard.queries.outcomes import (
    AGE_BANDS,
    EPS,
    MEASURES,
    RESPONDER_MEASURES,
    SEVERITY_BANDS,
    TYPE_SHARE,
    OutcomeFilters,
    OutcomeView,
)
from warehouse.schema import episode_summary, episodes, patients, scores, sessions

PARTIAL_WEIGHT = 0.5


def _ts(s: pd.Series) -> pd.Series:
    """Dates or timestamps from either driver (ISO text on SQLite, objects on PostgreSQL) as datetime64."""
    return pd.to_datetime(s, format="ISO8601") if len(s) else pd.to_datetime(s)


def read_tables(engine: Engine) -> dict[str, pd.DataFrame]:
    """Whole tables (the page's columns, every row)."""
    s, sc = sessions, scores
    with engine.connect() as conn:
        return {
            "episode_summary": pd.read_sql(select(episode_summary), conn),
            "patients": pd.read_sql(
                select(patients.c.patient_id, patients.c.birth_year, patients.c.sex), conn
            ),
            "episodes": pd.read_sql(
                select(episodes.c.episode_id, episodes.c.side, episodes.c.symptom_onset), conn
            ),
            "sessions": pd.read_sql(
                select(
                    s.c.patient_id,
                    s.c.session_date,
                    s.c.setting,
                    s.c.exercise_type,
                    s.c.status,
                    s.c.duration_min,
                    s.c.prescribed_min,
                ),
                conn,
            ),
            "scores": pd.read_sql(select(sc.c.patient_id, sc.c.measure, sc.c.recorded_at, sc.c.value), conn),
        }


def episode_types(dose: pd.DataFrame, setting: str | None = None, share: float = TYPE_SHARE) -> pd.DataFrame:
    """The exercise types each episode counts for: share of minutes (or of done sessions when no minutes were
    logged) >= `share`, within `setting` (None: home and clinic together)."""
    cols = ["episode_id", "exercise_type", "share", "minutes"]
    d = dose if setting is None else dose[dose["setting"] == setting]
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby(["episode_id", "exercise_type"], as_index=False)[["done", "minutes"]].sum()
    tot = g.groupby("episode_id")[["done", "minutes"]].transform("sum")
    by_minutes = tot["minutes"] > 0
    g["share"] = np.where(by_minutes, g["minutes"] / tot["minutes"].where(by_minutes, 1), 0.0)
    by_done = ~by_minutes & (tot["done"] > 0)
    g.loc[by_done, "share"] = g.loc[by_done, "done"] / tot.loc[by_done, "done"]
    return g.loc[g["share"] >= share - EPS, cols].reset_index(drop=True)


def prepare_episodes(
    raw: pd.DataFrame, catalog: pd.DataFrame, rules: FlagRules = FlagRules()
) -> pd.DataFrame:
    """Derived columns the page needs, computed once per cache fill."""
    df = raw.copy()
    for c in ("start_date", "end_date", "as_of", "first_activity", "last_activity", "symptom_onset"):
        df[c] = _ts(df[c])
    for c in df.columns:
        if c.endswith(("_baseline", "_change")) or c in (
            "adherence",
            "birth_year",
            "visits",
            "home_scheduled",
        ):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in [c for c in df.columns if c.endswith("_mcid")]:
        df[c] = df[c].map({True: 1.0, False: 0.0}).astype(float)  # 1 and 0 hash as True and False
    df["age"] = df["start_date"].dt.year - df["birth_year"]
    df["age_band"] = _band(df["age"], AGE_BANDS)
    df["symptom_weeks"] = (df["start_date"] - df["symptom_onset"]).dt.days / 7.0
    df["severity"] = _band(df["pain_leg_baseline"], SEVERITY_BANDS)
    df["start_month"] = df["start_date"].dt.to_period("M").dt.to_timestamp()
    # the affected side's straight-leg raise: the episode's side, else the side with the lower (worse) baseline
    left_worse = df["slr_left_baseline"].fillna(np.inf) <= df["slr_right_baseline"].fillna(np.inf)
    use_left = np.where(df["side"] == "left", True, np.where(df["side"] == "right", False, left_worse))
    for part in ("baseline", "change", "mcid"):
        df[f"slr_{part}"] = np.where(use_left, df[f"slr_left_{part}"], df[f"slr_right_{part}"])
    df["completed"] = df["end_date"].notna()
    end = df["end_date"].fillna(df["as_of"])
    df["weeks_observed"] = (end - df["start_date"]).dt.days / 7.0
    since = df["last_activity"].fillna(df["start_date"])
    df["dropped_out"] = ~df["completed"] & ((df["as_of"] - since).dt.days >= rules.no_data_days)
    df["dropout_week"] = np.where(df["dropped_out"], (since - df["start_date"]).dt.days // 7 + 1, np.nan)
    due = (df["weeks_observed"] >= rules.not_responding_weeks) | (df["visits"] >= rules.not_responding_visits)
    any_mcid = pd.concat([df[f"{m}_mcid"] == 1 for m in rules.response_measures if f"{m}_mcid" in df], axis=1)
    df["ftp_due"] = due
    df["failure_to_progress"] = due & ~any_mcid.any(axis=1)
    thr = catalog.set_index("code")
    for m in MEASURES:
        code = "slr_left" if m == "slr" else m
        if code not in thr.index:
            df[f"{m}_ceiling"] = False
            continue
        row = thr.loc[code]
        base = df[f"{m}_baseline"]
        if pd.isna(row["mcid_abs"]):
            df[f"{m}_ceiling"] = False
        elif row["better"] == "lower":  # cannot improve by the MCID: already below it
            df[f"{m}_ceiling"] = base < float(row["mcid_abs"]) - EPS
        else:
            df[f"{m}_ceiling"] = base > float(row["max_value"]) - float(row["mcid_abs"]) + EPS
    _responder_columns(df)
    return df


def _band(values: pd.Series, bands: dict[str, tuple[float, float]]) -> pd.Series:
    out = pd.Series(None, index=values.index, dtype=object)
    for name, (lo, hi) in bands.items():
        out[(values >= lo) & (values < hi)] = name
    return out


def apply_filters(df: pd.DataFrame, f: OutcomeFilters) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    if f.clinic_id:
        mask &= df["clinic_id"] == f.clinic_id
    if f.therapist_id:
        mask &= df["therapist_id"] == f.therapist_id
    if f.start_from:
        mask &= df["start_date"] >= pd.Timestamp(f.start_from)
    if f.start_to:
        mask &= df["start_date"] <= pd.Timestamp(f.start_to)
    if f.severity:
        mask &= df["severity"] == f.severity
    if f.age_band:
        mask &= df["age_band"] == f.age_band
    if f.sex:
        mask &= df["sex"] == f.sex
    return df[mask]


def _responder_columns(df: pd.DataFrame) -> None:
    """0/1 columns per responder measure whose group sums are the numerators and denominators of `responders`."""
    for m in RESPONDER_MEASURES:
        has_base = df[f"{m}_baseline"].notna()
        eligible = has_base & ~df[f"{m}_ceiling"]
        reached = df[f"{m}_mcid"] == 1
        comp = eligible & df["completed"] & df[f"{m}_change"].notna()
        df[f"{m}_itt_n"] = eligible
        df[f"{m}_itt_k"] = eligible & reached
        df[f"{m}_comp_n"] = comp
        df[f"{m}_comp_k"] = comp & reached
        df[f"{m}_ceiling_n"] = has_base & df[f"{m}_ceiling"]
    for c in [
        f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")
    ]:
        df[c] = df[c].astype("int8")


def naive_view(engine: Engine, filters: OutcomeFilters, rules: FlagRules = FlagRules()) -> OutcomeView:
    """Read everything, apply the rules and the filters in pandas: the episodes and types of the filtered view."""
    t = read_tables(engine)
    catalog = q.measure_thresholds(engine)
    es = t["episode_summary"]
    raw = es.merge(t["patients"], on="patient_id").merge(t["episodes"], on="episode_id")
    eps = prepare_episodes(raw, catalog, rules)
    # weeks to MCID: the first leg-pain value at or after the start reaching the MCID, for the mart's responders
    thr = catalog.set_index("code").loc[q.PRIMARY]
    sc = t["scores"]
    sc = sc[sc["measure"] == q.PRIMARY]
    resp = eps.loc[
        eps[f"{q.PRIMARY}_mcid"] == 1, ["episode_id", "patient_id", "start_date", "pain_leg_baseline"]
    ]
    m = resp.merge(sc, on="patient_id")
    m["recorded_at"] = _ts(m["recorded_at"])
    drop = m["pain_leg_baseline"] - m["value"]
    reached = (drop >= float(thr["mcid_abs"]) - EPS) | (
        (m["pain_leg_baseline"] > 0) & (drop * 100 >= m["pain_leg_baseline"] * (float(thr["mcid_pct"]) - EPS))
    )
    m = m[(m["recorded_at"] >= m["start_date"]) & reached]
    first = m.groupby("episode_id")["recorded_at"].min().rename("first_mcid_at")
    eps = eps.merge(first, left_on="episode_id", right_index=True, how="left")
    eps["weeks_to_mcid"] = (eps["first_mcid_at"].dt.normalize() - eps["start_date"]).dt.days / 7.0
    # dose per episode, type and setting from the sessions
    se = t["sessions"]
    se = se[se["status"].isin(["completed", "partial"])].merge(
        eps[["episode_id", "patient_id", "start_date", "end_date"]], on="patient_id"
    )
    day = _ts(se["session_date"])
    se = se[(day >= se["start_date"]) & (se["end_date"].isna() | (day <= se["end_date"]))]
    weight = np.where(se["status"] == "partial", PARTIAL_WEIGHT, 1.0)
    se = se.assign(done=weight, minutes=se["duration_min"].fillna(se["prescribed_min"] * weight).fillna(0.0))
    dose = se.groupby(["episode_id", "exercise_type", "setting"], as_index=False)[["done", "minutes"]].sum()
    filtered = apply_filters(eps, filters)
    types = episode_types(dose, filters.setting)
    types = types[types["episode_id"].isin(filtered["episode_id"])]
    return OutcomeView(filtered, types, catalog, filters)


def naive_tables(engine: Engine, filters: OutcomeFilters) -> dict[str, pd.DataFrame]:
    """The filter-change callback's tables, the naive way."""
    view = naive_view(engine, filters)
    return {
        "type_summary": q.type_summary(view),
        "dose_response": q.dose_response(view),
        "dose_by_type": q.dose_by_type(view),
        "monthly_trend": q.monthly_trend(view),
        "missing_data": q.missing_data(view),
        "dropout_by_week": q.dropout_by_week(view),
        "scatter": q.scatter_points(view),
    }


__all__ = ["naive_tables", "naive_view", "read_tables"]
