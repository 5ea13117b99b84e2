"""The outcomes page's rules per episode, as SQL over the marts: one definition for two readers.

The dashboard evaluates them for the viewer's filtered episodes (`dashboard/queries/outcomes.py`); the ETL evaluates
them once per clinic after each summary refresh and stores the result as packed columns (`warehouse/outcome_pack.py`)
that the filter-change callback aggregates. The ETL must not import `dashboard`, so the rules live here; the page
states them (docs/outcomes.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Integer, and_, case, cast, extract, func, literal, or_, true
from sqlalchemy.sql.expression import ColumnElement

from warehouse.flag_rules import FlagRules
from warehouse.schema import episode_summary, episodes, patients
from warehouse.sqlfuncs import days_between

#: Share of an episode's logged dose an exercise type needs for the episode to count for it.
TYPE_SHARE = 0.20
#: The outcome measures of the page: code -> label. "slr" is the straight-leg raise of the affected side.
MEASURES: dict[str, str] = {
    "pain_leg": "Leg pain",
    "numbness": "Numbness",
    "slr": "SLR (affected side)",
    "odi": "ODI",
}
#: Measures with a responder rate (a published MCID).
RESPONDER_MEASURES: tuple[str, ...] = ("pain_leg", "odi")
PRIMARY = "pain_leg"
#: Baseline leg pain bands (NPRS: mild 0-3, moderate 4-6, severe 7-10; floats cut at 4 and 7).
SEVERITY_BANDS: dict[str, tuple[float, float]] = {
    "mild": (0.0, 4.0),
    "moderate": (4.0, 7.0),
    "severe": (7.0, 10.0001),
}
AGE_BANDS: dict[str, tuple[int, int]] = {
    "<40": (0, 40),
    "40-59": (40, 60),
    "60-74": (60, 75),
    "75+": (75, 200),
}
SEXES = ("F", "M", "X", "U")
SETTINGS = ("home", "clinic")
#: Adherence bands for the dose-response (conventions: < 60 % low, >= 80 % adherent; see domain.md).
ADHERENCE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("< 60 %", 0.0, 0.60),
    ("60-79 %", 0.60, 0.80),
    ("≥ 80 %", 0.80, 10.0),
)
NO_HOME = "none scheduled"
#: Weekly minutes of one exercise type, for the dose-response per type.
WEEKLY_DOSE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("< 30 min/wk", 0.0, 30.0),
    ("30-59 min/wk", 30.0, 60.0),
    ("≥ 60 min/wk", 60.0, 1e9),
)
#: Benchmarks: groups under this n are shown greyed and never ranked.
MIN_BENCHMARK_N = 10
#: Covariates of the risk adjustment (the baseline of the outcome measure is added per model).
COVARIATES: tuple[str, ...] = ("age", "symptom_weeks", "adherence")
EPS = 1e-9


# --- filters -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeFilters:
    clinic_id: str | None = None
    therapist_id: str | None = None
    start_from: dt.date | None = None
    start_to: dt.date | None = None
    severity: str | None = None
    age_band: str | None = None
    sex: str | None = None
    setting: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("severity", SEVERITY_BANDS),
            ("age_band", AGE_BANDS),
            ("sex", SEXES),
            ("setting", SETTINGS),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"unknown {name} {value!r}")

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.__dict__.items() if v is not None]
        return ", ".join(parts) or "no filters"


WIDE = ("pain_leg", "numbness", "odi", "slr_left", "slr_right")


# --- SQL building blocks -----------------------------------------------------------------------------------------
def _flag(cond: ColumnElement[bool]) -> ColumnElement[int]:
    """A condition as 0/1 (sums of these are the counts; a NULL operand counts as 0, like pandas' False)."""
    return case((cond, 1), else_=0)


def _mcid01(col: ColumnElement) -> ColumnElement:
    """A nullable boolean mart column as 1 / 0 / NULL (both backends)."""
    return case((col.is_(True), 1), (col.is_(False), 0), else_=None)


def _floor_div(days: ColumnElement[int], by: int) -> ColumnElement[int]:
    """Floor division of whole days (SQL integer division truncates towards zero; pandas floors)."""
    return case((days < 0, (days - (by - 1)) // by), else_=days // by)


@dataclass(frozen=True)
class EpisodeSQL:
    """The filtered episodes as SQL: the FROM clause, the WHERE condition (scope and filters) and the page's
    per-episode columns as expressions (named as the DataFrame functions below expect them)."""

    from_: Any
    where: ColumnElement[bool]
    cols: dict[str, ColumnElement]
    #: whether `from_` joins `patients` (the caller's scope condition then covers that table too)
    with_patient: bool = False


def episode_sql(
    filters: OutcomeFilters,
    catalog: pd.DataFrame,
    rules: FlagRules = FlagRules(),
    *,
    with_patient: bool = False,
) -> EpisodeSQL:
    """Filters + the page's rules per episode, as SQL expressions over `episode_summary` (and `episodes` for
    the side and symptom onset, `patients` for age and sex when asked or filtered on). No scope: the dashboard adds
    the viewer's (`dashboard.queries.outcomes.episode_sql`); the ETL reads every episode of a clinic for its pack.

    Every rule here mirrors what the page states (docs/outcomes.md) and the tests compare it with a pandas
    computation of the same rules.
    """
    es, e, p = episode_summary, episodes, patients
    need_patient = with_patient or bool(filters.age_band or filters.sex)
    from_ = es.join(e, e.c.episode_id == es.c.episode_id)
    if need_patient:
        from_ = from_.join(p, p.c.patient_id == es.c.patient_id)
    start_year = cast(extract("year", es.c.start_date), Integer)
    conds: list[ColumnElement[bool]] = []
    if filters.clinic_id:
        conds.append(es.c.clinic_id == filters.clinic_id)
    if filters.therapist_id:
        conds.append(es.c.therapist_id == filters.therapist_id)
    if filters.start_from:
        conds.append(es.c.start_date >= filters.start_from)
    if filters.start_to:
        conds.append(es.c.start_date <= filters.start_to)
    if filters.severity:
        lo, hi = SEVERITY_BANDS[filters.severity]
        conds += [es.c.pain_leg_baseline >= lo, es.c.pain_leg_baseline < hi]
    if filters.age_band:
        lo, hi = AGE_BANDS[filters.age_band]
        conds += [start_year - p.c.birth_year >= lo, start_year - p.c.birth_year < hi]
    if filters.sex:
        conds.append(p.c.sex == filters.sex)

    cols: dict[str, ColumnElement] = {
        "episode_id": es.c.episode_id,
        "patient_id": es.c.patient_id,
        "clinic_id": es.c.clinic_id,
        "therapist_id": es.c.therapist_id,
        "adherence": es.c.adherence,
        "home_scheduled": es.c.home_scheduled,
        "visits": es.c.visits,
        "start_month": start_year * 100 + cast(extract("month", es.c.start_date), Integer),
        "symptom_weeks": days_between(e.c.symptom_onset, es.c.start_date) / literal(7.0),
    }
    if need_patient:
        cols["age"] = start_year - p.c.birth_year
    completed = es.c.end_date.is_not(None)
    since = func.coalesce(es.c.last_activity, es.c.start_date)
    dropped = and_(es.c.end_date.is_(None), days_between(since, es.c.as_of) >= rules.no_data_days)
    days_observed = days_between(es.c.start_date, func.coalesce(es.c.end_date, es.c.as_of))
    cols["completed"] = _flag(completed)
    cols["dropped_out"] = _flag(dropped)
    cols["dropout_week"] = case(
        (dropped, _floor_div(days_between(es.c.start_date, since), 7) + 1), else_=None
    )
    cols["weeks_observed"] = days_observed / literal(7.0)
    due = or_(days_observed >= 7 * rules.not_responding_weeks, es.c.visits >= rules.not_responding_visits)
    any_mcid = or_(*(es.c[f"{m}_mcid"].is_(True) for m in rules.response_measures))
    cols["ftp_due"] = _flag(due)
    cols["failure_to_progress"] = _flag(and_(due, ~any_mcid))

    # the affected side's straight-leg raise: the episode's side, else the side with the lower (worse) baseline
    left, right = es.c.slr_left_baseline, es.c.slr_right_baseline
    left_worse = or_(right.is_(None), and_(left.is_not(None), left <= right))
    use_left = case((e.c.side == "left", True), (e.c.side == "right", False), else_=left_worse)
    thr = catalog.set_index("code")
    for m in MEASURES:
        if m == "slr":
            base = case((use_left, es.c.slr_left_baseline), else_=es.c.slr_right_baseline)
            change = case((use_left, es.c.slr_left_change), else_=es.c.slr_right_change)
            mcid = case((use_left, _mcid01(es.c.slr_left_mcid)), else_=_mcid01(es.c.slr_right_mcid))
        else:
            base, change, mcid = es.c[f"{m}_baseline"], es.c[f"{m}_change"], _mcid01(es.c[f"{m}_mcid"])
        code = "slr_left" if m == "slr" else m
        row = thr.loc[code] if code in thr.index else None
        if row is None or pd.isna(row["mcid_abs"]):
            ceiling: ColumnElement[bool] = literal(False)
        elif row["better"] == "lower":  # cannot improve by the MCID: already below it
            ceiling = base < float(row["mcid_abs"]) - EPS
        else:
            ceiling = base > float(row["max_value"]) - float(row["mcid_abs"]) + EPS
        has_base = base.is_not(None)
        cols[f"{m}_baseline"] = base
        cols[f"{m}_change"] = change
        cols[f"{m}_mcid"] = mcid
        cols[f"{m}_ceiling"] = _flag(and_(has_base, ceiling))
        if m in RESPONDER_MEASURES:
            eligible = and_(has_base, ~ceiling)
            comp = and_(eligible, completed, change.is_not(None))
            cols[f"{m}_itt_n"] = _flag(eligible)
            cols[f"{m}_itt_k"] = _flag(and_(eligible, mcid == 1))
            cols[f"{m}_comp_n"] = _flag(comp)
            cols[f"{m}_comp_k"] = _flag(and_(comp, mcid == 1))
            cols[f"{m}_ceiling_n"] = _flag(and_(has_base, ceiling))
            cols[f"{m}_no_followup"] = _flag(and_(eligible, change.is_(None)))
    band = case(
        *(
            (and_(es.c.adherence >= lo - EPS, es.c.adherence < hi - EPS), name)
            for name, lo, hi in ADHERENCE_BANDS
        ),
        else_=NO_HOME,
    )
    cols["adherence_band"] = case(
        (or_(es.c.home_scheduled <= 0, es.c.adherence.is_(None)), NO_HOME), else_=band
    )
    return EpisodeSQL(from_, and_(true(), *conds), cols, need_patient)
