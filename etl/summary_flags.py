"""The caseload flags of each episode row, computed by the summary refresh and stored on `episode_summary`.

The caseload used to evaluate the five rules per row at query time; clinic-wide at 100,000 patients that meant
evaluating and sorting ~44,000 rows for its first page. The flags depend only on the mart row and its `as_of`, so
the refresh computes them here, vectorised over a block, with exactly the rules of `warehouse.flag_rules` (the
thresholds the measures catalog gives, as the dashboard uses by default), and the caseload sorts on an index.

Only active episodes raise flags: the caseload lists active episodes only, and the patient page shows none for a
discharged one. `tests/dashboard/test_flags.py` checks the stored columns against the Python rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, and_, case, select

from warehouse.flag_rules import (
    EPS,
    FLAGS,
    LOW_ADHERENCE,
    MISSING_BASELINE,
    NO_RECENT_DATA,
    NOT_RESPONDING,
    WORSENING,
    FlagRules,
    flags_sql,
)
from warehouse.schema import WIDE_FIELDS, WIDE_MEASURES, episode_measure_summary, episode_summary, measures


def rules_from_catalog(catalog: pd.DataFrame) -> FlagRules:
    """The flag thresholds from the catalog frame the refresh already read (columns measure, better, mcid_abs)."""
    return FlagRules.from_catalog(catalog.rename(columns={"measure": "code"}).to_dict("records"))


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.days


def add_caseload_flags(
    episode_rows: pd.DataFrame, measure_rows: pd.DataFrame, rules: FlagRules
) -> pd.DataFrame:
    """`episode_rows` with `flag_<name>` (0/1) and `n_flags` set, as of each row's `as_of`.

    episode_rows: rows of `episode_summary` as the refresh writes them (dates as ISO text or dates);
    measure_rows: rows of `episode_measure_summary` for the same episodes (any measure a rule names).
    """
    out = episode_rows.copy()
    if out.empty:
        for name in FLAGS:
            out[f"flag_{name}"] = pd.Series(dtype="int64")
        out["n_flags"] = pd.Series(dtype="int64")
        return out
    episode_id = out["episode_id"]
    by_measure = dict(tuple(measure_rows.groupby("measure", sort=False)))
    parts = {
        code: by_measure[code].set_index("episode_id")
        if code in by_measure
        else measure_rows.iloc[:0].set_index("episode_id")
        for code in rules.measures
    }

    def per_measure(field: str, code: str) -> pd.Series:
        return pd.Series(parts[code][field].reindex(episode_id).to_numpy(), index=out.index)

    as_of = pd.to_datetime(out["as_of"])
    start = pd.to_datetime(out["start_date"])
    last = pd.to_datetime(out["last_activity"])
    days_in_episode = _days(as_of, start)
    false = pd.Series(False, index=out.index)

    worsening = false.copy()
    for code, threshold in rules.worsening:
        change = pd.to_numeric(per_measure("change", code), errors="coerce")
        moved = change >= threshold - EPS if threshold >= 0 else change <= threshold + EPS
        worsening |= moved.fillna(False).astype(bool)

    due = (days_in_episode >= 7 * rules.not_responding_weeks) | (out["visits"] >= rules.not_responding_visits)
    reached = false.copy()
    for code in rules.response_measures:
        reached |= per_measure("mcid_reached", code).eq(True)

    adherence_14d = pd.to_numeric(out["adherence_14d"], errors="coerce")
    missing = false.copy()
    for code in rules.baseline_measures:
        missing |= per_measure("baseline_value", code).isna()

    raised = {
        WORSENING: worsening,
        NOT_RESPONDING: due & ~reached,
        LOW_ADHERENCE: (adherence_14d < rules.low_adherence - EPS).fillna(False).astype(bool),
        NO_RECENT_DATA: _days(as_of, last.fillna(start)) >= rules.no_data_days,
        MISSING_BASELINE: missing,
    }
    active = out["is_active"].astype(bool)
    n_flags = np.zeros(len(out), dtype="int64")
    for name in FLAGS:
        values = (raised[name] & active).astype("int64")
        out[f"flag_{name}"] = values
        n_flags += values.to_numpy()
    out["n_flags"] = n_flags
    return out


def _measure_field(code: str, field: str) -> ColumnElement[Any]:
    """A measure's summary field for the episode row being updated: its wide column when there is one."""
    if code in WIDE_MEASURES:
        suffix = next(s for s, source in WIDE_FIELDS.items() if source == field)
        return episode_summary.c[f"{code}_{suffix}"]
    m = episode_measure_summary
    return (
        select(m.c[field])
        .where(m.c.episode_id == episode_summary.c.episode_id, m.c.measure == code)
        .scalar_subquery()
    )


def sync_caseload_flags(conn: Connection, rules: FlagRules | None = None) -> None:
    """Recompute the stored flags of every episode row in SQL (same rules, their SQL form).

    For summaries written by other means than the refresh (tests, a hand repair), after `sync_wide_measures`;
    `rules` defaults to the catalog's thresholds, as in the refresh.
    """
    if rules is None:
        catalog = pd.DataFrame(
            conn.execute(select(measures.c.code, measures.c.better, measures.c.mcid_abs)).all(),
            columns=["measure", "better", "mcid_abs"],
        )
        rules = rules_from_catalog(catalog)
    es = episode_summary
    conditions = flags_sql(
        {code: _measure_field(code, "change") for code in rules.measures},
        {code: _measure_field(code, "mcid_reached") for code in rules.measures},
        {code: _measure_field(code, "baseline_value") for code in rules.measures},
        start_date=es.c.start_date,
        as_of=es.c.as_of,
        visits=es.c.visits,
        adherence_14d=es.c.adherence_14d,
        last_activity=es.c.last_activity,
        rules=rules,
    )
    conn.execute(
        es.update().values(
            {
                f"flag_{name}": case((and_(es.c.is_active.is_(True), cond), 1), else_=0)
                for name, cond in conditions.items()
            }
        )
    )
    total = es.c[f"flag_{FLAGS[0]}"]
    for name in FLAGS[1:]:
        total = total + es.c[f"flag_{name}"]
    conn.execute(es.update().values(n_flags=total))


__all__ = ["add_caseload_flags", "rules_from_catalog", "sync_caseload_flags"]
