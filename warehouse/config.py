"""Settings read from the environment once, at start-up, then passed in (never read at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DB_URL = "sqlite:///data/warehouse.sqlite"


def db_url_from_env(explicit: str | None = None) -> str:
    """The warehouse URL: an explicit `--db` wins, then `OUTCOMES_DB_URL`, then the embedded SQLite file."""
    return explicit or os.environ.get("OUTCOMES_DB_URL") or DEFAULT_DB_URL


@dataclass(frozen=True)
class SummaryRules:
    """Clinical conventions behind the per-episode summary; kept as data so a clinic can change them.

    Defaults follow ../shared/domain.md: a baseline must be measured near the evaluation (never taken from a later
    visit), partial sessions count half, adherence windows are 14 days.
    """

    baseline_days_before: int = 7
    baseline_days_after: int = 14
    partial_session_weight: float = 0.5
    recent_window_days: int = 14
    adherent_threshold: float = 0.80
    low_adherence_threshold: float = 0.60
