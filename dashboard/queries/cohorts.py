"""Reference data for the cohort builder: the clinics and exercise types a viewer may choose (no patient rows)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from dashboard.scope import Scope
from warehouse.schema import clinics, exercise_types


def clinic_choices(engine: Engine, scope: Scope | None) -> list[dict[str, str]]:
    """Dropdown options for the clinics; `scope` None means every clinic (researchers: de-identified research)."""
    stmt = select(clinics.c.clinic_id, clinics.c.name).order_by(clinics.c.clinic_id)
    if scope is not None and scope.kind != "clinic_wide":
        if scope.kind != "clinics" or not scope.ids:
            return []
        stmt = stmt.where(clinics.c.clinic_id.in_(scope.ids))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [{"label": f"{cid} · {name}" if name else cid, "value": cid} for cid, name in rows]


def exercise_type_choices(engine: Engine) -> list[dict[str, str]]:
    stmt = select(exercise_types.c.code, exercise_types.c.label).order_by(exercise_types.c.code)
    with engine.connect() as conn:
        return [{"label": label or code, "value": code} for code, label in conn.execute(stmt)]
