"""Outcomes for managers: which exercise types, therapists and clinics get results, and how much to trust them.

Reading (SQL, scope enforced in SQL on `episode_summary` and `patients`):
- `outcome_episodes`: one row per episode in scope from the summary mart (wide measure columns), with age, sex,
  symptom onset and side; never the fact tables.
- `episode_type_dose`: the completed/partial dose per episode, exercise type and setting, grouped in SQL from
  `sessions` (the one read of a fact table: see "Exercise types" below).
- `weeks_to_mcid`: when leg pain first reached the MCID, for episodes whose summary says it did (scores, by the
  primary-key range of each patient).
- `recovery_scores`, `etl_batch_rows`, `reject_reasons`: the recovery bands and the data-quality panel.

`OutcomeCache` keeps those reads per scope until the warehouse changes (a new ETL batch or summary refresh), so a
change of filter is pandas over one in-memory frame (measured: see docs/outcomes.md). Everything after that is a
plain function of DataFrames (`OutcomeView`), tested without a database.

Exercise types: an episode counts for every exercise type that makes up at least `TYPE_SHARE` (20 %) of its logged
dose: the minutes done (completed sessions in full, partial ones as logged; the prescribed minutes x 0.5 where a
partial session has no duration), home and clinic together, or only the setting chosen in the filter. An episode
with no minutes logged falls back to its share of done sessions. Types overlap: one episode can count for several.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, case, func, literal, or_, select

from dashboard import stats
from dashboard.flags import FlagRules
from dashboard.queries import read_frame
from dashboard.scope import Scope, scope_clause
from warehouse.schema import (
    episode_summary,
    episodes,
    etl_batches,
    etl_rejects,
    measures,
    patients,
    scores,
    sessions,
)

#: Share of an episode's logged dose an exercise type needs for the episode to count for it.
TYPE_SHARE = 0.20
#: Weight of a partial session (as the marts count adherence).
PARTIAL_WEIGHT = 0.5
DONE_STATUSES = ("completed", "partial")
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


# --- SQL reads (scope enforced here) -----------------------------------------------------------------------------
def _in_scope(scope: Scope):
    return and_(scope_clause(scope, episode_summary), scope_clause(scope, patients))


def _scoped_episodes():
    es = episode_summary
    return es.join(patients, patients.c.patient_id == es.c.patient_id)


WIDE = ("pain_leg", "numbness", "odi", "slr_left", "slr_right")


def outcome_episodes(engine: Engine, scope: Scope) -> pd.DataFrame:
    """Every episode in scope: the summary mart's row with the patient's birth year and sex, the episode's side and
    symptom onset, and baseline / change / MCID of the page's measures (wide columns: no join per measure)."""
    es = episode_summary
    cols = [
        es.c.episode_id,
        es.c.patient_id,
        es.c.clinic_id,
        es.c.therapist_id,
        es.c.start_date,
        es.c.end_date,
        es.c.as_of,
        es.c.visits,
        es.c.home_scheduled,
        es.c.adherence,
        es.c.first_activity,
        es.c.last_activity,
        patients.c.birth_year,
        patients.c.sex,
        episodes.c.side,
        episodes.c.symptom_onset,
    ]
    for code in WIDE:
        cols += [es.c[f"{code}_baseline"], es.c[f"{code}_change"], es.c[f"{code}_mcid"]]
    stmt = (
        select(*cols)
        .select_from(_scoped_episodes().join(episodes, episodes.c.episode_id == es.c.episode_id))
        .where(_in_scope(scope))
    )
    return read_frame(engine, stmt)


def episode_type_dose(engine: Engine, scope: Scope) -> pd.DataFrame:
    """Done sessions and minutes per episode, exercise type and setting (completed and partial sessions between the
    episode's start and end), grouped in SQL: `episode_id, exercise_type, setting, done, minutes`."""
    es, s = episode_summary, sessions
    weight = case((s.c.status == "partial", literal(PARTIAL_WEIGHT)), else_=literal(1.0))
    minutes = func.coalesce(s.c.duration_min, s.c.prescribed_min * weight, literal(0.0))
    stmt = (
        select(
            es.c.episode_id,
            s.c.exercise_type,
            s.c.setting,
            func.sum(weight).label("done"),
            func.sum(minutes).label("minutes"),
        )
        .select_from(
            _scoped_episodes().join(
                s,
                and_(
                    s.c.patient_id == es.c.patient_id,
                    s.c.session_date >= es.c.start_date,
                    or_(es.c.end_date.is_(None), s.c.session_date <= es.c.end_date),
                ),
            )
        )
        .where(_in_scope(scope), s.c.status.in_(DONE_STATUSES))
        .group_by(es.c.episode_id, s.c.exercise_type, s.c.setting)
    )
    return read_frame(engine, stmt)


def measure_thresholds(engine: Engine) -> pd.DataFrame:
    """The catalog rows of the page's measures (reference data, not scoped)."""
    stmt = select(
        measures.c.code,
        measures.c.label,
        measures.c.unit,
        measures.c.min_value,
        measures.c.max_value,
        measures.c.better,
        measures.c.mcid_abs,
        measures.c.mcid_pct,
        measures.c.threshold_kind,
    ).where(measures.c.code.in_([*WIDE, "pain_back", "lumbar_flexion"]))
    return read_frame(engine, stmt)


def weeks_to_mcid(
    engine: Engine, scope: Scope, catalog: pd.DataFrame, measure: str = PRIMARY
) -> pd.DataFrame:
    """`episode_id, first_mcid_at`: the first measurement at or after the episode start that reached the MCID, for
    the episodes in scope whose summary says the MCID was reached (lower-is-better measures with a baseline)."""
    row = catalog.set_index("code").loc[measure]
    es = episode_summary
    baseline = es.c[f"{measure}_baseline"]
    drop = baseline - scores.c.value
    conds = []
    if pd.notna(row["mcid_abs"]):
        conds.append(drop >= float(row["mcid_abs"]) - EPS)
    if pd.notna(row["mcid_pct"]):
        conds.append(and_(baseline > 0, drop * 100.0 >= baseline * (float(row["mcid_pct"]) - EPS)))
    if row["better"] != "lower" or not conds:
        return pd.DataFrame(columns=["episode_id", "first_mcid_at"])
    stmt = (
        select(es.c.episode_id, func.min(scores.c.recorded_at).label("first_mcid_at"))
        .select_from(
            _scoped_episodes().join(
                scores,
                and_(
                    scores.c.patient_id == es.c.patient_id,
                    scores.c.measure == measure,
                    scores.c.recorded_at >= es.c.start_date,
                ),
            )
        )
        .where(_in_scope(scope), es.c[f"{measure}_mcid"].is_(True), or_(*conds))
        .group_by(es.c.episode_id)
    )
    return read_frame(engine, stmt)


def warehouse_version(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever the ETL loads a batch or refreshes the marts: the cache key next to the scope."""
    with engine.connect() as conn:
        batch = conn.execute(
            select(func.max(etl_batches.c.batch_id), func.count(etl_batches.c.batch_id))
        ).one()
        summary = conn.execute(
            select(func.max(episode_summary.c.refreshed_at), func.count(episode_summary.c.episode_id))
        ).one()
    return (*batch, *summary)


def recovery_scores(
    engine: Engine,
    scope: Scope,
    measure: str,
    band: tuple[float, float],
    clinic_id: str | None = None,
    max_episodes: int = 5000,
) -> pd.DataFrame:
    """Measurements (`episode_id, week, value`) of the most recent `max_episodes` episodes in scope whose baseline
    of `measure` lies in [band): the input of the expected-recovery percentiles. Week 0 is the baseline week."""
    if measure not in WIDE:
        raise ValueError(f"no recovery bands for {measure!r}")
    es = episode_summary
    base = es.c[f"{measure}_baseline"]
    picked = (
        select(es.c.episode_id, es.c.patient_id, es.c.start_date, es.c.end_date)
        .select_from(_scoped_episodes())
        .where(_in_scope(scope), base >= band[0], base < band[1])
    )
    if clinic_id:
        picked = picked.where(es.c.clinic_id == clinic_id)
    picked = picked.order_by(es.c.start_date.desc(), es.c.episode_id.desc()).limit(max_episodes).subquery()
    stmt = select(picked.c.episode_id, picked.c.start_date, scores.c.recorded_at, scores.c.value).select_from(
        picked.join(
            scores,
            and_(
                scores.c.patient_id == picked.c.patient_id,
                scores.c.measure == measure,
                scores.c.recorded_at >= picked.c.start_date,
            ),
        )
    )
    df = read_frame(engine, stmt)
    if df.empty:
        return pd.DataFrame(columns=["episode_id", "week", "value"])
    days = (_ts(df["recorded_at"]).dt.normalize() - _ts(df["start_date"])).dt.days
    df["week"] = (days // 7).astype(int)
    return df[["episode_id", "week", "value"]]


def etl_batch_rows(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest ETL batches (files, not patients: the same for every viewer)."""
    b = etl_batches
    stmt = (
        select(
            b.c.batch_id,
            b.c.file_name,
            b.c.kind,
            b.c.status,
            b.c.loaded_at,
            b.c.rows_read,
            b.c.rows_inserted,
            b.c.rows_updated,
            b.c.rows_rejected,
        )
        .order_by(b.c.batch_id.desc())
        .limit(limit)
    )
    return read_frame(engine, stmt)


_QUOTED = re.compile(r"'[^']*'")


def reject_reasons(engine: Engine) -> pd.DataFrame:
    """Rejected rows by reason and file: `file_name, reason, rows`. Quoted values are cut from the reasons (they
    may hold patient data); the raw rows are never read here."""
    stmt = (
        select(etl_batches.c.file_name, etl_rejects.c.reasons, func.count().label("rows"))
        .select_from(etl_rejects.join(etl_batches, etl_batches.c.batch_id == etl_rejects.c.batch_id))
        .group_by(etl_batches.c.file_name, etl_rejects.c.reasons)
    )
    df = read_frame(engine, stmt)
    if df.empty:
        return pd.DataFrame(columns=["file_name", "reason", "rows"])
    df["reason"] = [
        [_QUOTED.sub("…", r).strip() for r in str(text).split(";") if r.strip()] for text in df["reasons"]
    ]
    df = df.explode("reason")
    out = df.groupby(["file_name", "reason"], as_index=False)["rows"].sum()
    return out.sort_values(["rows", "file_name", "reason"], ascending=[False, True, True], ignore_index=True)


# --- the cache ---------------------------------------------------------------------------------------------------
def _ts(s: pd.Series) -> pd.Series:
    """Dates or timestamps from either driver (ISO text on SQLite, objects on PostgreSQL) as datetime64."""
    return pd.to_datetime(s, format="ISO8601") if len(s) else pd.to_datetime(s)


@dataclass
class OutcomeData:
    """Everything the page's filters work on, for one scope and one warehouse version."""

    episodes: pd.DataFrame  # prepared: one row per episode
    dose: pd.DataFrame  # episode_id, exercise_type, setting, done, minutes
    catalog: pd.DataFrame
    _types: dict[str | None, pd.DataFrame] = field(default_factory=dict)

    def types(self, setting: str | None) -> pd.DataFrame:
        """`episode_id, exercise_type, share, minutes`: the types each episode counts for (see module docstring)."""
        if setting not in self._types:
            self._types[setting] = episode_types(self.dose, setting)
        return self._types[setting]


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


class OutcomeCache:
    """Per scope, the episodes, dose and catalog, kept until `warehouse_version` changes (LRU of `size` scopes).

    Held by the page's `register` (never a module global); thread-safe for a threaded server.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[Any, tuple[Any, OutcomeData]] = OrderedDict()
        self._lock = threading.Lock()
        self.fills = 0

    def get(self, engine: Engine, scope: Scope, rules: FlagRules = FlagRules()) -> OutcomeData:
        version = warehouse_version(engine)
        key = (id(engine), scope)
        with self._lock:
            hit = self._items.get(key)
            if hit and hit[0] == version:
                self._items.move_to_end(key)
                return hit[1]
        data = load_outcomes(engine, scope, rules)
        with self._lock:
            self._items[key] = (version, data)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            self.fills += 1
        return data


def load_outcomes(engine: Engine, scope: Scope, rules: FlagRules = FlagRules()) -> OutcomeData:
    """Read and prepare everything for one scope (the slow part: the dose per type groups the sessions)."""
    catalog = measure_thresholds(engine)
    eps = prepare_episodes(outcome_episodes(engine, scope), catalog, rules)
    w = weeks_to_mcid(engine, scope, catalog)
    if len(w):
        w = w.assign(first_mcid_at=_ts(w["first_mcid_at"]))
        eps = eps.merge(w, on="episode_id", how="left")
        eps["weeks_to_mcid"] = (eps["first_mcid_at"].dt.normalize() - eps["start_date"]).dt.days / 7.0
    else:
        eps["first_mcid_at"] = pd.NaT
        eps["weeks_to_mcid"] = np.nan
    dose = episode_type_dose(engine, scope)
    for c in ("done", "minutes"):
        dose[c] = pd.to_numeric(dose[c], errors="coerce").astype(float)
    return OutcomeData(eps, dose, catalog)


# --- filtering and the page's tables (plain functions of DataFrames) ----------------------------------------------
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


@dataclass
class OutcomeView:
    """The filtered episodes and the types they count for: the input of every table and chart on the page."""

    episodes: pd.DataFrame
    types: pd.DataFrame  # episode_id, exercise_type, share, minutes (only episodes in `episodes`)
    catalog: pd.DataFrame
    filters: OutcomeFilters = OutcomeFilters()

    @property
    def n(self) -> int:
        return len(self.episodes)


def outcome_view(data: OutcomeData, filters: OutcomeFilters) -> OutcomeView:
    eps = apply_filters(data.episodes, filters)
    types = data.types(filters.setting)
    types = types[types["episode_id"].isin(eps["episode_id"])]
    return OutcomeView(eps, types, data.catalog, filters)


def responders(df: pd.DataFrame, measure: str) -> dict[str, stats.Proportion | int]:
    """Responder rate for one measure, two ways, with ceiling-effect episodes counted apart.

    - itt: all starters with a baseline (not at the ceiling); a missing follow-up counts as not reached.
    - completers: discharged episodes with a follow-up value (not at the ceiling).
    """
    has_base = df[f"{measure}_baseline"].notna()
    return {
        "itt": stats.wilson(int(df[f"{measure}_itt_k"].sum()), int(df[f"{measure}_itt_n"].sum())),
        "completers": stats.wilson(int(df[f"{measure}_comp_k"].sum()), int(df[f"{measure}_comp_n"].sum())),
        "ceiling": int((has_base & df[f"{measure}_ceiling"]).sum()),
        "no_baseline": int((~has_base).sum()),
        "no_followup": int(((df[f"{measure}_itt_n"] == 1) & df[f"{measure}_change"].isna()).sum()),
    }


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


def summarise(
    df: pd.DataFrame, key: str | pd.Series, measures: Sequence[str] = tuple(MEASURES)
) -> pd.DataFrame:
    """Per group of `key`, vectorised: episodes; per measure n, mean change and 95 % CI (observed cases);
    per responder measure the ITT and completer responder rates (Wilson CI) and ceiling count; median weeks to
    MCID (leg pain, among those who reached it); mean adherence."""
    keys = df[key] if isinstance(key, str) else key
    size = df.groupby(keys, sort=True).size()
    cols: dict[str, Any] = {"episodes": size}
    for m in measures:
        ci = stats.mean_ci_groups(df[f"{m}_change"], keys).reindex(size.index)
        cols[f"{m}_n"] = ci["n"].fillna(0).astype(int)
        for c in ("mean", "lo", "hi"):
            cols[f"{m}_{c}"] = ci[c]
    flags = [
        f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")
    ]
    sums = df[flags].groupby(keys, sort=True).sum().reindex(size.index)
    for m in RESPONDER_MEASURES:
        for kind, short in (("itt", "itt"), ("completers", "comp")):
            k, n = sums[f"{m}_{short}_k"].astype(int), sums[f"{m}_{short}_n"].astype(int)
            p, lo, hi = stats.wilson_arrays(k, n)
            cols |= {f"{m}_{kind}_k": k, f"{m}_{kind}_n": n}
            cols |= {f"{m}_{kind}_rate": p, f"{m}_{kind}_lo": lo, f"{m}_{kind}_hi": hi}
        cols[f"{m}_ceiling"] = sums[f"{m}_ceiling_n"].astype(int)
    extra = df[["weeks_to_mcid", "adherence"]].groupby(keys, sort=True).agg(["count", "median", "mean"])
    extra = extra.reindex(size.index)
    cols["weeks_to_mcid_n"] = extra[("weeks_to_mcid", "count")].fillna(0).astype(int)
    cols["weeks_to_mcid_median"] = extra[("weeks_to_mcid", "median")]
    cols["adherence_mean"] = extra[("adherence", "mean")]
    cols["adherence_n"] = extra[("adherence", "count")].fillna(0).astype(int)
    return pd.DataFrame({k: np.asarray(v) for k, v in cols.items()}, index=size.index)


#: The episode columns `summarise` and the per-type tables read.
SUMMARY_COLUMNS = [
    *(f"{m}_change" for m in MEASURES),
    *(f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")),
    "weeks_to_mcid",
    "adherence",
    "weeks_observed",
]


def _long_by_type(view: OutcomeView) -> pd.DataFrame:
    """One row per (episode, type it counts for): episodes repeat across their types."""
    return view.types[["episode_id", "exercise_type", "minutes"]].merge(
        view.episodes[["episode_id", *SUMMARY_COLUMNS]], on="episode_id"
    )


def type_summary(view: OutcomeView, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per exercise type (and "All episodes" first): n, mean change with 95 % CI per measure, responder
    rates (ITT and completers, Wilson CI), ceiling counts, median weeks to MCID among responders, mean adherence."""
    labels = labels or {}
    all_rows = summarise(view.episodes, pd.Series("", index=view.episodes.index))
    by_type = summarise(_long_by_type(view), "exercise_type")
    out = pd.concat([all_rows, by_type]).rename_axis("type").reset_index()
    out.insert(0, "group", [labels.get(t, t) if t else "All episodes" for t in out["type"]])
    return out


def _type_matrix(view: OutcomeView) -> tuple[pd.DataFrame, list[str]]:
    """The episodes with one 0/1 column per exercise type (prefixed `type__`)."""
    if view.types.empty:
        return view.episodes.copy(), []
    codes = sorted(view.types["exercise_type"].unique())
    cols = [f"type__{c}" for c in codes]
    row = pd.Index(view.episodes["episode_id"]).get_indexer(view.types["episode_id"])
    col = pd.Index(codes).get_indexer(view.types["exercise_type"])
    matrix = np.zeros((len(view.episodes), len(codes)))
    matrix[row[row >= 0], col[row >= 0]] = 1.0
    df = view.episodes.copy()
    df[cols] = matrix
    return df, cols


def adjusted_comparison(
    view: OutcomeView, labels: dict[str, str] | None = None, measures: Sequence[str] = ("pain_leg", "odi")
) -> pd.DataFrame:
    """Unadjusted and risk-adjusted mean change per exercise type, side by side, per measure.

    Adjusted: OLS of the change on every type indicator + the measure's baseline + age + symptom duration +
    adherence (complete cases), as `stats.adjusted_means`.
    """
    labels = labels or {}
    cols = ["measure", "type", "label", "n", "unadjusted", "unadjusted_lo", "unadjusted_hi", "n_model"]
    cols += ["adjusted", "adjusted_lo", "adjusted_hi", "difference", "difference_lo", "difference_hi"]
    df, type_cols = _type_matrix(view)
    if not type_cols:
        return pd.DataFrame(columns=cols)
    long = _long_by_type(view)
    frames = []
    for m in measures:
        df_m = df.assign(baseline=df[f"{m}_baseline"])
        adj = stats.adjusted_means(df_m, f"{m}_change", type_cols, ["baseline", *COVARIATES])
        adj["type"] = adj["type"].str.removeprefix("type__")
        unadj = stats.mean_ci_groups(long[f"{m}_change"], long["exercise_type"])
        t = pd.DataFrame({"type": [c.removeprefix("type__") for c in type_cols]})
        t = t.merge(unadj.rename_axis("type").reset_index(), on="type", how="left")
        t = t.merge(adj, on="type", how="left", suffixes=("", "_adj"))
        frames.append(
            pd.DataFrame(
                {
                    "measure": m,
                    "type": t["type"],
                    "label": [labels.get(x, x) for x in t["type"]],
                    "n": t["n"].fillna(0).astype(int),
                    "unadjusted": t["mean"],
                    "unadjusted_lo": t["lo"],
                    "unadjusted_hi": t["hi"],
                    "n_model": t["n_model"].fillna(0).astype(int),
                    "adjusted": t["adjusted"],
                    "adjusted_lo": t["lo_adj"],
                    "adjusted_hi": t["hi_adj"],
                    "difference": t["coef"],
                    "difference_lo": t["coef_lo"],
                    "difference_hi": t["coef_hi"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[cols]


BENCHMARK_COLUMNS = ["group", "name", "n", "n_model", "adjusted", "adjusted_lo", "adjusted_hi", "observed"]
BENCHMARK_COLUMNS += ["responder_rate", "responder_lo", "responder_hi", "responder_n", "ftp_rate", "ftp_n"]
BENCHMARK_COLUMNS += ["small_n", "rank"]


def benchmarks(view: OutcomeView, by: str, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Therapist (`by="therapist_id"`) or clinic (`"clinic_id"`) benchmarks on leg pain.

    n = episodes; adjusted change = indirect standardisation (overall mean + observed - expected, expected from an
    OLS on baseline, age, symptom duration and adherence); responder rate ITT; failure-to-progress rate = episodes
    past 6 weeks or 8 visits with no MCID on leg pain or ODI, among those past that point. Groups with n below
    MIN_BENCHMARK_N get no rank (`small_n`); the others are ranked by adjusted change (largest drop first).
    """
    names = names or {}
    df = view.episodes.assign(baseline=view.episodes[f"{PRIMARY}_baseline"])
    if df.empty:
        return pd.DataFrame(columns=BENCHMARK_COLUMNS)
    adj = stats.indirect_standardised(df, f"{PRIMARY}_change", by, ["baseline", *COVARIATES]).set_index(
        "group"
    )
    s = summarise(df, by, measures=(PRIMARY,))
    due = df["ftp_due"]
    ftp = (df["failure_to_progress"] & due).groupby(df[by], sort=True).sum()
    ftp_n = due.groupby(df[by], sort=True).sum()
    adj = adj.reindex(s.index)
    out = pd.DataFrame(
        {
            "group": s.index,
            "name": [names.get(g, g) for g in s.index],
            "n": s["episodes"].to_numpy(),
            "n_model": adj["n_model"].fillna(0).astype(int).to_numpy(),
            "adjusted": adj["adjusted"].to_numpy(),
            "adjusted_lo": adj["lo"].to_numpy(),
            "adjusted_hi": adj["hi"].to_numpy(),
            "observed": s[f"{PRIMARY}_mean"].to_numpy(),
            "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
            "responder_lo": s[f"{PRIMARY}_itt_lo"].to_numpy(),
            "responder_hi": s[f"{PRIMARY}_itt_hi"].to_numpy(),
            "responder_n": s[f"{PRIMARY}_itt_n"].to_numpy(),
            "ftp_rate": (ftp / ftp_n.where(ftp_n > 0)).to_numpy(),
            "ftp_n": ftp_n.astype(int).to_numpy(),
        }
    )
    out["small_n"] = out["n"] < MIN_BENCHMARK_N
    rankable = ~out["small_n"] & out["adjusted"].notna()
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    # lower leg pain change = more improvement: rank 1 is the largest drop
    out.loc[rankable, "rank"] = out.loc[rankable, "adjusted"].rank(method="min").astype("Int64")
    return out.sort_values(["small_n", "rank", "group"], na_position="last", ignore_index=True)[
        BENCHMARK_COLUMNS
    ]


def adherence_band(adherence: pd.Series, home_scheduled: pd.Series) -> pd.Series:
    out = pd.Series(NO_HOME, index=adherence.index, dtype=object)
    for name, lo, hi in ADHERENCE_BANDS:
        out[(adherence >= lo - EPS) & (adherence < hi - EPS)] = name
    out[(home_scheduled <= 0) | adherence.isna()] = NO_HOME
    return out


def dose_response(view: OutcomeView, measure: str = PRIMARY) -> pd.DataFrame:
    """Mean change (95 % CI) and ITT responder rate by home-adherence band."""
    df = view.episodes
    order = [b[0] for b in ADHERENCE_BANDS] + [NO_HOME]
    s = summarise(
        df, adherence_band(df["adherence"], df["home_scheduled"]).rename("band"), measures=(measure,)
    )
    s = s.reindex(order)
    return pd.DataFrame(
        {
            "band": order,
            "episodes": s["episodes"].fillna(0).astype(int).to_numpy(),
            "n": s[f"{measure}_n"].fillna(0).astype(int).to_numpy(),
            "mean": s[f"{measure}_mean"].to_numpy(),
            "lo": s[f"{measure}_lo"].to_numpy(),
            "hi": s[f"{measure}_hi"].to_numpy(),
            "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
            "responder_n": s[f"{PRIMARY}_itt_n"].fillna(0).astype(int).to_numpy(),
        }
    )


def dose_by_type(
    view: OutcomeView, labels: dict[str, str] | None = None, measure: str = PRIMARY
) -> pd.DataFrame:
    """Mean change by weekly minutes of each exercise type (minutes of the type / weeks observed, at least 1)."""
    labels = labels or {}
    cols = ["type", "label", "band", "n", "mean", "lo", "hi"]
    if view.types.empty:
        return pd.DataFrame(columns=cols)
    df = _long_by_type(view)
    weekly = df["minutes"] / df["weeks_observed"].clip(lower=1.0)
    band = pd.Series(None, index=df.index, dtype=object)
    for name, lo, hi in WEEKLY_DOSE_BANDS:
        band[(weekly >= lo) & (weekly < hi)] = name
    ci = stats.mean_ci_groups(df[f"{measure}_change"], [df["exercise_type"], band]).reset_index()
    ci.columns = ["type", "band", *ci.columns[2:]]
    full = pd.MultiIndex.from_product(
        [sorted(df["exercise_type"].unique()), [b[0] for b in WEEKLY_DOSE_BANDS]]
    )
    ci = ci.set_index(["type", "band"]).reindex(full).rename_axis(["type", "band"]).reset_index()
    ci["n"] = ci["n"].fillna(0).astype(int)
    ci["label"] = [labels.get(t, t) for t in ci["type"]]
    return ci[cols]


def monthly_trend(view: OutcomeView, measure: str = PRIMARY) -> pd.DataFrame:
    """By month of episode start: episodes, mean change (95 % CI) and ITT responder rate."""
    cols = ["month", "episodes", "n", "mean", "lo", "hi", "responder_rate", "responder_n"]
    if view.episodes.empty:
        return pd.DataFrame(columns=cols)
    s = summarise(view.episodes, "start_month", measures=(measure,))
    return pd.DataFrame(
        {
            "month": s.index,
            "episodes": s["episodes"].to_numpy(),
            "n": s[f"{measure}_n"].to_numpy(),
            "mean": s[f"{measure}_mean"].to_numpy(),
            "lo": s[f"{measure}_lo"].to_numpy(),
            "hi": s[f"{measure}_hi"].to_numpy(),
            "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
            "responder_n": s[f"{PRIMARY}_itt_n"].to_numpy(),
        }
    )


def missing_data(view: OutcomeView) -> pd.DataFrame:
    """Counts behind every rate: starters, completers, still active, dropped out, and per measure: no baseline,
    baseline but no follow-up, ceiling effect (baseline already within the MCID of the best value)."""
    df = view.episodes
    rows = [
        ("All starters (ITT)", len(df)),
        ("Completers (discharged)", int(df["completed"].sum())),
        ("Still in care", int((~df["completed"] & ~df["dropped_out"]).sum())),
        ("Dropped out (no data 14 d, not discharged)", int(df["dropped_out"].sum())),
    ]
    for m, label in MEASURES.items():
        has_base = df[f"{m}_baseline"].notna()
        rows += [
            (f"{label}: no baseline", int((~has_base).sum())),
            (f"{label}: baseline, no follow-up", int((has_base & df[f"{m}_change"].isna()).sum())),
            (f"{label}: ceiling effect (counted apart)", int((has_base & df[f"{m}_ceiling"]).sum())),
        ]
    return pd.DataFrame(rows, columns=["what", "episodes"])


def dropout_by_week(view: OutcomeView, max_week: int = 12) -> pd.DataFrame:
    """Drop-outs by the week of their last activity, and the share of starters not (yet) dropped out."""
    df = view.episodes
    n = len(df)
    weeks = df["dropout_week"].dropna().clip(upper=max_week).astype(int)
    counts = weeks.value_counts().reindex(range(1, max_week + 1), fill_value=0)
    out = pd.DataFrame({"week": counts.index, "dropouts": counts.to_numpy()})
    out["remaining_pct"] = (100.0 * (n - out["dropouts"].cumsum()) / n) if n else np.nan
    return out


def data_quality_counts(view: OutcomeView) -> pd.DataFrame:
    """Episodes (patients) missing a baseline or a follow-up for leg pain and ODI."""
    df = view.episodes
    rows = []
    for m in ("pain_leg", "odi"):
        has_base = df[f"{m}_baseline"].notna()
        rows.append(
            {
                "measure": MEASURES[m],
                "episodes": len(df),
                "patients_missing_baseline": int(df.loc[~has_base, "patient_id"].nunique()),
                "patients_missing_followup": int(
                    df.loc[has_base & df[f"{m}_change"].isna(), "patient_id"].nunique()
                ),
            }
        )
    return pd.DataFrame(rows)


def scatter_points(view: OutcomeView, measure: str = PRIMARY, max_points: int = 3000) -> pd.DataFrame:
    """Adherence vs change (complete pairs); a deterministic sample when there are more than `max_points`."""
    df = view.episodes[["episode_id", "adherence", f"{measure}_change"]].dropna()
    df = df.rename(columns={f"{measure}_change": "change"})
    if len(df) > max_points:
        df = df.sample(max_points, random_state=0)
    return df


def recovery_bands(scores_df: pd.DataFrame, max_week: int = 16) -> pd.DataFrame:
    """25/50/75th percentiles of the measure by week since the episode start (weeks with >= 5 values)."""
    df = scores_df[scores_df["week"].between(0, max_week)]
    return stats.percentile_bands(df, "week", "value")


__all__ = [
    "OutcomeFilters",
    "OutcomeCache",
    "OutcomeData",
    "OutcomeView",
    "outcome_episodes",
    "episode_type_dose",
    "episode_types",
    "weeks_to_mcid",
    "warehouse_version",
    "recovery_scores",
    "etl_batch_rows",
    "reject_reasons",
    "load_outcomes",
    "prepare_episodes",
    "apply_filters",
    "outcome_view",
    "responders",
    "type_summary",
    "adjusted_comparison",
    "benchmarks",
    "dose_response",
    "dose_by_type",
    "monthly_trend",
    "missing_data",
    "dropout_by_week",
    "data_quality_counts",
    "scatter_points",
    "recovery_bands",
]
