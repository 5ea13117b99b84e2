"""The measures and exercise-type catalogs, kept as TOML data next to this file."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def _load(name: str, key: str) -> list[dict[str, Any]]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)[key]


def measure_rows() -> list[dict[str, Any]]:
    """Rows for the `measures` table."""
    rows = []
    for m in _load("measures.toml", "measure"):
        rows.append(
            {
                "code": m["code"],
                "label": m["label"],
                "unit": m["unit"],
                "min_value": float(m["min"]),
                "max_value": float(m["max"]),
                "better": m["better"],
                "mcid_abs": m.get("mcid_abs"),
                "mcid_pct": m.get("mcid_pct"),
                "threshold_kind": m["threshold_kind"],
                "threshold_source": m.get("threshold_source"),
                "loinc": m.get("loinc"),
                "side_applies": bool(m.get("side_applies", False)),
                "sort_order": int(m.get("sort_order", 100)),
            }
        )
    return rows


def exercise_type_rows() -> list[dict[str, Any]]:
    """Rows for the `exercise_types` table."""
    return [
        {
            "code": t["code"],
            "label": t["label"],
            "clinic_only": bool(t.get("clinic_only", False)),
            "description": t.get("description"),
        }
        for t in _load("exercise_types.toml", "exercise_type")
    ]
