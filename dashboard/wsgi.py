"""WSGI entry point for production serving: `gunicorn 'dashboard.wsgi:create_server()'` or `dashboard.wsgi:server`.

Reads the warehouse URL from `OUTCOMES_DB_URL` (falling back to the demo SQLite file). `server` is built lazily on
first attribute access, so importing this module reads nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from warehouse.config import db_url_from_env
from warehouse.db import make_engine


def create_server(db_url: str | None = None) -> Flask:
    """The Flask server of a dashboard on `db_url` (default: `$OUTCOMES_DB_URL`)."""
    from dashboard.app import create_app

    return create_app(make_engine(db_url_from_env(db_url))).server


_server: Flask | None = None


def __getattr__(name: str) -> Any:
    global _server
    if name in ("server", "application"):
        if _server is None:
            _server = create_server()
        return _server
    raise AttributeError(name)
