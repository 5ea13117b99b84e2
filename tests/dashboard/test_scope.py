import pytest
from sqlalchemy import select

from dashboard.scope import Scope, clinic_wide_viewer, scope_clause
from warehouse.schema import episode_summary, patients


def _ids(engine, scope, table=patients):
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.patient_id).where(scope_clause(scope, table)))
        return sorted(r[0] for r in rows)


def test_kinds_and_validation():
    assert Scope.clinic_wide().kind == "clinic_wide"
    assert Scope.therapist("T1").ids == ("T1",)
    assert Scope.clinics(["C1", "C2"]).ids == ("C1", "C2")
    with pytest.raises(ValueError):
        Scope("everyone")
    with pytest.raises(ValueError):
        Scope("clinic_wide", ("C1",))
    assert clinic_wide_viewer() == Scope.clinic_wide()


def test_describe():
    assert Scope.clinic_wide().describe() == "All clinics"
    assert Scope.therapist("T1").describe() == "Therapist: T1"
    assert Scope.clinics(["C1", "C2"]).describe() == "Clinics: C1, C2"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope.clinic_wide(), ["P1", "P2", "P3", "P4", "P5"]),
        (Scope.clinics(["C2"]), ["P4"]),
        (Scope.therapist("T1"), ["P1", "P2", "P5"]),
        (Scope.therapist("T2", "T3"), ["P3", "P4"]),
        (Scope.therapist(), []),
        (Scope.clinics([]), []),
        (Scope.therapist("nobody"), []),
    ],
)
def test_scope_clause_on_patients_and_summary(warehouse, scope, expected):
    assert _ids(warehouse, scope) == expected
    assert _ids(warehouse, scope, episode_summary) == expected


def test_scope_clause_uses_bound_parameters():
    compiled = (
        select(patients.c.patient_id).where(scope_clause(Scope.therapist("x' OR 1=1 --"), patients)).compile()
    )
    assert "OR 1=1" not in str(compiled)
