"""The canonical file kinds: which columns each needs, which identify a row, and how a header row is recognised."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    #: Columns whose presence (after mapping) says "this is that kind of file".
    signature: tuple[str, ...]
    description: str


PATIENTS = Kind(
    "patients",
    required=("patient_id", "clinic_id", "therapist_id", "birth_year", "sex", "episode_start"),
    optional=(
        "episode_end",
        "symptom_onset",
        "side",
        "first_name",
        "last_name",
        "clinic_name",
        "therapist_name",
    ),
    signature=("patient_id", "birth_year", "episode_start"),
    description="one row per patient episode: who, which clinic and therapist, when care started",
)
SCORES = Kind(
    "scores",
    required=("patient_id", "recorded_at", "measure", "value"),
    optional=("side",),
    signature=("patient_id", "recorded_at", "measure", "value"),
    description="long outcome scores: one measurement per row",
)
VISITS = Kind(
    "visits",
    required=("patient_id", "visit_date"),
    optional=(),  # plus one column per measure code from the catalog
    signature=("patient_id", "visit_date"),
    description="wide clinic visits, as EMR exports look: one column per measure code",
)
SESSIONS = Kind(
    "sessions",
    required=("patient_id", "session_date", "setting", "exercise", "exercise_type", "status"),
    optional=(
        "sets",
        "reps",
        "duration_min",
        "prescribed_sets",
        "prescribed_reps",
        "prescribed_min",
        "pain_during",
        "skip_reason",
        "therapist_id",
    ),
    signature=("patient_id", "session_date", "status"),
    description="scheduled or performed exercise sessions, in the clinic or at home",
)

KINDS: dict[str, Kind] = {k.name: k for k in (PATIENTS, SCORES, VISITS, SESSIONS)}
#: Load order inside one run: patients first, so facts in the same run find their patients.
LOAD_ORDER = ("patients", "sessions", "scores", "visits")


def detect_kind(columns: list[str]) -> Kind | None:
    """The kind whose signature the header carries; the most specific match wins (scores before visits)."""
    present = set(columns)
    matches = [k for k in KINDS.values() if set(k.signature) <= present]
    if not matches:
        return None
    return max(matches, key=lambda k: len(k.signature))
