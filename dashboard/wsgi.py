"""WSGI entry point for production serving: `gunicorn 'dashboard.wsgi:create_server()'` or `dashboard.wsgi:server`.

Reads the warehouse URL from `OUTCOMES_DB_URL` (falling back to the demo SQLite file). `server` is built lazily on
first attribute access, so importing this module reads nothing.

Always with login: refuses to start (raises `AuthError`, so the worker does not boot) without `$OUTCOMES_SECRET_KEY`
or without any active user in the warehouse.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from dashboard.runtime import one_blas_thread_per_worker
from warehouse.config import db_url_from_env
from warehouse.db import make_engine


def create_server(db_url: str | None = None) -> Flask:
    """The Flask server of a dashboard on `db_url` (default: `$OUTCOMES_DB_URL`)."""
    one_blas_thread_per_worker()  # before numpy loads (dashboard/runtime.py)
    from dashboard.app import create_app
    from dashboard.auth import AuthConfig, AuthError
    from dashboard.auth.users import count_active

    auth = AuthConfig.from_env(mode="login", production=True)
    engine = make_engine(db_url_from_env(db_url))
    if count_active(engine) == 0:
        engine.dispose()
        raise AuthError(
            "no users configured: refusing to serve the dashboard open. "
            "Add one with `python -m etl users add NAME --role admin` (see docs/security.md)"
        )
    return create_app(engine, auth=auth).server


_server: Flask | None = None


def __getattr__(name: str) -> Any:
    global _server
    if name in ("server", "application"):
        if _server is None:
            _server = create_server()
        return _server
    raise AttributeError(name)
