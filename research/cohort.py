"""Cohort definitions: a versioned JSON document, and the pure functions that evaluate one against a warehouse.

    definition = CohortDefinition.from_json(text)       # or CohortDefinition(...) in code
    ids = select_cohort(engine, definition)             # DataFrame with one column, episode_id, sorted
    flow = exclusion_flow(engine, definition)           # warehouse -> started -> with baseline -> ... -> in cohort
    t1 = table_one(engine, definition)                  # baseline characteristics split by exercise type

Every function takes the engine and the definition and returns a DataFrame, so a dashboard page can call them as
they are. All SQL is SQLAlchemy Core with bound parameters; it runs on SQLite and PostgreSQL alike.

Meanings (see docs/research.md):
- age is the start year of the episode minus the birth year (no birthday is stored), banded by AGE_BANDS;
- symptom duration is (episode start - symptom onset) in weeks; episodes without an onset fail a duration filter;
- an exercise type was *received* when the episode has a completed or partial session of that type between its
  start and its end (or without an end, any later session);
- baseline and follow-up refer to the definition's primary measure (default leg pain) in episode_measure_summary:
  follow-up weeks = (latest measurement - baseline measurement) / 7.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, cast, exists, func, or_, select
from sqlalchemy.types import DateTime

from warehouse.schema import (
    episode_measure_summary,
    episode_summary,
    episodes,
    exercise_types,
    measures,
    patients,
    sessions,
)

SCHEMA_VERSION = 1

#: Ten-year age bands at the episode start; ages over 89 are one band (HIPAA Safe Harbor).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-17", 0, 17),
    ("18-29", 18, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60-69", 60, 69),
    ("70-79", 70, 79),
    ("80-89", 80, 89),
    ("90+", 90, None),
)
AGE_BAND_NAMES = tuple(b[0] for b in AGE_BANDS)
SEXES = ("F", "M", "X", "U")
POPULATIONS = ("all_starters", "completers")
MATCHES = ("any", "all")
RECEIVED_STATUSES = ("completed", "partial")


class CohortError(ValueError):
    """A cohort definition that cannot be used; the message names the field."""


def age_band(age: float | None) -> str | None:
    """The AGE_BANDS label for an age in years (None stays None)."""
    if age is None or (isinstance(age, float) and math.isnan(age)):
        return None
    for name, lo, hi in AGE_BANDS:
        if age >= lo and (hi is None or age <= hi):
            return name
    return AGE_BANDS[0][0]


# --- the definition ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """Inclusive bounds; None is open."""

    min: float | None = None
    max: float | None = None

    @property
    def is_set(self) -> bool:
        return self.min is not None or self.max is not None


@dataclass(frozen=True)
class DateRange:
    """Inclusive episode start dates; None is open."""

    start: date | None = None  # JSON "from"
    end: date | None = None  # JSON "to"

    @property
    def is_set(self) -> bool:
        return self.start is not None or self.end is not None


@dataclass(frozen=True)
class CohortDefinition:
    """Which episodes a study takes. Empty lists and unset ranges mean "no restriction"."""

    name: str = ""
    description: str = ""
    episode_start: DateRange = field(default_factory=DateRange)
    age_bands: tuple[str, ...] = ()
    sexes: tuple[str, ...] = ()
    clinics: tuple[str, ...] = ()
    baseline_pain_leg: Range = field(default_factory=Range)
    baseline_odi: Range = field(default_factory=Range)
    symptom_duration_weeks: Range = field(default_factory=Range)
    exercise_types: tuple[str, ...] = ()
    exercise_types_match: str = "any"
    min_adherence: float | None = None
    min_followup_weeks: float | None = None
    population: str = "all_starters"
    primary_measure: str = "pain_leg"
    require_baseline: bool = True

    def __post_init__(self) -> None:
        for name in ("age_bands", "sexes", "clinics", "exercise_types"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise CohortError(f"filters.{name}: expected a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        self.validate()

    # -- validation -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise CohortError naming the first field that is wrong."""
        _check_list("age_bands", self.age_bands, AGE_BAND_NAMES)
        _check_list("sexes", self.sexes, SEXES)
        _check_list("clinics", self.clinics, None)
        _check_list("exercise_types", self.exercise_types, None)
        if self.exercise_types_match not in MATCHES:
            raise CohortError(
                f"filters.exercise_types.match: expected one of {MATCHES}, got {self.exercise_types_match!r}"
            )
        if self.population not in POPULATIONS:
            raise CohortError(f"filters.population: expected one of {POPULATIONS}, got {self.population!r}")
        d = self.episode_start
        if d.start and d.end and d.start > d.end:
            raise CohortError(f"filters.episode_start: 'from' {d.start} is after 'to' {d.end}")
        for name, lo, hi in (
            ("baseline_pain_leg", 0, 10),
            ("baseline_odi", 0, 100),
            ("symptom_duration_weeks", 0, None),
        ):
            _check_range(name, getattr(self, name), lo, hi)
        if self.min_adherence is not None and not (
            _is_number(self.min_adherence) and 0 <= self.min_adherence <= 1
        ):
            raise CohortError(f"filters.min_adherence: expected a fraction 0-1, got {self.min_adherence!r}")
        if self.min_followup_weeks is not None and not (
            _is_number(self.min_followup_weeks) and self.min_followup_weeks >= 0
        ):
            raise CohortError(
                f"filters.min_followup_weeks: expected a number >= 0, got {self.min_followup_weeks!r}"
            )
        if not isinstance(self.primary_measure, str) or not self.primary_measure:
            raise CohortError(
                f"outcome.primary_measure: expected a measure code, got {self.primary_measure!r}"
            )
        if not isinstance(self.require_baseline, bool):
            raise CohortError(
                f"outcome.require_baseline: expected true or false, got {self.require_baseline!r}"
            )
        if self.min_followup_weeks is not None and not self.require_baseline:
            raise CohortError(
                "filters.min_followup_weeks: follow-up is measured from the baseline; "
                "it needs outcome.require_baseline = true"
            )

    # -- JSON -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def rng(r: Range) -> dict[str, Any]:
            return {"min": r.min, "max": r.max}

        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "filters": {
                "episode_start": {
                    "from": self.episode_start.start.isoformat() if self.episode_start.start else None,
                    "to": self.episode_start.end.isoformat() if self.episode_start.end else None,
                },
                "age_bands": list(self.age_bands),
                "sexes": list(self.sexes),
                "clinics": list(self.clinics),
                "baseline_pain_leg": rng(self.baseline_pain_leg),
                "baseline_odi": rng(self.baseline_odi),
                "symptom_duration_weeks": rng(self.symptom_duration_weeks),
                "exercise_types": {"match": self.exercise_types_match, "codes": list(self.exercise_types)},
                "min_adherence": self.min_adherence,
                "min_followup_weeks": self.min_followup_weeks,
                "population": self.population,
            },
            "outcome": {"primary_measure": self.primary_measure, "require_baseline": self.require_baseline},
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, 2-space indent, trailing newline): same definition, same bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, doc: Any) -> CohortDefinition:
        if not isinstance(doc, dict):
            raise CohortError("a cohort definition is a JSON object")
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise CohortError(
                f"schema_version: this software reads version {SCHEMA_VERSION}, got {version!r}"
            )
        _no_unknown("", doc, {"schema_version", "name", "description", "filters", "outcome"})
        f = doc.get("filters") or {}
        o = doc.get("outcome") or {}
        if not isinstance(f, dict) or not isinstance(o, dict):
            raise CohortError("filters and outcome must be JSON objects")
        _no_unknown("filters.", f, {
            "episode_start", "age_bands", "sexes", "clinics", "baseline_pain_leg", "baseline_odi",
            "symptom_duration_weeks", "exercise_types", "min_adherence", "min_followup_weeks", "population",
        })  # fmt: skip
        _no_unknown("outcome.", o, {"primary_measure", "require_baseline"})
        es = f.get("episode_start") or {}
        _no_unknown("filters.episode_start.", es, {"from", "to"})
        ex = f.get("exercise_types") or {}
        if isinstance(ex, list):  # shorthand: a plain list means "any of"
            ex = {"codes": ex}
        _no_unknown("filters.exercise_types.", ex, {"match", "codes"})
        return cls(
            name=_text("name", doc.get("name", "")),
            description=_text("description", doc.get("description", "")),
            episode_start=DateRange(
                _date("filters.episode_start.from", es.get("from")),
                _date("filters.episode_start.to", es.get("to")),
            ),
            age_bands=f.get("age_bands") or [],
            sexes=f.get("sexes") or [],
            clinics=f.get("clinics") or [],
            baseline_pain_leg=_range("filters.baseline_pain_leg", f.get("baseline_pain_leg")),
            baseline_odi=_range("filters.baseline_odi", f.get("baseline_odi")),
            symptom_duration_weeks=_range("filters.symptom_duration_weeks", f.get("symptom_duration_weeks")),
            exercise_types=ex.get("codes") or [],
            exercise_types_match=ex.get("match", "any"),
            min_adherence=f.get("min_adherence"),
            min_followup_weeks=f.get("min_followup_weeks"),
            population=f.get("population", "all_starters"),
            primary_measure=o.get("primary_measure", "pain_leg"),
            require_baseline=o.get("require_baseline", True),
        )

    @classmethod
    def from_json(cls, text: str) -> CohortDefinition:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CohortError(f"not valid JSON: {exc}") from None
        return cls.from_dict(doc)

    def replace(self, **changes: Any) -> CohortDefinition:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values.update(changes)
        return CohortDefinition(**values)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _no_unknown(prefix: str, obj: Any, allowed: set[str]) -> None:
    if not isinstance(obj, dict):
        raise CohortError(f"{prefix.rstrip('.') or 'definition'}: expected a JSON object, got {obj!r}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise CohortError(f"{prefix}{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _text(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise CohortError(f"{name}: expected a string, got {v!r}")
    return v


def _date(name: str, v: Any) -> date | None:
    if v is None:
        return None
    try:
        return date.fromisoformat(v)
    except (TypeError, ValueError):
        raise CohortError(f"{name}: expected a date YYYY-MM-DD or null, got {v!r}") from None


def _range(name: str, v: Any) -> Range:
    if v is None:
        return Range()
    _no_unknown(name + ".", v, {"min", "max"})
    for key in ("min", "max"):
        if v.get(key) is not None and not _is_number(v[key]):
            raise CohortError(f"{name}.{key}: expected a number or null, got {v[key]!r}")
    return Range(v.get("min"), v.get("max"))


def _check_list(name: str, values: tuple, allowed: tuple[str, ...] | None) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v:
            raise CohortError(f"filters.{name}[{i}]: expected a non-empty string, got {v!r}")
        if allowed is not None and v not in allowed:
            raise CohortError(f"filters.{name}[{i}]: unknown value {v!r} (allowed: {', '.join(allowed)})")
    if len(set(values)) != len(values):
        raise CohortError(f"filters.{name}: a value is listed twice")


def _check_range(name: str, r: Range, lo: float, hi: float | None) -> None:
    for key in ("min", "max"):
        v = getattr(r, key)
        if v is None:
            continue
        if not _is_number(v) or v < lo or (hi is not None and v > hi):
            bounds = f"{lo}-{hi}" if hi is not None else f">= {lo}"
            raise CohortError(f"filters.{name}.{key}: expected a number {bounds}, got {v!r}")
    if r.min is not None and r.max is not None and r.min > r.max:
        raise CohortError(f"filters.{name}: min {r.min} is greater than max {r.max}")


# --- SQL --------------------------------------------------------------------------------------------------------
def _days_between(dialect: str, later, earlier):
    """Days from `earlier` to `later` (dates or timestamps) as a number, on either backend."""
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", cast(later, DateTime) - cast(earlier, DateTime)) / 86400.0


def _age_expr():
    return func.extract("year", episodes.c.start_date) - patients.c.birth_year


@dataclass(frozen=True)
class _Stages:
    """The query's FROM clause and its conditions grouped by exclusion-flow step."""

    base: Any  # a select of episode ids with the joins every step needs
    started: list
    baseline: list
    followup: list
    rest: list


def _stages(engine: Engine, d: CohortDefinition) -> _Stages:
    dialect = engine.dialect.name
    prim = episode_measure_summary.alias("prim")
    leg = episode_measure_summary.alias("base_leg")
    odi = episode_measure_summary.alias("base_odi")
    e, p, s = episodes, patients, episode_summary
    base = select(e.c.episode_id).select_from(
        e.join(p, p.c.patient_id == e.c.patient_id)
        .outerjoin(s, s.c.episode_id == e.c.episode_id)
        .outerjoin(prim, and_(prim.c.episode_id == e.c.episode_id, prim.c.measure == d.primary_measure))
        .outerjoin(leg, and_(leg.c.episode_id == e.c.episode_id, leg.c.measure == "pain_leg"))
        .outerjoin(odi, and_(odi.c.episode_id == e.c.episode_id, odi.c.measure == "odi"))
    )

    started: list = []
    if d.episode_start.start:
        started.append(e.c.start_date >= d.episode_start.start)
    if d.episode_start.end:
        started.append(e.c.start_date <= d.episode_start.end)
    if d.age_bands:
        age = _age_expr()
        parts = []
        for name, lo, hi in AGE_BANDS:
            if name in d.age_bands:
                parts.append(age >= lo if hi is None else age.between(lo, hi))
        started.append(or_(*parts))
    if d.sexes:
        started.append(p.c.sex.in_(d.sexes))
    if d.clinics:
        started.append(p.c.clinic_id.in_(d.clinics))
    if d.symptom_duration_weeks.is_set:
        weeks = _days_between(dialect, e.c.start_date, e.c.symptom_onset) / 7.0
        started.append(e.c.symptom_onset.is_not(None))
        if d.symptom_duration_weeks.min is not None:
            started.append(weeks >= d.symptom_duration_weeks.min)
        if d.symptom_duration_weeks.max is not None:
            started.append(weeks <= d.symptom_duration_weeks.max)

    baseline: list = []
    if d.require_baseline:
        baseline.append(prim.c.baseline_value.is_not(None))
    for r, alias in ((d.baseline_pain_leg, leg), (d.baseline_odi, odi)):
        if r.is_set:
            baseline.append(alias.c.baseline_value.is_not(None))
            if r.min is not None:
                baseline.append(alias.c.baseline_value >= r.min)
            if r.max is not None:
                baseline.append(alias.c.baseline_value <= r.max)

    followup: list = []
    if d.min_followup_weeks is not None:
        followup.append(prim.c.latest_at > prim.c.baseline_at)
        if d.min_followup_weeks > 0:
            span = _days_between(dialect, prim.c.latest_at, prim.c.baseline_at)
            followup.append(span >= d.min_followup_weeks * 7)

    rest: list = []
    if d.population == "completers":
        rest.append(e.c.end_date.is_not(None))
    if d.min_adherence is not None:
        rest.append(s.c.adherence >= d.min_adherence)
    if d.exercise_types:

        def received(codes):
            return exists(
                select(sessions.c.session_id).where(
                    sessions.c.patient_id == e.c.patient_id,
                    sessions.c.exercise_type.in_(codes),
                    sessions.c.status.in_(RECEIVED_STATUSES),
                    sessions.c.session_date >= e.c.start_date,
                    or_(e.c.end_date.is_(None), sessions.c.session_date <= e.c.end_date),
                )
            )

        if d.exercise_types_match == "any":
            rest.append(received(list(d.exercise_types)))
        else:
            rest.extend(received([code]) for code in d.exercise_types)
    return _Stages(base, started, baseline, followup, rest)


def check_against_catalog(engine: Engine, d: CohortDefinition) -> None:
    """Raise CohortError when the definition names an exercise type or measure the warehouse does not know."""
    with engine.connect() as conn:
        types = set(conn.execute(select(exercise_types.c.code)).scalars())
        codes = set(conn.execute(select(measures.c.code)).scalars())
    for i, t in enumerate(d.exercise_types):
        if t not in types:
            raise CohortError(f"filters.exercise_types.codes[{i}]: unknown exercise type {t!r}")
    if d.primary_measure not in codes:
        raise CohortError(f"outcome.primary_measure: unknown measure {d.primary_measure!r}")


def cohort_query(engine: Engine, d: CohortDefinition):
    """The statement selecting the cohort's episode ids (ordered), for callers that stream from it."""
    st = _stages(engine, d)
    conds = st.started + st.baseline + st.followup + st.rest
    q = st.base.where(*conds) if conds else st.base
    return q.order_by(episodes.c.episode_id)


def select_cohort(engine: Engine, definition: CohortDefinition) -> pd.DataFrame:
    """The cohort's episodes: a DataFrame with one int column `episode_id`, in ascending order."""
    check_against_catalog(engine, definition)
    with engine.connect() as conn:
        ids = conn.execute(cohort_query(engine, definition)).scalars().all()
    return pd.DataFrame({"episode_id": pd.Series(ids, dtype="int64")})


FLOW_STEPS = ("episodes in warehouse", "started", "with baseline", "with follow-up", "in cohort")


def exclusion_flow(engine: Engine, definition: CohortDefinition) -> pd.DataFrame:
    """Counts after each step: `step`, `episodes`, `patients`, `excluded` (episodes lost at this step).

    started = start range, age band, sex, clinic and symptom duration; with baseline = the primary measure has a
    baseline (when required) and the baseline pain/ODI ranges hold; with follow-up = the follow-up requirement;
    in cohort = completers, adherence and exercise types.
    """
    check_against_catalog(engine, definition)
    st = _stages(engine, definition)
    groups = [[], st.started, st.baseline, st.followup, st.rest]
    rows = []
    conds: list = []
    with engine.connect() as conn:
        for step, extra in zip(FLOW_STEPS, groups, strict=True):
            conds = conds + extra
            q = st.base.add_columns(episodes.c.patient_id)
            q = q.where(*conds) if conds else q
            sub = q.subquery()
            n_ep, n_pat = conn.execute(select(func.count(), func.count(sub.c.patient_id.distinct()))).one()
            rows.append({"step": step, "episodes": int(n_ep), "patients": int(n_pat)})
    out = pd.DataFrame(rows)
    out["excluded"] = (out["episodes"].shift(1) - out["episodes"]).fillna(0).astype(int)
    return out


# --- describing a cohort ----------------------------------------------------------------------------------------
def cohort_frame(engine: Engine, definition: CohortDefinition) -> pd.DataFrame:
    """One row per cohort episode with its baseline characteristics and the exercise types it received
    (`types`, a sorted tuple). The input of table_one, and handy for a page's charts."""
    check_against_catalog(engine, definition)
    dialect = engine.dialect.name
    ids = cohort_query(engine, definition).subquery()
    e, p, s = episodes, patients, episode_summary
    cols = [
        e.c.episode_id,
        e.c.patient_id,
        (_age_expr()).label("age"),
        p.c.sex,
        p.c.clinic_id,
        e.c.side,
        (e.c.end_date.is_not(None)).label("completed"),
        (_days_between(dialect, e.c.start_date, e.c.symptom_onset) / 7.0).label("symptom_weeks"),
        s.c.adherence,
        s.c.visits,
    ]
    baseline_measures = ("pain_leg", "pain_back", "numbness", "odi")
    joins = e.join(ids, ids.c.episode_id == e.c.episode_id).join(p, p.c.patient_id == e.c.patient_id)
    joins = joins.outerjoin(s, s.c.episode_id == e.c.episode_id)
    for code in baseline_measures:
        a = episode_measure_summary.alias(f"b_{code}")
        joins = joins.outerjoin(a, and_(a.c.episode_id == e.c.episode_id, a.c.measure == code))
        cols.append(a.c.baseline_value.label(f"baseline_{code}"))
    q = select(*cols).select_from(joins).order_by(e.c.episode_id)
    types_q = (
        select(e.c.episode_id, sessions.c.exercise_type)
        .select_from(
            e.join(ids, ids.c.episode_id == e.c.episode_id).join(
                sessions,
                and_(
                    sessions.c.patient_id == e.c.patient_id,
                    sessions.c.status.in_(RECEIVED_STATUSES),
                    sessions.c.session_date >= e.c.start_date,
                    or_(e.c.end_date.is_(None), sessions.c.session_date <= e.c.end_date),
                ),
            )
        )
        .distinct()
    )
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=[c.name for c in q.selected_columns])
        tp = pd.DataFrame(conn.execute(types_q).all(), columns=["episode_id", "exercise_type"])
    for c in ("age", "symptom_weeks", "adherence", "visits", *(f"baseline_{m}" for m in baseline_measures)):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["completed"] = df["completed"].astype(bool)
    df["age_band"] = [age_band(a) for a in df["age"]]
    types = tp.groupby("episode_id")["exercise_type"].agg(lambda x: tuple(sorted(x)))
    df["types"] = [types.get(i, ()) for i in df["episode_id"]]
    return df


def _mean_sd(x: pd.Series) -> str:
    x = x.dropna()
    if x.empty:
        return "-"
    sd = x.std(ddof=1) if len(x) > 1 else float("nan")
    return f"{x.mean():.1f} ({sd:.1f})" if not np.isnan(sd) else f"{x.mean():.1f}"


def _median_iqr(x: pd.Series) -> str:
    x = x.dropna()
    if x.empty:
        return "-"
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return f"{q2:.1f} [{q1:.1f}-{q3:.1f}]"


def _pct(mask: pd.Series, n: int) -> str:
    k = int(mask.sum())
    return f"{k} ({100 * k / n:.0f}%)" if n else "-"


def table_one(engine: Engine, definition: CohortDefinition) -> pd.DataFrame:
    """Baseline characteristics: columns `characteristic`, `statistic`, `All`, then one per exercise type received
    (episodes can receive several types, so the type columns overlap). Cells are display strings."""
    df = cohort_frame(engine, definition)
    with engine.connect() as conn:
        labels = dict(conn.execute(select(exercise_types.c.code, exercise_types.c.label)).all())
    groups: dict[str, pd.DataFrame] = {"All": df}
    present = sorted({t for ts in df["types"] for t in ts})
    for code in present:
        groups[labels.get(code, code)] = df[[code in ts for ts in df["types"]]]

    spec: list[tuple[str, str, Any]] = [
        ("Episodes", "n", lambda g: str(len(g))),
        ("Patients", "n", lambda g: str(g["patient_id"].nunique())),
        ("Age, years", "mean (SD)", lambda g: _mean_sd(g["age"])),
    ]
    for b in AGE_BAND_NAMES:
        if (df["age_band"] == b).any():
            spec.append((f"Age {b}", "n (%)", lambda g, b=b: _pct(g["age_band"] == b, len(g))))
    for x in SEXES:
        if (df["sex"] == x).any():
            spec.append((f"Sex {x}", "n (%)", lambda g, x=x: _pct(g["sex"] == x, len(g))))
    spec += [
        ("Leg pain (0-10)", "mean (SD)", lambda g: _mean_sd(g["baseline_pain_leg"])),
        ("Back pain (0-10)", "mean (SD)", lambda g: _mean_sd(g["baseline_pain_back"])),
        ("Numbness (0-10)", "mean (SD)", lambda g: _mean_sd(g["baseline_numbness"])),
        ("ODI (0-100)", "mean (SD)", lambda g: _mean_sd(g["baseline_odi"])),
        ("Symptom duration, weeks", "median [IQR]", lambda g: _median_iqr(g["symptom_weeks"])),
        ("Home adherence", "median [IQR]", lambda g: _median_iqr(g["adherence"])),
        ("Clinic visits", "median [IQR]", lambda g: _median_iqr(g["visits"])),
        ("Completed (discharged)", "n (%)", lambda g: _pct(g["completed"], len(g))),
    ]
    rows = []
    for label, stat, fn in spec:
        row = {"characteristic": label, "statistic": stat}
        for name, g in groups.items():
            row[name] = fn(g)
        rows.append(row)
    return pd.DataFrame(rows, columns=["characteristic", "statistic", *groups])


__all__ = [
    "AGE_BANDS",
    "CohortDefinition",
    "CohortError",
    "DateRange",
    "Range",
    "age_band",
    "cohort_frame",
    "cohort_query",
    "exclusion_flow",
    "select_cohort",
    "table_one",
]
