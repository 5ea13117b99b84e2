"""Caseload flags as the dashboard sees them: the rules (defined once in `warehouse.flag_rules`, because the ETL
stores each episode's flags on `episode_summary`) plus their display labels.

Re-exported here so pages, queries and tests keep importing `dashboard.flags`; `tests/dashboard/test_flags.py`
checks the Python and SQL forms agree at the threshold edges, and the stored columns agree with the Python rule.
"""

from __future__ import annotations

from warehouse.flag_rules import (
    EPS,
    FLAGS,
    LOW_ADHERENCE,
    MISSING_BASELINE,
    NO_RECENT_DATA,
    NOT_RESPONDING,
    STORED_COLUMNS,
    WORSENING,
    FlagRules,
    flags_for,
    flags_sql,
    is_low_adherence,
    is_missing_baseline,
    is_no_recent_data,
    is_not_responding,
    is_worsening,
    low_adherence_sql,
    missing_baseline_sql,
    no_recent_data_sql,
    not_responding_sql,
    worsening_sql,
)

FLAG_LABELS: dict[str, str] = {
    WORSENING: "Worsening",
    NOT_RESPONDING: "Not responding",
    LOW_ADHERENCE: "Low adherence",
    NO_RECENT_DATA: "No data 14 d",
    MISSING_BASELINE: "Missing baseline",
}

__all__ = [
    "EPS",
    "FLAGS",
    "FLAG_LABELS",
    "LOW_ADHERENCE",
    "MISSING_BASELINE",
    "NO_RECENT_DATA",
    "NOT_RESPONDING",
    "STORED_COLUMNS",
    "WORSENING",
    "FlagRules",
    "flags_for",
    "flags_sql",
    "is_low_adherence",
    "is_missing_baseline",
    "is_no_recent_data",
    "is_not_responding",
    "is_worsening",
    "low_adherence_sql",
    "missing_baseline_sql",
    "no_recent_data_sql",
    "not_responding_sql",
    "worsening_sql",
]
