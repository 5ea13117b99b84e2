"""The user store in the warehouse (`users` table) and the scope each role sees.

| role | pages | scope of every patient query |
|---|---|---|
| therapist | caseload, patient | `Scope.therapist(therapist_id)`: the patients assigned to them |
| manager | caseload, patient, outcomes | `Scope.clinics(clinic_ids)`: every patient of their clinics |
| researcher | cohort / export pages | none (no patient page, no names) |
| admin | users, ETL status, audit log | none (administers, does not read patient records) |

Every change (add, disable, enable, role, password) bumps `session_version`, which signs the user's existing
session cookies out, and writes an audit row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, inspect, select, update

from dashboard.auth import audit
from dashboard.auth.passwords import PasswordError, hash_password, needs_rehash, verify_password
from dashboard.scope import Scope
from warehouse.schema import ROLES, users

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
SCOPE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UserError(ValueError):
    """A user could not be added or changed; the message says why."""


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    role: str
    display_name: str | None = None
    therapist_id: str | None = None
    clinic_ids: tuple[str, ...] = ()
    is_active: bool = True
    session_version: int = 0
    last_login_at: dt.datetime | None = None

    def scope(self) -> Scope:
        """The patients this user may see; fail closed (nothing) for roles without patient access."""
        if self.role == "therapist" and self.therapist_id:
            return Scope.therapist(self.therapist_id)
        if self.role == "manager":
            return Scope.clinics(self.clinic_ids)
        return Scope.clinics(())

    def describe(self) -> str:
        if self.role == "therapist":
            return f"therapist {self.therapist_id}"
        if self.role == "manager":
            return f"manager of {', '.join(self.clinic_ids) or 'no clinic'}"
        return self.role


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _row_to_user(row) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        role=row.role,
        display_name=row.display_name,
        therapist_id=row.therapist_id,
        clinic_ids=tuple(c for c in (row.clinic_ids or "").split(",") if c),
        is_active=bool(row.is_active),
        session_version=int(row.session_version),
        last_login_at=row.last_login_at,
    )


def _check_scope(
    role: str, therapist_id: str | None, clinic_ids: Iterable[str]
) -> tuple[str | None, str | None]:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    clinics = [c.strip() for c in clinic_ids if c and c.strip()]
    for value in [therapist_id or "", *clinics]:
        if value and not SCOPE_ID_RE.match(value):
            raise UserError(f"not a valid id: {value!r}")
    if role == "therapist":
        if not therapist_id:
            raise UserError("a therapist needs --therapist THERAPIST_ID (whose patients they see)")
        if clinics:
            raise UserError("a therapist sees their own patients: give --therapist, not --clinic")
        return therapist_id, None
    if role == "manager":
        if not clinics:
            raise UserError("a manager needs at least one --clinic CLINIC_ID")
        if therapist_id:
            raise UserError("a manager sees clinics: give --clinic, not --therapist")
        return None, ",".join(dict.fromkeys(clinics))
    if therapist_id or clinics:
        raise UserError(f"a {role} sees no patient records: no --therapist or --clinic")
    return None, None


def users_table_exists(engine: Engine) -> bool:
    return inspect(engine).has_table(users.name)


def count_active(engine: Engine) -> int:
    """Active users; 0 also when the warehouse predates the users table (not migrated)."""
    if not users_table_exists(engine):
        return 0
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(users.c.is_active.is_(True))).scalar_one()


def add_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    therapist_id: str | None = None,
    clinic_ids: Iterable[str] = (),
    display_name: str | None = None,
    actor: str = "cli",
    ip: str | None = None,
) -> User:
    if not USERNAME_RE.match(username or ""):
        raise UserError("a user name is 2-64 letters, digits or . _ @ - (starting with a letter or digit)")
    therapist_id, clinics = _check_scope(role, therapist_id, clinic_ids)
    hashed = hash_password(password)
    stamp = now()
    with engine.begin() as conn:
        if conn.execute(select(users.c.user_id).where(users.c.username == username)).first():
            raise UserError(f"user {username!r} exists already")
        user_id = conn.execute(
            insert(users).values(
                username=username,
                display_name=display_name,
                password_hash=hashed,
                role=role,
                therapist_id=therapist_id,
                clinic_ids=clinics,
                is_active=True,
                session_version=0,
                created_at=stamp,
                updated_at=stamp,
                password_changed_at=stamp,
            )
        ).inserted_primary_key[0]
        audit.record(
            conn,
            "user_add",
            username=actor,
            target=username,
            detail={"role": role, "therapist_id": therapist_id, "clinic_ids": clinics},
            ip=ip,
        )
    return get_user(engine, user_id=user_id)  # type: ignore[return-value]


def get_user(
    engine: Engine | Connection, *, user_id: int | None = None, username: str | None = None
) -> User | None:
    q = select(users)
    q = q.where(users.c.user_id == user_id) if user_id is not None else q.where(users.c.username == username)
    if isinstance(engine, Connection):
        row = engine.execute(q).first()
    else:
        with engine.connect() as conn:
            row = conn.execute(q).first()
    return _row_to_user(row) if row else None


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [_row_to_user(r) for r in conn.execute(select(users).order_by(users.c.username))]


def _change(
    engine: Engine, username: str, action: str, values: dict, detail: dict, actor: str, ip: str | None
) -> User:
    with engine.begin() as conn:
        found = conn.execute(
            update(users)
            .where(users.c.username == username)
            .values(**values, updated_at=now(), session_version=users.c.session_version + 1)
        ).rowcount
        if not found:
            raise UserError(f"no user {username!r}")
        audit.record(conn, action, username=actor, target=username, detail=detail, ip=ip)
    return get_user(engine, username=username)  # type: ignore[return-value]


def set_active(
    engine: Engine, username: str, active: bool, *, actor: str = "cli", ip: str | None = None
) -> User:
    action = "user_enable" if active else "user_disable"
    return _change(engine, username, action, {"is_active": active}, {}, actor, ip)


def set_role(
    engine: Engine,
    username: str,
    role: str,
    *,
    therapist_id: str | None = None,
    clinic_ids: Iterable[str] = (),
    actor: str = "cli",
    ip: str | None = None,
) -> User:
    therapist_id, clinics = _check_scope(role, therapist_id, clinic_ids)
    values = {"role": role, "therapist_id": therapist_id, "clinic_ids": clinics}
    return _change(engine, username, "user_set_role", values, values, actor, ip)


def set_password(
    engine: Engine, username: str, password: str, *, actor: str = "cli", ip: str | None = None
) -> User:
    values = {"password_hash": hash_password(password), "password_changed_at": now()}
    return _change(engine, username, "user_set_password", values, {}, actor, ip)


def bump_session(engine: Engine, user_id: int) -> None:
    """Sign every session of this user out (logout ends the session everywhere)."""
    with engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.user_id == user_id)
            .values(session_version=users.c.session_version + 1)
        )


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (same time and answer for every kind of failure)."""
    row = None
    if USERNAME_RE.match(username or ""):
        with engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
    ok = verify_password(row.password_hash if row else None, password)
    if not (ok and row and row.is_active):
        return None
    values: dict = {"last_login_at": now()}
    if needs_rehash(row.password_hash):
        with contextlib.suppress(PasswordError):
            values["password_hash"] = hash_password(password)
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.user_id == row.user_id).values(**values))
    return _row_to_user(row)
