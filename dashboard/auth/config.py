"""Settings of the login layer, read once at start-up by the entry points (never at import time)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from typing import Literal

log = logging.getLogger(__name__)

SECRET_ENV = "OUTCOMES_SECRET_KEY"
COOKIE_SECURE_ENV = "OUTCOMES_COOKIE_SECURE"
TRUST_PROXY_ENV = "OUTCOMES_TRUST_PROXY"
MIN_SECRET_LENGTH = 32

Mode = Literal["login", "no_auth"]
CookieSecure = Literal["auto", "always", "never"]


class AuthError(RuntimeError):
    """The dashboard refuses to start: the message says why and what to do."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; false for 0.0.0.0, :: and every real interface."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ThrottleRules:
    """Failed logins allowed in `window_minutes`, per user name and per client address (then refused)."""

    window_minutes: int = 15
    max_failures_per_user: int = 5
    max_failures_per_ip: int = 20


@dataclass(frozen=True)
class AuthConfig:
    """How the dashboard lets people in.

    mode: `login` (users in the warehouse) or `no_auth` (one person on their own machine: loopback only, clinic-wide).
    secret_key: signs the session cookie; must be shared by every worker (`$OUTCOMES_SECRET_KEY`).
    cookie_secure: `auto` marks the cookie Secure when the request came over HTTPS (behind a proxy set
        `trust_proxy`, so X-Forwarded-Proto counts), `always`, or `never` (plain-HTTP tests only).
    """

    mode: Mode = "login"
    secret_key: str = field(default="", repr=False)
    ephemeral_key: bool = False
    cookie_secure: CookieSecure = "auto"
    trust_proxy: int = 0
    session_hours: float = 8.0
    max_content_length: int = 1 * 1024 * 1024
    throttle: ThrottleRules = field(default_factory=ThrottleRules)

    @property
    def login(self) -> bool:
        return self.mode == "login"

    @classmethod
    def from_env(cls, *, mode: Mode = "login", production: bool = True, **overrides) -> AuthConfig:
        """Settings from the environment. Without `$OUTCOMES_SECRET_KEY` a production start is refused; a local
        development start (`production=False`) gets a random key for this process, with a warning."""
        key = os.environ.get(SECRET_ENV, "")
        ephemeral = False
        if not key:
            if production:
                raise AuthError(
                    f"{SECRET_ENV} is not set: a production dashboard needs a fixed secret key shared by all "
                    'workers, e.g. export OUTCOMES_SECRET_KEY="$(python -c '
                    "'import secrets; print(secrets.token_urlsafe(48))')\""
                )
            key = secrets.token_urlsafe(48)
            ephemeral = True
            log.warning(
                "%s is not set: using a random key for this process (sessions end on restart)", SECRET_ENV
            )
        elif len(key) < MIN_SECRET_LENGTH:
            raise AuthError(f"{SECRET_ENV} is too short: use at least {MIN_SECRET_LENGTH} random characters")
        secure = os.environ.get(COOKIE_SECURE_ENV, "auto").strip().lower() or "auto"
        if secure not in ("auto", "always", "never"):
            raise AuthError(f"{COOKIE_SECURE_ENV} must be auto, always or never, not {secure!r}")
        proxies = os.environ.get(TRUST_PROXY_ENV, "0").strip() or "0"
        if not proxies.isdigit():
            raise AuthError(
                f"{TRUST_PROXY_ENV} must be the number of proxies in front of the app (0, 1, ...)"
            )
        cfg = cls(
            mode=mode, secret_key=key, ephemeral_key=ephemeral, cookie_secure=secure, trust_proxy=int(proxies)
        )
        return replace(cfg, **overrides) if overrides else cfg

    @classmethod
    def for_tests(cls, **overrides) -> AuthConfig:
        """A fixed key and plain-HTTP cookies, for the test client and local browser tests."""
        return cls(**{"secret_key": "test-" + "k" * 40, "cookie_secure": "never", **overrides})
