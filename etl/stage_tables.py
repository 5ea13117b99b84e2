"""Temporary staging tables: each chunk is bulk-copied here, then merged into the facts by one SQL statement.

The merge (classify, reject conflicts, record revisions, upsert) then runs inside the database, which keeps the
Python side at raw-insert speed and its memory bounded by one chunk, whatever the file size.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Float, Integer, MetaData, String, Table

stage_metadata = MetaData()


def _temp(name: str, *cols: Column) -> Table:
    return Table(name, stage_metadata, *cols, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


stage_scores = _temp(
    "stage_scores",
    Column("line", Integer, nullable=False),
    Column("patient_id", String(64)),
    Column("measure", String(64)),
    Column("recorded_at", DateTime),
    Column("side", String(8)),
    Column("value", Float),
)

stage_sessions = _temp(
    "stage_sessions",
    Column("line", Integer, nullable=False),
    Column("patient_id", String(64)),
    Column("session_date", Date),
    Column("setting", String(8)),
    Column("exercise", String(200)),
    Column("exercise_type", String(64)),
    Column("status", String(16)),
    Column("sets", Integer),
    Column("reps", Integer),
    Column("duration_min", Float),
    Column("prescribed_sets", Integer),
    Column("prescribed_reps", Integer),
    Column("prescribed_min", Float),
    Column("pain_during", Float),
    Column("skip_reason", String(200)),
    Column("therapist_id", String(64)),
)

stage_patients = _temp(
    "stage_patients",
    Column("line", Integer, nullable=False),
    Column("patient_id", String(64)),
    Column("clinic_id", String(64)),
    Column("therapist_id", String(64)),
    Column("birth_year", Integer),
    Column("sex", String(1)),
    Column("episode_start", Date),
    Column("episode_end", Date),
    Column("symptom_onset", Date),
    Column("side", String(8)),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("clinic_name", String(200)),
    Column("therapist_name", String(200)),
)

# The summary refresh's episode windows of one block of patients (etl/summary.py): which scores and sessions belong
# to which episode, and its baseline window. Joined with the facts so that only per-episode aggregates come back.
stage_windows = _temp(
    "stage_windows",
    Column("episode_id", Integer, primary_key=True, autoincrement=False),
    Column("patient_id", String(64), nullable=False),
    Column("window_start", DateTime, nullable=False),
    Column("window_end", DateTime, nullable=False),
    Column("baseline_lo", DateTime, nullable=False),
    Column("baseline_hi", DateTime, nullable=False),
    # the same window as days, for session dates, and the episode's recent window ([recent_start, recent_end))
    Column("window_start_day", Date, nullable=False),
    Column("window_end_day", Date, nullable=False),
    Column("recent_start", Date, nullable=False),
    Column("recent_end", Date, nullable=False),
)
