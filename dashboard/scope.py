"""Who is looking: the viewer's scope, and the SQL that enforces it.

Every query in `dashboard.queries` takes a `Scope` and adds `scope_clause(scope, table)` to its WHERE clause, so a
therapist's view can never return another therapist's patients, whatever filters the page sends. With login
(`dashboard.auth`, the default for `python -m dashboard` and `dashboard.wsgi`) the scope is the signed-in user's,
looked up on the server for every request (`dashboard.auth.web.session_scope`), never taken from the client;
`clinic_wide_viewer` is for `--no-auth` on a loopback address, tests and embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, Table, false, true

ScopeKind = Literal["clinic_wide", "clinics", "therapist"]
KINDS: tuple[ScopeKind, ...] = ("clinic_wide", "clinics", "therapist")


@dataclass(frozen=True)
class Scope:
    """What a viewer may see.

    - `clinic_wide`: every clinic in this warehouse (the demo viewer; an administrator).
    - `clinics`: the patients of the listed clinics (a clinic manager).
    - `therapist`: the patients of the listed therapists (normally one: the therapist signed in).
    """

    kind: ScopeKind
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scope kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "clinic_wide" and self.ids:
            raise ValueError("a clinic-wide scope takes no ids")
        object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))

    @classmethod
    def clinic_wide(cls) -> Scope:
        return cls("clinic_wide")

    @classmethod
    def clinics(cls, ids: Iterable[str]) -> Scope:
        return cls("clinics", tuple(ids))

    @classmethod
    def therapist(cls, *therapist_ids: str) -> Scope:
        return cls("therapist", tuple(therapist_ids))

    def describe(self) -> str:
        if self.kind == "clinic_wide":
            return "All clinics"
        noun = "Clinic" if self.kind == "clinics" else "Therapist"
        if not self.ids:
            return f"{noun}: none"
        return f"{noun}{'s' if len(self.ids) > 1 else ''}: {', '.join(self.ids)}"


ScopeProvider = Callable[[], Scope]


def clinic_wide_viewer() -> Scope:
    """The scope provider without login (`create_app` without `auth`; `--no-auth` uses the same view)."""
    return Scope.clinic_wide()


def scope_clause(scope: Scope, table: Table) -> ColumnElement[bool]:
    """A WHERE condition restricting `table` (anything with clinic_id and therapist_id columns) to `scope`.

    Works on `patients`, `episode_summary` and `therapists`. An empty id list matches nothing (fail closed).
    """
    if scope.kind == "clinic_wide":
        return true()
    if not scope.ids:
        return false()
    column = table.c.clinic_id if scope.kind == "clinics" else table.c.therapist_id
    return column.in_(scope.ids)
