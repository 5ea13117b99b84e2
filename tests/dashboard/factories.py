"""Test data as code: a small warehouse whose every row is written here, so each assertion can be traced to it.

Clinics C1 (therapists T1, T2) and C2 (T3). Summary rows are written as the ETL would fill them (the marts are
the dashboard's contract), as of AS_OF.

| patient | therapist | story                                                                 |
|---------|-----------|-----------------------------------------------------------------------|
| P1      | T1        | improving: leg pain 7 -> 3 (MCID), ODI 40 -> 20, adherent, many rows    |
| P2      | T1        | worsening: leg pain up exactly 2 (the MCID), adherence 14 d 50 %       |
| P3      | T2        | one score only, no baseline, no sessions                               |
| P4      | T3 (C2)   | day 50, 9 visits, no MCID, nothing for 20 days                         |
| P5      | T1        | discharged: not on the caseload, but its page opens                   |
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, insert

from etl.summary import sync_wide_measures
from warehouse.schema import (
    clinics,
    episode_measure_summary,
    episode_summary,
    episodes,
    etl_batches,
    exercises,
    patients,
    scores,
    sessions,
    therapists,
)

AS_OF = dt.date(2024, 3, 31)
REFRESHED = dt.datetime(2024, 3, 31, 23, 0)

EXERCISES = {
    "bird dog": "core_strengthening",
    "glute bridge": "glute_strengthening",
    "sciatic nerve glide": "nerve_mobilization",
    "piriformis stretch": "stretching",
    "soft tissue mobilisation": "manual_therapy",
}


def d(days_before_as_of: int) -> dt.date:
    return AS_OF - dt.timedelta(days=days_before_as_of)


def at(days_before_as_of: int, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(d(days_before_as_of), dt.time(hour))


def _summary(
    episode_id: int,
    patient_id: str,
    clinic_id: str,
    therapist_id: str,
    start: dt.date,
    **kw: Any,
) -> dict[str, Any]:
    row = {
        "episode_id": episode_id,
        "patient_id": patient_id,
        "clinic_id": clinic_id,
        "therapist_id": therapist_id,
        "start_date": start,
        "end_date": None,
        "is_active": True,
        "visits": 0,
        "home_scheduled": 0,
        "home_done": 0.0,
        "adherence": None,
        "home_scheduled_14d": 0,
        "home_done_14d": 0.0,
        "adherence_14d": None,
        "first_activity": None,
        "last_activity": None,
        "as_of": AS_OF,
        "refreshed_at": REFRESHED,
    }
    row.update(kw)
    return row


def _ms(episode_id: int, patient_id: str, measure: str, baseline: float | None, latest: float | None, **kw):
    better_lower = measure in ("pain_leg", "pain_back", "numbness", "odi")
    change = None if baseline is None or latest is None else latest - baseline
    improvement = None if change is None else (-change if better_lower else change)
    row = {
        "episode_id": episode_id,
        "measure": measure,
        "patient_id": patient_id,
        "n_values": kw.pop("n_values", 2),
        "baseline_value": baseline,
        "baseline_at": kw.pop("baseline_at", None),
        "latest_value": latest,
        "latest_at": kw.pop("latest_at", None),
        "change": change,
        "pct_change": None if change is None or not baseline else change / baseline * 100,
        "improvement": improvement,
        "mcid_reached": kw.pop("mcid_reached", None),
        "worsened": kw.pop("worsened", None),
    }
    row.update(kw)
    return row


def build(engine: Engine) -> None:
    """Fill a freshly migrated warehouse with the five patients above."""
    with engine.begin() as conn:
        conn.execute(
            insert(etl_batches).values(
                batch_id=1,
                file_name="fixtures.py",
                sha256="0" * 64,
                kind="test",
                loaded_at=REFRESHED,
                status="ok",
            )
        )
        conn.execute(
            insert(clinics),
            [
                {"clinic_id": "C1", "name": "Northside", "batch_id": 1},
                {"clinic_id": "C2", "name": "Harbour", "batch_id": 1},
            ],
        )
        conn.execute(
            insert(therapists),
            [
                {"therapist_id": "T1", "clinic_id": "C1", "name": "Alex Kim", "batch_id": 1},
                {"therapist_id": "T2", "clinic_id": "C1", "name": "Sam Ortiz", "batch_id": 1},
                {"therapist_id": "T3", "clinic_id": "C2", "name": "Jo Lee", "batch_id": 1},
            ],
        )
        people = [
            ("P1", "C1", "T1", "Ana", "Berg"),
            ("P2", "C1", "T1", "Ben", "Cole"),
            ("P3", "C1", "T2", None, None),
            ("P4", "C2", "T3", "Dee", "Fox"),
            ("P5", "C1", "T1", "Eve", "Gray"),
        ]
        conn.execute(
            insert(patients),
            [
                {
                    "patient_id": p,
                    "clinic_id": c,
                    "therapist_id": t,
                    "birth_year": 1970 + i,
                    "sex": "F" if i % 2 == 0 else "M",
                    "first_name": fn,
                    "last_name": ln,
                    "batch_id": 1,
                    "source_line": i + 2,
                }
                for i, (p, c, t, fn, ln) in enumerate(people)
            ],
        )
        starts = {"P1": d(34), "P2": d(20), "P3": d(10), "P4": d(50), "P5": d(120)}
        conn.execute(
            insert(episodes),
            [
                {
                    "episode_id": i + 1,
                    "patient_id": p,
                    "start_date": starts[p],
                    "end_date": d(40) if p == "P5" else None,
                    "batch_id": 1,
                    "source_line": i + 2,
                }
                for i, p in enumerate(starts)
            ],
        )
        conn.execute(insert(exercises), [{"exercise": e, "exercise_type": t} for e, t in EXERCISES.items()])

        # --- facts ------------------------------------------------------------------------------------------
        score_rows = []
        p1_leg = [(35, 7.0), (27, 6.0), (20, 5.5), (13, 4.0), (6, 3.0)]
        for days, v in p1_leg:
            score_rows.append(("P1", "pain_leg", at(days), "left", v))
        for days, v in [(35, 40.0), (20, 30.0), (6, 20.0)]:
            score_rows.append(("P1", "odi", at(days), "", v))
        for days, v in [(35, 45.0), (6, 60.0)]:
            score_rows.append(("P1", "slr_left", at(days), "", v))
        for days, v in [(20, 4.0), (2, 6.0)]:
            score_rows.append(("P2", "pain_leg", at(days), "", v))
        score_rows.append(("P3", "pain_leg", at(3), "", 5.0))
        for days, v in [(50, 6.0), (21, 6.0)]:
            score_rows.append(("P4", "pain_leg", at(days), "", v))
        score_rows.append(("P5", "pain_leg", at(120), "", 8.0))
        conn.execute(
            insert(scores),
            [
                {
                    "patient_id": p,
                    "measure": m,
                    "recorded_at": t,
                    "side": s,
                    "value": v,
                    "batch_id": 1,
                    "source_line": i,
                }
                for i, (p, m, t, s, v) in enumerate(score_rows)
            ],
        )

        session_rows = []
        # P1: clinic visits weekly, home exercises most days for 4 weeks: completed, some partial/skipped.
        for week in range(5):
            session_rows.append(
                ("P1", d(34 - 7 * week), "clinic", "soft tissue mobilisation", "completed", None)
            )
        for day in range(1, 33):
            status = "completed"
            reason = None
            if day % 7 == 3:
                status, reason = "skipped", "too painful"
            elif day % 7 == 5:
                status = "partial"
            elif day % 11 == 0:
                status, reason = "missed", "no time"
            session_rows.append(("P1", d(34 - day), "home", "bird dog", status, reason))
            if day % 2 == 0:
                session_rows.append(("P1", d(34 - day), "home", "sciatic nerve glide", "completed", None))
        # P2: half the home sessions in the last two weeks.
        for day in range(1, 15):
            status = "completed" if day % 2 else "missed"
            session_rows.append(
                ("P2", d(day), "home", "glute bridge", status, "forgot" if status == "missed" else None)
            )
        # P4: nothing in the last 20 days.
        for day in range(21, 50, 3):
            session_rows.append(("P4", d(day), "home", "piriformis stretch", "completed", None))
        conn.execute(
            insert(sessions),
            [
                {
                    "patient_id": p,
                    "session_date": day,
                    "setting": setting,
                    "exercise": ex,
                    "exercise_type": EXERCISES[ex],
                    "status": status,
                    "sets": None if status in ("skipped", "missed") else (1 if status == "partial" else 3),
                    "reps": None if status in ("skipped", "missed") else 10,
                    "duration_min": None
                    if status in ("skipped", "missed")
                    else (5.0 if status == "partial" else 12.0),
                    "prescribed_sets": 3,
                    "prescribed_reps": 10,
                    "prescribed_min": 12.0,
                    "pain_during": 3.0 if status == "completed" and setting == "home" else None,
                    "skip_reason": reason,
                    "batch_id": 1,
                    "source_line": i,
                }
                for i, (p, day, setting, ex, status, reason) in enumerate(session_rows)
            ],
        )

        # --- marts ------------------------------------------------------------------------------------------
        conn.execute(
            insert(episode_summary),
            [
                _summary(
                    1,
                    "P1",
                    "C1",
                    "T1",
                    starts["P1"],
                    visits=5,
                    home_scheduled=48,
                    home_done=40.0,
                    adherence=40 / 48,
                    home_scheduled_14d=20,
                    home_done_14d=18.0,
                    adherence_14d=0.9,
                    first_activity=d(35),
                    last_activity=d(3),
                ),
                _summary(
                    2,
                    "P2",
                    "C1",
                    "T1",
                    starts["P2"],
                    visits=2,
                    home_scheduled=14,
                    home_done=7.0,
                    adherence=0.5,
                    home_scheduled_14d=14,
                    home_done_14d=7.0,
                    adherence_14d=0.5,
                    first_activity=d(20),
                    last_activity=d(1),
                ),
                _summary(
                    3, "P3", "C1", "T2", starts["P3"], visits=1, first_activity=d(3), last_activity=d(3)
                ),
                _summary(
                    4,
                    "P4",
                    "C2",
                    "T3",
                    starts["P4"],
                    visits=9,
                    home_scheduled=10,
                    home_done=10.0,
                    adherence=1.0,
                    first_activity=d(50),
                    last_activity=d(21),
                ),
                _summary(
                    5,
                    "P5",
                    "C1",
                    "T1",
                    starts["P5"],
                    end_date=d(40),
                    is_active=False,
                    visits=3,
                    first_activity=d(120),
                    last_activity=d(40),
                ),
            ],
        )
        conn.execute(
            insert(episode_measure_summary),
            [
                _ms(
                    1,
                    "P1",
                    "pain_leg",
                    7.0,
                    3.0,
                    n_values=5,
                    baseline_at=at(35),
                    latest_at=at(6),
                    mcid_reached=True,
                    worsened=False,
                ),
                _ms(
                    1,
                    "P1",
                    "odi",
                    40.0,
                    20.0,
                    n_values=3,
                    baseline_at=at(35),
                    latest_at=at(6),
                    mcid_reached=True,
                    worsened=False,
                ),
                _ms(
                    1,
                    "P1",
                    "slr_left",
                    45.0,
                    60.0,
                    baseline_at=at(35),
                    latest_at=at(6),
                    mcid_reached=True,
                    worsened=False,
                ),
                _ms(
                    2,
                    "P2",
                    "pain_leg",
                    4.0,
                    6.0,
                    baseline_at=at(20),
                    latest_at=at(2),
                    mcid_reached=False,
                    worsened=True,
                ),
                _ms(3, "P3", "pain_leg", None, 5.0, n_values=1, latest_at=at(3)),
                _ms(
                    4,
                    "P4",
                    "pain_leg",
                    6.0,
                    6.0,
                    baseline_at=at(50),
                    latest_at=at(21),
                    mcid_reached=False,
                    worsened=False,
                ),
                _ms(
                    5,
                    "P5",
                    "pain_leg",
                    8.0,
                    8.0,
                    n_values=1,
                    baseline_at=at(120),
                    latest_at=at(120),
                    mcid_reached=False,
                ),
            ],
        )
        sync_wide_measures(conn)  # the ETL keeps the caseload measures on the episode row too
