"""Test data as code: tiny canonical files written on the fly."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select

AS_OF = date(2026, 11, 20)

PATIENTS_HEADER = [
    "patient_id",
    "clinic_id",
    "therapist_id",
    "birth_year",
    "sex",
    "episode_start",
    "episode_end",
    "symptom_onset",
    "side",
    "first_name",
    "last_name",
]
SCORES_HEADER = ["patient_id", "recorded_at", "measure", "value", "side"]
SESSIONS_HEADER = [
    "patient_id",
    "session_date",
    "setting",
    "exercise",
    "exercise_type",
    "status",
    "sets",
    "reps",
    "duration_min",
    "pain_during",
    "skip_reason",
]
VISITS_HEADER = ["patient_id", "visit_date", "pain_leg", "pain_back", "numbness", "slr_left", "odi"]


def write_csv(path: Path, header: list[str], rows: list[list[object]], **kw) -> Path:
    with path.open("w", newline="", encoding=kw.get("encoding", "utf-8")) as fh:
        w = csv.writer(fh, delimiter=kw.get("delimiter", ","))
        w.writerow(header)
        w.writerows(rows)
    return path


def patients_file(tmp: Path, n: int = 3, name: str = "patients.csv") -> Path:
    rows = [
        [
            f"P{i}",
            "C1" if i % 2 else "C2",
            f"T{i % 3}",
            1960 + i,
            "F" if i % 2 else "M",
            "2026-09-01",
            "",
            "",
            "left",
            "",
            "",
        ]
        for i in range(1, n + 1)
    ]
    return write_csv(tmp / name, PATIENTS_HEADER, rows)


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def rows(engine: Engine, query) -> list:
    with engine.connect() as conn:
        return conn.execute(query).all()
