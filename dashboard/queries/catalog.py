"""The measures and exercise-type catalogs (reference data, no patient rows: not scoped)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from dashboard.queries import read_frame
from warehouse.schema import exercise_types, measures


def measures_catalog(engine: Engine) -> pd.DataFrame:
    """Every measure with its unit, range, better direction and threshold (and what kind of threshold it is)."""
    stmt = select(
        measures.c.code,
        measures.c.label,
        measures.c.unit,
        measures.c.min_value,
        measures.c.max_value,
        measures.c.better,
        measures.c.mcid_abs,
        measures.c.mcid_pct,
        measures.c.threshold_kind,
        measures.c.threshold_source,
        measures.c.sort_order,
    ).order_by(measures.c.sort_order, measures.c.code)
    return read_frame(engine, stmt)


def exercise_type_labels(engine: Engine) -> dict[str, str]:
    stmt = select(exercise_types.c.code, exercise_types.c.label)
    with engine.connect() as conn:
        return {code: label for code, label in conn.execute(stmt)}
