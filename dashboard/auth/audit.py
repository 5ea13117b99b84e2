"""The append-only audit trail: who did what, when, from where.

Actions: `login`, `login_failed`, `logout`, `patient_view`, `download`, `export`, `access_denied`, and the user
changes `user_add`, `user_disable`, `user_enable`, `user_set_role`, `user_set_password`. Rows are only inserted
(the database refuses UPDATE and DELETE); the failed logins double as the throttle's counter.

The audit log is the one place a patient id is written next to a user: it lives in the warehouse, readable by
admins only, never in the application log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, func, insert, select

from warehouse.schema import audit_log

ACTIONS = (
    "login",
    "login_failed",
    "logout",
    "patient_view",
    "download",
    "export",
    "access_denied",
    "user_add",
    "user_disable",
    "user_enable",
    "user_set_role",
    "user_set_password",
)
COLUMNS = ("audit_id", "at", "username", "role", "action", "outcome", "target", "detail", "ip", "request_id")
MAX_ROWS = 5000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record(
    conn: Engine | Connection,
    action: str,
    *,
    outcome: str = "ok",
    user_id: int | None = None,
    username: str | None = None,
    role: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    request_id: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Append one row (in the caller's transaction when given a connection)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    values = {
        "at": at or _now(),
        "user_id": user_id,
        "username": (username or None) and username[:64],
        "role": role,
        "action": action,
        "outcome": outcome,
        "target": (target or None) and str(target)[:200],
        "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
        "ip": (ip or None) and ip[:64],
        "request_id": request_id,
    }
    if isinstance(conn, Connection):
        conn.execute(insert(audit_log).values(**values))
    else:
        with conn.begin() as c:
            c.execute(insert(audit_log).values(**values))


@dataclass(frozen=True)
class AuditFilters:
    username: str | None = None
    action: str | None = None
    target: str | None = None
    ip: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None


def _where(q, f: AuditFilters):
    if f.username:
        q = q.where(audit_log.c.username == f.username)
    if f.action:
        q = q.where(audit_log.c.action == f.action)
    if f.target:
        q = q.where(audit_log.c.target == f.target)
    if f.ip:
        q = q.where(audit_log.c.ip == f.ip)
    if f.start:
        q = q.where(audit_log.c.at >= dt.datetime.combine(f.start, dt.time()))
    if f.end:
        q = q.where(audit_log.c.at < dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time()))
    return q


def query(engine: Engine, filters: AuditFilters = AuditFilters(), limit: int = MAX_ROWS) -> pd.DataFrame:
    """Newest first; every filter is an exact match (bound parameters), dates are whole UTC days."""
    q = _where(select(*(audit_log.c[c] for c in COLUMNS)), filters)
    q = q.order_by(audit_log.c.at.desc(), audit_log.c.audit_id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame([r._asdict() for r in rows], columns=list(COLUMNS))


def count(engine: Engine, filters: AuditFilters = AuditFilters()) -> int:
    with engine.connect() as conn:
        return conn.execute(_where(select(func.count()).select_from(audit_log), filters)).scalar_one()


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (a cell starting with = + - @ is text, not a formula)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else value


def to_csv(df: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rec in df.astype(object).where(df.notna(), None).itertuples(index=False):
        writer.writerow([_cell(v) for v in rec])
    return out.getvalue()


def record_export(
    engine: Engine, summary: Any, *, username: str | None = None, ip: str | None = None
) -> None:
    """One `export` row for a research export (`research.export.ExportSummary`): who, the cohort definition and
    the row counts. For `research.export.record_export` to call."""
    record(
        engine,
        "export",
        username=username or getattr(summary, "user", None),
        target=str(getattr(summary, "out_dir", ""))[:200],
        detail={
            "cohort": json.loads(summary.cohort_json) if getattr(summary, "cohort_json", None) else None,
            "row_counts": getattr(summary, "row_counts", None),
            "format": getattr(summary, "format", None),
            "dates": getattr(summary, "dates", None),
            "k": getattr(summary, "k", None),
        },
        ip=ip,
    )
