"""Marts: the per-episode summaries the caseload and cohort pages read instead of the raw facts.

Refreshed for the patients a load touched, in blocks, inside the load's transaction: the dashboard never sees facts
without their summary. Clinical rules (baseline window, partial sessions, windows) come from SummaryRules.
Where a measure is scored on both sides at the same time, the worse side counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from etl.bulk import bulk_insert
from etl.summary_dose import refresh_outcome_marts
from etl.summary_flags import add_caseload_flags, rules_from_catalog, sync_caseload_flags
from warehouse.config import SummaryRules
from warehouse.outcome_pack import clinics_of, rebuild_packs
from warehouse.schema import (
    CASELOAD_FLAGS,
    WIDE_FIELDS,
    WIDE_MEASURES,
    episode_measure_summary,
    episode_summary,
    episodes,
    measures,
    patients,
    scores,
    sessions,
)

BLOCK_PATIENTS = 500


def _timestamps(s: pd.Series, *, day: bool = False) -> pd.Series:
    """Driver values to pandas timestamps: ISO text on SQLite, date/datetime objects on PostgreSQL."""
    out = (pd.to_datetime(s, format="ISO8601") if len(s) else pd.to_datetime(s)).astype("datetime64[us]")
    return out.dt.normalize() if day else out


def refresh_summaries(
    conn: Connection,
    patient_ids: Sequence[str],
    *,
    as_of: date | None = None,
    rules: SummaryRules | None = None,
) -> int:
    """Recompute both marts for these patients; returns the number of episodes written."""
    as_of = as_of or date.today()
    rules = rules or SummaryRules()
    catalog = pd.DataFrame(
        conn.execute(
            select(measures.c.code, measures.c.better, measures.c.mcid_abs, measures.c.mcid_pct)
        ).all(),
        columns=["measure", "better", "mcid_abs", "mcid_pct"],
    )
    touched = clinics_of(conn, patient_ids)  # outcome packs: the clinics these patients leave...
    written = 0
    for i in range(0, len(patient_ids), BLOCK_PATIENTS):
        block = list(patient_ids[i : i + BLOCK_PATIENTS])
        written += _refresh_block(conn, block, as_of, rules, catalog)
    touched |= clinics_of(conn, patient_ids)  # ...and the ones they are in now (warehouse/outcome_pack.py)
    rebuild_packs(conn, touched, rules_from_catalog(catalog))
    return written


def refresh_all(conn: Connection, *, as_of: date | None = None, rules: SummaryRules | None = None) -> int:
    ids = conn.execute(select(patients.c.patient_id).order_by(patients.c.patient_id)).scalars().all()
    return refresh_summaries(conn, ids, as_of=as_of, rules=rules)


def _read(conn: Connection, query, columns: list[str]) -> pd.DataFrame:
    """Rows straight from the driver cursor: SQLAlchemy's Row objects cost more than the query for these reads.

    The statement is still SQLAlchemy Core with bound parameters; only the result bypasses the Row layer.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame.from_records(rows, columns=columns)


def _refresh_block(
    conn: Connection, block: list[str], as_of: date, rules: SummaryRules, catalog: pd.DataFrame
) -> int:
    ep = _read(
        conn,
        select(
            episodes.c.episode_id,
            episodes.c.patient_id,
            episodes.c.start_date,
            episodes.c.end_date,
            patients.c.clinic_id,
            patients.c.therapist_id,
        )
        .join(patients, patients.c.patient_id == episodes.c.patient_id)
        .where(episodes.c.patient_id.in_(block)),
        ["episode_id", "patient_id", "start_date", "end_date", "clinic_id", "therapist_id"],
    )
    ep_ids = ep["episode_id"].tolist()
    conn.execute(episode_measure_summary.delete().where(episode_measure_summary.c.patient_id.in_(block)))
    conn.execute(episode_summary.delete().where(episode_summary.c.patient_id.in_(block)))
    if ep.empty:
        return 0
    del ep_ids
    ep["start_date"] = _timestamps(ep["start_date"], day=True)
    ep["end_date"] = _timestamps(ep["end_date"], day=True)
    windows = _episode_windows(ep, as_of, rules)

    sc = _read(
        conn,
        select(scores.c.patient_id, scores.c.measure, scores.c.recorded_at, scores.c.value).where(
            scores.c.patient_id.in_(block)
        ),
        ["patient_id", "measure", "recorded_at", "value"],
    )
    sc["recorded_at"] = _timestamps(sc["recorded_at"])
    se = _read(
        conn,
        select(sessions.c.patient_id, sessions.c.session_date, sessions.c.setting, sessions.c.status).where(
            sessions.c.patient_id.in_(block)
        ),
        ["patient_id", "session_date", "setting", "status"],
    )
    se["session_date"] = _timestamps(se["session_date"], day=True)

    sc = _assign(sc, windows, "recorded_at")
    se = _assign(se, windows, "session_date")
    measure_rows = _measure_summary(sc, windows, catalog, rules)
    episode_rows = _with_wide_measures(_episode_summary(ep, windows, sc, se, as_of, rules), measure_rows)
    episode_rows = add_caseload_flags(episode_rows, measure_rows, rules_from_catalog(catalog))
    bulk_insert(conn, episode_summary, episode_rows)
    bulk_insert(conn, episode_measure_summary, measure_rows)
    refresh_outcome_marts(conn, block, rules)  # outcomes page marts (etl/summary_dose.py)
    return len(episode_rows)


def _episode_windows(ep: pd.DataFrame, as_of: date, rules: SummaryRules) -> pd.DataFrame:
    """Which dates belong to which episode: from a few days before its start until its end, or until shortly
    before the patient's next episode, or as_of."""
    w = ep.sort_values(["patient_id", "start_date"]).copy()
    before = pd.Timedelta(days=rules.baseline_days_before)
    w["window_start"] = w["start_date"] - before
    next_start = w.groupby("patient_id")["start_date"].shift(-1)
    end = pd.Series(pd.Timestamp(as_of) + pd.Timedelta(days=1), index=w.index)  # exclusive
    end = end.where(w["end_date"].isna(), w["end_date"] + pd.Timedelta(days=1))
    end = end.where(next_start.isna() | (next_start - before > end), next_start - before)
    w["window_end"] = end
    return w


def _assign(facts: pd.DataFrame, windows: pd.DataFrame, col: str) -> pd.DataFrame:
    if facts.empty:
        facts["episode_id"] = pd.Series(dtype="int64")
        return facts
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


def _measure_summary(
    sc: pd.DataFrame, windows: pd.DataFrame, catalog: pd.DataFrame, rules: SummaryRules
) -> pd.DataFrame:
    cols = [c.name for c in episode_measure_summary.columns]
    if sc.empty:
        return pd.DataFrame(columns=cols)
    sc = sc.merge(catalog, on="measure", how="left")
    # Worse side counts when one measure is scored on both sides at the same moment.
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
    has_follow_up = out["latest_at"] > out["baseline_at"]
    out["change"] = (out["latest_value"] - out["baseline_value"]).where(has_follow_up)
    base = out["baseline_value"]
    out["pct_change"] = (out["change"] / base * 100).where(base.abs() > 0)
    sign = np.where(out["better"] == "lower", -1.0, 1.0)
    out["improvement"] = out["change"] * sign
    pct_improvement = (out["improvement"] / base * 100).where(base.abs() > 0)
    has_threshold = out["mcid_abs"].notna() | out["mcid_pct"].notna()
    reached = (out["improvement"] >= out["mcid_abs"]) | (pct_improvement >= out["mcid_pct"])
    worse = (-out["improvement"] >= out["mcid_abs"]) | (-pct_improvement >= out["mcid_pct"])
    known = has_threshold & out["change"].notna()
    out["mcid_reached"] = reached.where(known, None)
    out["worsened"] = worse.where(known, None)
    out = out.reset_index()
    for c in ("latest_at", "baseline_at"):
        out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M:%S.%f").where(out[c].notna(), None)
    for c in ("mcid_reached", "worsened"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out[cols]


def _episode_summary(
    ep: pd.DataFrame,
    windows: pd.DataFrame,
    sc: pd.DataFrame,
    se: pd.DataFrame,
    as_of: date,
    rules: SummaryRules,
) -> pd.DataFrame:
    out = windows.set_index("episode_id")[
        ["patient_id", "clinic_id", "therapist_id", "start_date", "end_date", "window_end"]
    ].copy()
    out["is_active"] = out["end_date"].isna()
    done_weight = se["status"].map({"completed": 1.0, "partial": rules.partial_session_weight}).fillna(0.0)
    se = se.assign(_done=done_weight)
    home = se[se["setting"] == "home"]
    out["home_scheduled"] = home.groupby("episode_id").size()
    out["home_done"] = home.groupby("episode_id")["_done"].sum()
    recent_end = out["window_end"].clip(upper=pd.Timestamp(as_of) + pd.Timedelta(days=1))
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
    out["as_of"] = pd.Timestamp(as_of)
    out["refreshed_at"] = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    out = out.reset_index()
    for c in ("start_date", "end_date", "first_activity", "last_activity", "as_of"):
        out[c] = out[c].dt.strftime("%Y-%m-%d").where(out[c].notna(), None)
    out["home_scheduled"] = out["home_scheduled"].astype(int)
    out["home_scheduled_14d"] = out["home_scheduled_14d"].astype(int)
    return out.reindex(columns=[c.name for c in episode_summary.columns])


def _with_wide_measures(episode_rows: pd.DataFrame, measure_rows: pd.DataFrame) -> pd.DataFrame:
    """Copy the caseload's measures into columns of the episode row (see schema.WIDE_MEASURES)."""
    out = episode_rows.set_index("episode_id")
    wide = measure_rows[measure_rows["measure"].isin(WIDE_MEASURES)].set_index(["episode_id", "measure"])
    for code in WIDE_MEASURES:
        part = wide.xs(code, level="measure") if code in wide.index.get_level_values("measure") else None
        for suffix, source in WIDE_FIELDS.items():
            col = f"{code}_{suffix}"
            if part is None:
                out[col] = None
            else:
                values = part[source].reindex(out.index)
                out[col] = values.astype(object).where(values.notna(), None)
    out = out.reset_index()
    for col in (*(f"flag_{name}" for name in CASELOAD_FLAGS), "n_flags"):
        if col not in out or out[col].isna().all():
            out[col] = 0  # set by add_caseload_flags (etl/summary_flags.py) in _refresh_block
    return out[[c.name for c in episode_summary.columns]]


def sync_wide_measures(conn: Connection) -> None:
    """Recopy the wide caseload columns from `episode_measure_summary` in SQL.

    The refresh writes both at once; this is for summaries written by other means (tests, a hand repair).
    """
    m = episode_measure_summary
    values = {}
    for code in WIDE_MEASURES:
        for suffix, source in WIDE_FIELDS.items():
            values[f"{code}_{suffix}"] = (
                select(m.c[source])
                .where(m.c.episode_id == episode_summary.c.episode_id, m.c.measure == code)
                .scalar_subquery()
            )
    conn.execute(episode_summary.update().values(values))
    sync_caseload_flags(conn)


__all__ = ["refresh_all", "refresh_summaries", "sync_wide_measures"]
