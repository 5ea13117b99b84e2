"""The data dictionary of an export bundle: every column of every table, with meaning, type, unit and allowed
values. The export writes exactly these columns in this order (a test checks it), and renders this as
`data_dictionary.md` and `data_dictionary.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from research.cohort import AGE_BAND_NAMES
from research.deid import DATE_MODES, LEVELS, SKIP_REASON_CATEGORIES, WIDE_AGE_BANDS, WITHHELD

TYPES = ("string", "int", "float", "bool", "date", "timestamp")
MEASURES_NOTE = "measure code from the warehouse catalog (pain_leg, pain_back, numbness, odi, slr_left, ...)"
RELATIVE_DAY = "days since the episode start (day 0 = start; negative = before the start)"


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    meaning: str
    unit: str = ""
    allowed: str = ""
    dates: str | None = None  # only in "relative" or only in "shifted" bundles; None = always

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "meaning": self.meaning,
            "unit": self.unit or None,
            "allowed": self.allowed or None,
        }


_AGE = ", ".join(AGE_BAND_NAMES) + "; generalised: " + ", ".join(sorted(set(WIDE_AGE_BANDS.values())))
_PID = Col("patient_id", "string", "pseudonymous patient id (keyed hash)", allowed="p_ + 16 hex")
_EID = Col("episode_id", "string", "pseudonymous episode id (keyed hash of patient and start date)",
           allowed="e_ + 16 hex")  # fmt: skip

TABLES: dict[str, tuple[Col, ...]] = {
    "patients": (
        _PID,
        Col("sex", "string", "recorded sex", allowed=f"F, M, X, U, {WITHHELD} (withheld: small cell)"),
        Col(
            "age_band",
            "string",
            "age at the start of the first exported episode (start year - birth year)",
            unit="years",
            allowed=f"{_AGE}; {WITHHELD} (withheld)",
        ),  # fmt: skip
        Col(
            "clinic_id", "string", "pseudonymous clinic id", allowed=f"c_ + 16 hex, or {WITHHELD} (withheld)"
        ),
        Col(
            "therapist_id",
            "string",
            "pseudonymous id of the patient's therapist; withheld with the clinic",
            allowed=f"t_ + 16 hex, or {WITHHELD}",
        ),  # fmt: skip
        Col(
            "start_year",
            "int",
            "year of the start of the patient's first exported episode (shifted in shifted bundles)",
            unit="year",
        ),  # fmt: skip
        Col("n_episodes", "int", "episodes of this patient in the bundle"),
        Col(
            "deid_level",
            "int",
            "how far the quasi-identifiers were generalised: "
            + "; ".join(f"{i} {label}" for i, label in enumerate(LEVELS)),
            allowed="0-4",
        ),  # fmt: skip
    ),
    "episodes": (
        _EID,
        _PID,
        Col("episode_number", "int", "1 for the patient's first exported episode, 2 for the next, ..."),
        Col("start_year", "int", "year the episode started (shifted year in shifted bundles)", unit="year"),
        Col("start_date", "date", "episode start (evaluation), shifted", dates="shifted"),
        Col("end_date", "date", "discharge date, shifted; empty while the episode is open", dates="shifted"),
        Col("symptom_onset", "date", "symptom onset reported at evaluation, shifted", dates="shifted"),
        Col(
            "end_day",
            "int",
            "discharge, in days since the episode start; empty while open",
            unit="days",
            dates="relative",
        ),  # fmt: skip
        Col(
            "symptom_duration_days",
            "int",
            "episode start - symptom onset; empty when no onset was recorded",
            unit="days",
        ),  # fmt: skip
        Col("side", "string", "side of the symptoms", allowed="left, right, both, empty"),
        Col("completed", "bool", "the episode has a discharge (end) date", allowed="True, False"),
    ),
    "sessions": (
        _PID,
        _EID,
        Col("day", "int", "session day, " + RELATIVE_DAY, unit="days", dates="relative"),
        Col("session_date", "date", "session date, shifted", dates="shifted"),
        Col("setting", "string", "where the exercise was done", allowed="clinic, home"),
        Col("exercise", "string", "exercise name from the warehouse exercise catalog"),
        Col(
            "exercise_type",
            "string",
            "exercise type code",
            allowed="core_strengthening, glute_strengthening, "
            "stretching, nerve_mobilization, posture_training, range_of_motion, manual_therapy",
        ),  # fmt: skip
        Col(
            "status",
            "string",
            "what happened to the scheduled session",
            allowed="completed, partial, skipped, missed",
        ),  # fmt: skip
        Col("sets", "int", "sets done", unit="sets"),
        Col("reps", "int", "repetitions per set done", unit="repetitions"),
        Col("duration_min", "float", "minutes done", unit="minutes"),
        Col("prescribed_sets", "int", "sets prescribed", unit="sets"),
        Col("prescribed_reps", "int", "repetitions per set prescribed", unit="repetitions"),
        Col("prescribed_min", "float", "minutes prescribed", unit="minutes"),
        Col("pain_during", "float", "pain during the exercise, 0-10", unit="points", allowed="0-10"),
        Col(
            "skip_reason",
            "string",
            "category of the logged skip reason (the free text is never exported)",
            allowed=", ".join(SKIP_REASON_CATEGORIES) + ", empty",
        ),  # fmt: skip
        Col(
            "therapist_id",
            "string",
            "pseudonymous therapist who logged a clinic session",
            allowed=f"t_ + 16 hex, {WITHHELD}, empty",
        ),  # fmt: skip
    ),
    "scores": (
        _PID,
        _EID,
        Col("measure", "string", MEASURES_NOTE),
        Col("side", "string", "side for side-specific measures", allowed="left, right, both, empty"),
        Col(
            "day",
            "int",
            "day of the measurement, " + RELATIVE_DAY + " (time of day is not exported)",
            unit="days",
            dates="relative",
        ),  # fmt: skip
        Col("recorded_at", "timestamp", "when it was measured, shifted", dates="shifted"),
        Col(
            "value", "float", "the measured value, in the measure's unit (points 0-10, ODI % 0-100, degrees)"
        ),
    ),
    "episode_summary": (
        _EID,
        _PID,
        Col("is_active", "bool", "the episode had no discharge when the warehouse was refreshed"),
        Col("visits", "int", "clinic days with a completed or partial session", unit="visits"),
        Col("home_scheduled", "int", "home sessions scheduled", unit="sessions"),
        Col("home_done", "float", "home sessions done (partial counts half)", unit="sessions"),
        Col(
            "adherence",
            "float",
            "home_done / home_scheduled; empty when none were scheduled",
            unit="fraction",
            allowed="0-1",
        ),  # fmt: skip
        Col(
            "home_scheduled_14d",
            "int",
            "home sessions scheduled in the last 14 days of the episode or before the refresh",
            unit="sessions",
        ),  # fmt: skip
        Col("home_done_14d", "float", "home sessions done in the same 14 days", unit="sessions"),
        Col("adherence_14d", "float", "home_done_14d / home_scheduled_14d", unit="fraction", allowed="0-1"),
        Col(
            "first_activity_day",
            "int",
            "first session or measurement, " + RELATIVE_DAY,
            unit="days",
            dates="relative",
        ),  # fmt: skip
        Col(
            "last_activity_day",
            "int",
            "last session or measurement, " + RELATIVE_DAY,
            unit="days",
            dates="relative",
        ),  # fmt: skip
        Col("first_activity", "date", "first session or measurement, shifted", dates="shifted"),
        Col("last_activity", "date", "last session or measurement, shifted", dates="shifted"),
    ),
    "episode_measure_summary": (
        _EID,
        _PID,
        Col("measure", "string", MEASURES_NOTE),
        Col("n_values", "int", "measurements of this measure in the episode"),
        Col(
            "baseline_value",
            "float",
            "first value in the baseline window (7 days before to 14 days after the start); empty when none",
        ),  # fmt: skip
        Col("baseline_day", "int", "baseline measurement, " + RELATIVE_DAY, unit="days", dates="relative"),
        Col("baseline_at", "timestamp", "baseline measurement, shifted", dates="shifted"),
        Col("latest_value", "float", "latest value in the episode"),
        Col("latest_day", "int", "latest measurement, " + RELATIVE_DAY, unit="days", dates="relative"),
        Col("latest_at", "timestamp", "latest measurement, shifted", dates="shifted"),
        Col("change", "float", "latest - baseline in the measure's unit; empty without follow-up"),
        Col("pct_change", "float", "change / baseline x 100", unit="%"),
        Col("improvement", "float", "change signed so that positive is better"),
        Col("mcid_reached", "bool", "improved by at least the measure's threshold (a responder)"),
        Col("worsened", "bool", "moved the wrong way by at least the threshold"),
    ),
}
TABLE_MEANINGS = {
    "patients": "one row per exported patient: the quasi-identifiers after small-cell protection",
    "episodes": "one row per episode of care in the cohort",
    "sessions": "one row per scheduled exercise session of an exported episode (clinic and home)",
    "scores": "one row per outcome measurement of an exported episode",
    "episode_summary": "per-episode adherence and activity, as the dashboard computes them",
    "episode_measure_summary": "per-episode, per-measure baseline, latest value and change",
}


def columns(table: str, dates: str) -> tuple[Col, ...]:
    """The columns of `table` in a bundle with this date mode, in file order."""
    if dates not in DATE_MODES:
        raise ValueError(f"dates must be one of {sorted(DATE_MODES)}")
    return tuple(c for c in TABLES[table] if c.dates in (None, dates))


def as_json(dates: str) -> str:
    doc = {
        "date_mode": dates,
        "date_mode_meaning": DATE_MODES[dates],
        "tables": {
            t: {"meaning": TABLE_MEANINGS[t], "columns": [c.as_json() for c in columns(t, dates)]}
            for t in TABLES
        },
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def as_markdown(dates: str, fmt: str) -> str:
    lines = [
        "# Data dictionary",
        "",
        f"Dates: **{dates}** - {DATE_MODES[dates]}.",
        f"Files: `data/<table>.{fmt}`. Empty cells are missing values. `{WITHHELD}` marks a quasi-identifier "
        "withheld to protect a small group of patients.",
        "",
    ]
    for t in TABLES:
        lines += [f"## {t}", "", TABLE_MEANINGS[t] + ".", "", "| column | type | unit | allowed | meaning |"]
        lines.append("|---|---|---|---|---|")
        for c in columns(t, dates):
            lines.append(f"| `{c.name}` | {c.type} | {c.unit} | {c.allowed} | {c.meaning} |")
        lines.append("")
    return "\n".join(lines)
