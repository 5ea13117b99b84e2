"""Caseload flags: who needs attention. Plain rules with their thresholds as parameters.

They live in the warehouse package because two sides apply them: the ETL stores each active episode's flags on
`episode_summary` when it refreshes the marts (`etl/summary_flags.py`, vectorised pandas; `sync_wide_measures`,
SQL), and the dashboard reads those columns, evaluates the rules for one episode on the patient page, and falls
back to the SQL forms when it is run with thresholds other than the catalog's. The ETL must not import
`dashboard`, so the single definition is here; `dashboard/flags.py` re-exports it with the display labels.

Each rule exists twice, side by side: a Python predicate (for one episode) and a SQL expression over the summary
marts. `tests/dashboard/test_flags.py` checks both agree at the threshold edges, and that the stored columns agree
with the Python rule on a generated warehouse.

Defaults follow ../shared/domain.md; `FlagRules.from_catalog` takes the thresholds from the measures catalog (that
is what the ETL stores and what the dashboard uses by default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_

from warehouse.schema import CASELOAD_FLAGS
from warehouse.sqlfuncs import days_between

#: Float tolerance: a change of exactly the threshold counts even when 5.74 - 3.74 comes out as 1.9999999999999998.
EPS = 1e-9

WORSENING = "worsening"
NOT_RESPONDING = "not_responding"
LOW_ADHERENCE = "low_adherence"
NO_RECENT_DATA = "no_recent_data"
MISSING_BASELINE = "missing_baseline"
FLAGS: tuple[str, ...] = (WORSENING, NOT_RESPONDING, LOW_ADHERENCE, NO_RECENT_DATA, MISSING_BASELINE)
#: Stored as `flag_<name>` on episode_summary (warehouse.schema.CASELOAD_FLAGS names those columns, in this order).
STORED_COLUMNS: tuple[str, ...] = tuple(f"flag_{name}" for name in CASELOAD_FLAGS)


@dataclass(frozen=True)
class FlagRules:
    """Thresholds of the caseload flags.

    worsening: (measure, signed threshold) pairs; +2 means "up by at least 2 from baseline", -6 "down by at least 6".
    """

    worsening: tuple[tuple[str, float], ...] = (
        ("pain_leg", 2.0),
        ("numbness", 2.0),
        ("slr_left", -6.0),
        ("slr_right", -6.0),
    )
    not_responding_weeks: int = 6
    not_responding_visits: int = 8
    response_measures: tuple[str, ...] = ("pain_leg", "odi")
    low_adherence: float = 0.60
    no_data_days: int = 14
    baseline_measures: tuple[str, ...] = ("pain_leg", "odi")

    @classmethod
    def from_catalog(cls, measures: Iterable[Mapping[str, Any]], **overrides: Any) -> FlagRules:
        """Worsening thresholds from the catalog's `mcid_abs`, signed by each measure's `better` direction."""
        rules = cls(**overrides)
        by_code = {m["code"]: m for m in measures}
        worsening = []
        for code, default in rules.worsening:
            m = by_code.get(code)
            mcid = None if m is None else m.get("mcid_abs")
            if mcid is None or mcid != mcid:  # None, or NaN from a DataFrame of the catalog: the default
                worsening.append((code, default))
                continue
            sign = 1.0 if m["better"] == "lower" else -1.0
            worsening.append((code, sign * float(mcid)))
        return replace(rules, worsening=tuple(worsening))

    @property
    def measures(self) -> tuple[str, ...]:
        """Every measure a rule looks at (the caseload joins one summary row per measure)."""
        seen: dict[str, None] = {}
        for code in (
            *(c for c, _ in self.worsening),
            *self.response_measures,
            *self.baseline_measures,
        ):
            seen.setdefault(code, None)
        return tuple(seen)


# --- Python predicates -------------------------------------------------------------------------------------------
def _moved(change: float | None, signed_threshold: float) -> bool:
    if change is None:
        return False
    if signed_threshold >= 0:
        return change >= signed_threshold - EPS
    return change <= signed_threshold + EPS


def is_worsening(changes: Mapping[str, float | None], rules: FlagRules) -> bool:
    """Leg pain or numbness up by at least the MCID from baseline, or an SLR angle down by the threshold."""
    return any(_moved(changes.get(code), t) for code, t in rules.worsening)


def is_not_responding(
    days_in_episode: int, visits: int, mcid_reached: Mapping[str, bool | None], rules: FlagRules
) -> bool:
    """No MCID on any response measure after `not_responding_weeks` weeks or `not_responding_visits` visits."""
    due = days_in_episode >= 7 * rules.not_responding_weeks or visits >= rules.not_responding_visits
    return due and not any(bool(mcid_reached.get(code)) for code in rules.response_measures)


def is_low_adherence(adherence_14d: float | None, rules: FlagRules) -> bool:
    """Below the threshold in the last 14 days; no home sessions scheduled is not low adherence."""
    return adherence_14d is not None and adherence_14d < rules.low_adherence - EPS


def is_no_recent_data(
    last_activity: dt.date | None, start_date: dt.date, as_of: dt.date, rules: FlagRules
) -> bool:
    """Nothing recorded (score or session) for `no_data_days` days; counted from the start when nothing ever was."""
    since = last_activity or start_date
    return (as_of - since).days >= rules.no_data_days


def is_missing_baseline(baselines: Mapping[str, float | None], rules: FlagRules) -> bool:
    """A baseline measure has no value in the baseline window."""
    return any(baselines.get(code) is None for code in rules.baseline_measures)


def flags_for(
    *,
    changes: Mapping[str, float | None],
    mcid_reached: Mapping[str, bool | None],
    baselines: Mapping[str, float | None],
    days_in_episode: int,
    visits: int,
    adherence_14d: float | None,
    last_activity: dt.date | None,
    start_date: dt.date,
    as_of: dt.date,
    rules: FlagRules,
) -> list[str]:
    """The flags one episode raises, in display order."""
    raised = {
        WORSENING: is_worsening(changes, rules),
        NOT_RESPONDING: is_not_responding(days_in_episode, visits, mcid_reached, rules),
        LOW_ADHERENCE: is_low_adherence(adherence_14d, rules),
        NO_RECENT_DATA: is_no_recent_data(last_activity, start_date, as_of, rules),
        MISSING_BASELINE: is_missing_baseline(baselines, rules),
    }
    return [f for f in FLAGS if raised[f]]


# --- the same rules in SQL ---------------------------------------------------------------------------------------
def _moved_sql(change: ColumnElement[Any], signed_threshold: float) -> ColumnElement[bool]:
    if signed_threshold >= 0:
        return change >= signed_threshold - EPS
    return change <= signed_threshold + EPS


def worsening_sql(changes: Mapping[str, ColumnElement[Any]], rules: FlagRules) -> ColumnElement[bool]:
    parts = [_moved_sql(changes[code], t) for code, t in rules.worsening]
    return or_(false(), *parts)


def not_responding_sql(
    start_date: ColumnElement[Any],
    as_of: ColumnElement[Any],
    visits: ColumnElement[Any],
    mcid_reached: Mapping[str, ColumnElement[Any]],
    rules: FlagRules,
) -> ColumnElement[bool]:
    due = or_(
        days_between(start_date, as_of) >= 7 * rules.not_responding_weeks,
        visits >= rules.not_responding_visits,
    )
    reached = or_(false(), *(func.coalesce(mcid_reached[c], false()) for c in rules.response_measures))
    return and_(due, ~reached)


def low_adherence_sql(adherence_14d: ColumnElement[Any], rules: FlagRules) -> ColumnElement[bool]:
    return adherence_14d < rules.low_adherence - EPS


def no_recent_data_sql(
    last_activity: ColumnElement[Any],
    start_date: ColumnElement[Any],
    as_of: ColumnElement[Any],
    rules: FlagRules,
) -> ColumnElement[bool]:
    return days_between(func.coalesce(last_activity, start_date), as_of) >= rules.no_data_days


def missing_baseline_sql(
    baselines: Mapping[str, ColumnElement[Any]], rules: FlagRules
) -> ColumnElement[bool]:
    return or_(false(), *(baselines[c].is_(None) for c in rules.baseline_measures))


def flags_sql(
    changes: Mapping[str, ColumnElement[Any]],
    mcid_reached: Mapping[str, ColumnElement[Any]],
    baselines: Mapping[str, ColumnElement[Any]],
    *,
    start_date: ColumnElement[Any],
    as_of: ColumnElement[Any],
    visits: ColumnElement[Any],
    adherence_14d: ColumnElement[Any],
    last_activity: ColumnElement[Any],
    rules: FlagRules,
) -> dict[str, ColumnElement[bool]]:
    """Every flag's SQL condition, by flag name in display order (the caseload's fallback and `sync_wide_measures`)."""
    return {
        WORSENING: worsening_sql(changes, rules),
        NOT_RESPONDING: not_responding_sql(start_date, as_of, visits, mcid_reached, rules),
        LOW_ADHERENCE: low_adherence_sql(adherence_14d, rules),
        NO_RECENT_DATA: no_recent_data_sql(last_activity, start_date, as_of, rules),
        MISSING_BASELINE: missing_baseline_sql(baselines, rules),
    }
