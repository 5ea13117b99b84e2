"""Read models of the dashboard: `engine + scope + filters -> DataFrame`.

SQLAlchemy Core with bound parameters only; every function takes the viewer's `Scope` and enforces it in SQL.
Each reads only what its page shows: the caseload reads the summary marts, the patient page reads one patient's
rows through the natural-key indexes.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.sql import Select


def read_frame(engine: Engine, stmt: Select) -> pd.DataFrame:
    """Run a SELECT and return its rows as a DataFrame whose columns exist even when no row came back."""
    with engine.connect() as conn:
        result = conn.execute(stmt)
        columns = list(result.keys())
        rows = result.fetchall()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)
