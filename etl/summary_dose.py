"""Outcomes-page marts: the exercise dose per episode, setting and type, and when an episode first reached the MCID.

The outcomes page used to group the `sessions` fact table (10.5M rows at 100k patients) per episode and type, and
search `scores` for the first measurement reaching the MCID, then keep the results per viewer in process memory.
Both are derived from facts of one patient only, so the summary refresh writes them per block of patients, in the
load's transaction, right after `episode_summary` / `episode_measure_summary` (`etl.summary._refresh_block`).

Rules (stated on the page, docs/outcomes.md):
- A session belongs to an episode when dated from its start to its end (or after its start while it is open);
  only completed and partial sessions are dose. done = completed 1 + partial `partial_session_weight`; minutes =
  the logged duration, else the prescribed minutes x the same weight (x 1 for a completed session), else 0.
- `share` = the type's share of the episode's minutes within the row's setting, or of its done sessions when no
  minutes were logged there. Setting 'all' rows are home and clinic together (the page's default), so the page
  selects one setting and never sums across settings. The page applies its own threshold (`share >= 20 %`).
- `episode_first_mcid`: for episodes whose `episode_measure_summary.mcid_reached` is true, the first value at or
  after the episode start whose improvement over the baseline reaches the catalog threshold (absolute or %), and
  the calendar days from the start to it.

The grouping runs in SQL (per block, through the sessions' natural-key index on patient_id); only the grouped rows
(a few thousand per block) come back to Python for the shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, and_, case, func, literal, or_, select

from etl.bulk import bulk_insert
from warehouse.config import SummaryRules
from warehouse.db import fetch_rows
from warehouse.schema import (
    DOSE_ALL_SETTINGS,
    episode_exercise_dose,
    episode_first_mcid,
    episode_measure_summary,
    episodes,
    measures,
    scores,
    sessions,
)

#: Measures whose first-MCID date is kept (the page's "median weeks to MCID" is on leg pain).
FIRST_MCID_MEASURES: tuple[str, ...] = ("pain_leg",)
DONE_STATUSES = ("completed", "partial")
#: Tolerance of the threshold comparisons (values are floats: 2.0 - 1e-12 still counts as 2).
EPS = 1e-9

DOSE_COLUMNS = [c.name for c in episode_exercise_dose.columns]
FIRST_MCID_COLUMNS = [c.name for c in episode_first_mcid.columns]


#: Patients as a list of ids, or a SELECT of their ids (the refresh's block table: no bound list to expand).
Patients = Sequence[str] | Select


def _ids(block: Patients) -> list[str] | Select:
    return block if isinstance(block, Select) else list(block)


def refresh_outcome_marts(conn: Connection, block: Patients, rules: SummaryRules) -> None:
    """Rewrite both marts for these patients. Call after `episode_measure_summary` of the block is written."""
    block = _ids(block)
    clear_outcome_marts(conn, block)
    if isinstance(block, list) and not block:
        return
    bulk_insert(conn, episode_exercise_dose, dose_rows(conn, block, rules))
    bulk_insert(conn, episode_first_mcid, first_mcid_rows(conn, block))


def clear_outcome_marts(conn: Connection, block: Patients) -> None:
    """Delete both marts' rows of these patients: the first half of `refresh_outcome_marts`, and all of it for a
    refresh block without episodes (`etl.summary._refresh_block`), whose old rows would otherwise stay behind."""
    block = _ids(block)
    conn.execute(episode_exercise_dose.delete().where(episode_exercise_dose.c.patient_id.in_(block)))
    conn.execute(episode_first_mcid.delete().where(episode_first_mcid.c.patient_id.in_(block)))


def dose_rows(conn: Connection, block: Patients, rules: SummaryRules) -> pd.DataFrame:
    """The block's `episode_exercise_dose` rows (home, clinic and 'all' per episode and type)."""
    s, e = sessions, episodes
    weight = case((s.c.status == "partial", literal(float(rules.partial_session_weight))), else_=literal(1.0))
    minutes = func.coalesce(s.c.duration_min, s.c.prescribed_min * weight, literal(0.0))
    stmt = (
        select(
            e.c.episode_id,
            e.c.patient_id,
            s.c.setting,
            s.c.exercise_type,
            func.sum(weight).label("done"),
            func.sum(minutes).label("minutes"),
        )
        .select_from(
            e.join(
                s,
                and_(
                    s.c.patient_id == e.c.patient_id,
                    s.c.session_date >= e.c.start_date,
                    or_(e.c.end_date.is_(None), s.c.session_date <= e.c.end_date),
                ),
            )
        )
        .where(e.c.patient_id.in_(_ids(block)), s.c.status.in_(DONE_STATUSES))
        .group_by(e.c.episode_id, e.c.patient_id, s.c.setting, s.c.exercise_type)
    )
    _names, rows = fetch_rows(conn, stmt)
    if not rows:
        return pd.DataFrame(columns=DOSE_COLUMNS)
    df = pd.DataFrame(
        rows, columns=["episode_id", "patient_id", "setting", "exercise_type", "done", "minutes"]
    )
    return with_shares(df)


def with_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Add the 'all' rows (home + clinic per episode and type) and every row's share within its setting.

    `df`: one row per episode, setting (home / clinic) and type with `done` and `minutes`.
    """
    df = df.astype({"done": float, "minutes": float})
    both = df.groupby(["episode_id", "patient_id", "exercise_type"], as_index=False, sort=False)[
        ["done", "minutes"]
    ].sum()
    both["setting"] = DOSE_ALL_SETTINGS
    out = pd.concat([df, both], ignore_index=True)
    tot = out.groupby(["episode_id", "setting"], sort=False)[["done", "minutes"]].transform("sum")
    by_minutes = tot["minutes"].to_numpy() > 0
    by_done = ~by_minutes & (tot["done"].to_numpy() > 0)
    share = np.zeros(len(out))
    share[by_minutes] = out["minutes"].to_numpy()[by_minutes] / tot["minutes"].to_numpy()[by_minutes]
    share[by_done] = out["done"].to_numpy()[by_done] / tot["done"].to_numpy()[by_done]
    out["share"] = share
    out["episode_id"] = out["episode_id"].astype("int64")
    return out[DOSE_COLUMNS]


def first_mcid_rows(
    conn: Connection, block: Patients, measure_codes: Sequence[str] = FIRST_MCID_MEASURES
) -> pd.DataFrame:
    """The block's `episode_first_mcid` rows: the first value at or after the start that reached the threshold,
    for the episodes whose summary says it was reached (so both always agree on who reached it).

    The first such value is a `min()` subquery per episode: both databases then walk the scores' primary key
    (patient, measure, recorded_at) from the start and stop at the first row that reaches (a join and GROUP BY
    read every later row: 0.08 -> 0.04 s per 10k patients on SQLite)."""
    ems, m, e, s = episode_measure_summary, measures, episodes, scores.alias()
    base = ems.c.baseline_value
    improvement = case((m.c.better == "lower", base - s.c.value), else_=s.c.value - base)
    reached = or_(
        and_(m.c.mcid_abs.is_not(None), improvement >= m.c.mcid_abs - EPS),
        and_(m.c.mcid_pct.is_not(None), base > 0, improvement * 100.0 >= base * (m.c.mcid_pct - EPS)),
    )
    first_at = (
        select(func.min(s.c.recorded_at))
        .where(
            s.c.patient_id == ems.c.patient_id,
            s.c.measure == ems.c.measure,
            s.c.recorded_at >= e.c.start_date,
            reached,
        )
        .scalar_subquery()
    )
    stmt = (
        select(ems.c.episode_id, ems.c.measure, ems.c.patient_id, e.c.start_date, first_at)
        .select_from(e.join(ems, ems.c.episode_id == e.c.episode_id).join(m, m.c.code == ems.c.measure))
        .where(
            e.c.patient_id.in_(_ids(block)),  # the episodes' (patient_id, start_date) index drives the join
            ems.c.measure.in_(list(measure_codes)),
            ems.c.mcid_reached.is_(True),
        )
    )
    _names, rows = fetch_rows(conn, stmt)
    if not rows:
        return pd.DataFrame(columns=FIRST_MCID_COLUMNS)
    df = pd.DataFrame(rows, columns=["episode_id", "measure", "patient_id", "start_date", "first_mcid_at"])
    df = df[df["first_mcid_at"].notna()].reset_index(drop=True)  # (none when only rounding reached it)
    first = pd.to_datetime(df["first_mcid_at"].astype(str), format="ISO8601")
    start = pd.to_datetime(df["start_date"].astype(str), format="ISO8601")
    df["days_to_mcid"] = (first.dt.normalize() - start.dt.normalize()).dt.days.astype("int64")
    df["first_mcid_at"] = first.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    return df[FIRST_MCID_COLUMNS]


__all__ = [
    "refresh_outcome_marts",
    "clear_outcome_marts",
    "dose_rows",
    "first_mcid_rows",
    "with_shares",
    "FIRST_MCID_MEASURES",
]
