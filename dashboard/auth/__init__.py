"""Who sees what: login, roles, row-level scope, an audit trail and HTTP hardening for the dashboard.

- `config`: `AuthConfig` (login or local no-auth mode, secret key, cookie and throttle settings).
- `users`: the user store in the warehouse (argon2id hashes), and the `Scope` each role sees.
- `policy`: which role may open which page and trigger which callback (callbacks belong to the page whose layout
  holds their outputs).
- `audit`: the append-only `audit_log` (login, failed login, logout, patient view, download, export, user changes).
- `throttle`: lockout per user name and per IP address, counted from the audit log so all workers agree.
- `web`: the Flask side: `before_request` session and permission checks, CSRF, security headers, login/logout.
- `pages`: the account page and the admin pages (users, ETL status, audit log with CSV export).

Nothing here reads the environment at import time; `AuthConfig.from_env()` is called by the entry points.
"""

from dashboard.auth.config import AuthConfig, AuthError

__all__ = ["AuthConfig", "AuthError"]
