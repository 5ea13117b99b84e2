"""One patient's rows, read through the natural-key indexes and always joined to `patients` under the scope.

A patient outside the viewer's scope gives exactly the same empty results as an unknown id.
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from dashboard.queries import catalog as qc
from dashboard.queries import read_frame
from dashboard.scope import Scope, scope_clause
from warehouse.schema import (
    clinics,
    episode_measure_summary,
    episode_summary,
    measures,
    patients,
    scores,
    sessions,
    therapists,
)

T = TypeVar("T")

#: Seconds the catalogs stay cached per process. They are reference data (no patient rows, not scoped) that change
#: with `etl init` or a clinic's own catalog edit; every patient page load read them, ~1 ms of its ~10 ms budget.
REFERENCE_TTL_S = 60.0
_reference: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, Any]]] = weakref.WeakKeyDictionary()


def _cached(engine: Engine, name: str, load: Callable[[Engine], T]) -> T:
    """`load(engine)`, reused for REFERENCE_TTL_S seconds per engine and name."""
    now = time.monotonic()
    per_engine = _reference.setdefault(engine, {})
    hit = per_engine.get(name)
    if hit is not None and now - hit[0] < REFERENCE_TTL_S:
        return hit[1]
    value = load(engine)
    per_engine[name] = (now, value)
    return value


def chart_catalog(engine: Engine) -> pd.DataFrame:
    """The measures catalog (`catalog.measures_catalog`), cached: callers must not modify the frame."""
    return _cached(engine, "measures", lambda e: qc.measures_catalog(e))


def exercise_type_names(engine: Engine) -> dict[str, str]:
    """Exercise type code -> label (`catalog.exercise_type_labels`), cached: callers must not modify the dict."""
    return _cached(engine, "exercise_types", lambda e: qc.exercise_type_labels(e))


def _in_scope(scope: Scope, patient_id: str):
    """The condition that `patients` is this patient and the viewer may see them."""
    return and_(patients.c.patient_id == patient_id, scope_clause(scope, patients))


def patient_profile(engine: Engine, scope: Scope, patient_id: str) -> pd.DataFrame:
    """Zero or one row: who the patient is, their clinic and therapist. Empty when unknown or out of scope."""
    stmt = (
        select(
            patients.c.patient_id,
            patients.c.first_name,
            patients.c.last_name,
            patients.c.birth_year,
            patients.c.sex,
            patients.c.clinic_id,
            clinics.c.name.label("clinic_name"),
            patients.c.therapist_id,
            therapists.c.name.label("therapist_name"),
        )
        .select_from(
            patients.outerjoin(clinics, clinics.c.clinic_id == patients.c.clinic_id).outerjoin(
                therapists, therapists.c.therapist_id == patients.c.therapist_id
            )
        )
        .where(_in_scope(scope, patient_id))
    )
    return read_frame(engine, stmt)


def patient_episodes(engine: Engine, scope: Scope, patient_id: str) -> pd.DataFrame:
    """The patient's episode summaries, newest first."""
    es = episode_summary
    stmt = (
        select(
            es.c.episode_id,
            es.c.start_date,
            es.c.end_date,
            es.c.is_active,
            es.c.visits,
            es.c.home_scheduled,
            es.c.home_done,
            es.c.adherence,
            es.c.home_scheduled_14d,
            es.c.home_done_14d,
            es.c.adherence_14d,
            es.c.first_activity,
            es.c.last_activity,
            es.c.as_of,
        )
        .select_from(es.join(patients, patients.c.patient_id == es.c.patient_id))
        .where(es.c.patient_id == patient_id, _in_scope(scope, patient_id))
        .order_by(es.c.start_date.desc(), es.c.episode_id.desc())
    )
    return read_frame(engine, stmt)


def episode_measures(engine: Engine, scope: Scope, patient_id: str, episode_id: int) -> pd.DataFrame:
    """Baseline, latest and change per measure for one episode of the patient, with the catalog's thresholds."""
    ems = episode_measure_summary
    stmt = (
        select(
            ems.c.measure,
            measures.c.label,
            measures.c.unit,
            measures.c.better,
            measures.c.mcid_abs,
            measures.c.mcid_pct,
            measures.c.threshold_kind,
            ems.c.n_values,
            ems.c.baseline_value,
            ems.c.baseline_at,
            ems.c.latest_value,
            ems.c.latest_at,
            ems.c.change,
            ems.c.pct_change,
            ems.c.improvement,
            ems.c.mcid_reached,
            ems.c.worsened,
        )
        .select_from(
            ems.join(patients, patients.c.patient_id == ems.c.patient_id).join(
                measures, measures.c.code == ems.c.measure
            )
        )
        .where(ems.c.episode_id == episode_id, ems.c.patient_id == patient_id, _in_scope(scope, patient_id))
        .order_by(measures.c.sort_order)
    )
    return read_frame(engine, stmt)


def _day_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def patient_scores(
    engine: Engine,
    scope: Scope,
    patient_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Every measurement of the patient in [start, end] (dates inclusive), oldest first."""
    stmt = (
        select(scores.c.measure, scores.c.recorded_at, scores.c.side, scores.c.value)
        .select_from(scores.join(patients, patients.c.patient_id == scores.c.patient_id))
        .where(scores.c.patient_id == patient_id, _in_scope(scope, patient_id))
    )
    if start is not None:
        stmt = stmt.where(scores.c.recorded_at >= dt.datetime.combine(start, dt.time()))
    if end is not None:
        stmt = stmt.where(scores.c.recorded_at < _day_after(end))
    return read_frame(engine, stmt.order_by(scores.c.measure, scores.c.recorded_at))


def patient_sessions(
    engine: Engine,
    scope: Scope,
    patient_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Every logged exercise (clinic and home) of the patient in [start, end], oldest first."""
    s = sessions
    stmt = (
        select(
            s.c.session_date,
            s.c.setting,
            s.c.exercise,
            s.c.exercise_type,
            s.c.status,
            s.c.sets,
            s.c.reps,
            s.c.duration_min,
            s.c.prescribed_sets,
            s.c.prescribed_reps,
            s.c.prescribed_min,
            s.c.pain_during,
            s.c.skip_reason,
        )
        .select_from(s.join(patients, patients.c.patient_id == s.c.patient_id))
        .where(s.c.patient_id == patient_id, _in_scope(scope, patient_id))
    )
    if start is not None:
        stmt = stmt.where(s.c.session_date >= start)
    if end is not None:
        stmt = stmt.where(s.c.session_date <= end)
    return read_frame(engine, stmt.order_by(s.c.session_date, s.c.setting, s.c.exercise))


def patient_date_span(engine: Engine, scope: Scope, patient_id: str) -> tuple[dt.date | None, dt.date | None]:
    """First and last day anything was recorded for the patient (scores or sessions); (None, None) if nothing."""
    first_score = (
        select(func.min(scores.c.recorded_at), func.max(scores.c.recorded_at))
        .select_from(scores.join(patients, patients.c.patient_id == scores.c.patient_id))
        .where(scores.c.patient_id == patient_id, _in_scope(scope, patient_id))
    )
    first_session = (
        select(func.min(sessions.c.session_date), func.max(sessions.c.session_date))
        .select_from(sessions.join(patients, patients.c.patient_id == sessions.c.patient_id))
        .where(sessions.c.patient_id == patient_id, _in_scope(scope, patient_id))
    )
    with engine.connect() as conn:
        s_min, s_max = conn.execute(first_score).one()
        x_min, x_max = conn.execute(first_session).one()
    days = [
        v.date() if isinstance(v, dt.datetime) else v for v in (s_min, s_max, x_min, x_max) if v is not None
    ]
    return (min(days), max(days)) if days else (None, None)
