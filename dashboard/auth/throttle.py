"""Login throttling: refuse a login after too many recent failures for the same user name or the same address.

Counted from `audit_log` (action `login_failed`, outcome `failed`), so every worker process and every server
sharing the warehouse agrees. A user's count restarts after a successful login; refused attempts (outcome `locked`)
are recorded but not counted, so a lock ends `window_minutes` after the last real failure.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from dashboard.auth.config import ThrottleRules
from warehouse.schema import audit_log


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0
    reason: str = ""  # "user" or "ip"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def check(
    engine: Engine, username: str, ip: str | None, rules: ThrottleRules, at: dt.datetime | None = None
) -> Verdict:
    at = at or _now()
    since = at - dt.timedelta(minutes=rules.window_minutes)
    failed = (
        (audit_log.c.action == "login_failed") & (audit_log.c.outcome == "failed") & (audit_log.c.at >= since)
    )
    with engine.connect() as conn:
        last_ok = conn.execute(
            select(func.max(audit_log.c.at)).where(
                audit_log.c.action == "login", audit_log.c.username == username, audit_log.c.at >= since
            )
        ).scalar_one()
        user_since = max(since, last_ok) if last_ok else since
        user_fail = conn.execute(
            select(func.count(), func.max(audit_log.c.at)).where(
                failed, audit_log.c.username == username[:64], audit_log.c.at >= user_since
            )
        ).one()
        ip_fail = (
            conn.execute(
                select(func.count(), func.max(audit_log.c.at)).where(failed, audit_log.c.ip == ip)
            ).one()
            if ip
            else (0, None)
        )

    def retry(last: dt.datetime) -> int:
        return max(1, math.ceil((last + dt.timedelta(minutes=rules.window_minutes) - at).total_seconds()))

    if user_fail[0] >= rules.max_failures_per_user:
        return Verdict(False, retry(user_fail[1]), "user")
    if ip_fail[0] >= rules.max_failures_per_ip:
        return Verdict(False, retry(ip_fail[1]), "ip")
    return Verdict(True)
