"""Fixtures for the login layer: the dashboard factories' warehouse (both backends) with one user per role, an app
with login, and a Flask test client that signs in the way a browser does (form + CSRF token)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from dashboard.app import create_app
from dashboard.auth import AuthConfig
from dashboard.auth.users import add_user, set_active
from tests.dashboard import factories

PASSWORD = "correct horse battery staple"
#: user name -> (role, scope)
USERS: dict[str, tuple[str, dict[str, Any]]] = {
    "thera1": ("therapist", {"therapist_id": "T1"}),
    "thera3": ("therapist", {"therapist_id": "T3"}),
    "manager1": ("manager", {"clinic_ids": ["C1"]}),
    "researcher": ("researcher", {}),
    "admin": ("admin", {}),
}
ROLE_USER = {"therapist": "thera1", "manager": "manager1", "researcher": "researcher", "admin": "admin"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_users(engine: Engine) -> None:
    for name, (role, scope) in USERS.items():
        add_user(engine, name, PASSWORD, role, **scope)
    add_user(engine, "gone", PASSWORD, "therapist", therapist_id="T1")
    set_active(engine, "gone", False)


@pytest.fixture
def auth_warehouse(engine) -> Engine:
    """Factories data and users, on SQLite and PostgreSQL."""
    factories.build(engine)
    add_users(engine)
    return engine


@pytest.fixture
def sqlite_auth_warehouse(sqlite_engine) -> Engine:
    factories.build(sqlite_engine)
    add_users(sqlite_engine)
    return sqlite_engine


def make_auth_app(engine: Engine, **overrides):
    return create_app(engine, auth=AuthConfig.for_tests(**overrides))


@pytest.fixture
def auth_app(auth_warehouse):
    return make_auth_app(auth_warehouse)


@pytest.fixture
def sqlite_auth_app(sqlite_auth_warehouse):
    return make_auth_app(sqlite_auth_warehouse)


def csrf_from_login_page(client: FlaskClient) -> str:
    return CSRF_FIELD.search(client.get("/login").get_data(as_text=True)).group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD, **environ):
    token = csrf_from_login_page(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ,
    )


@dataclass
class Session:
    """A signed-in test client that posts Dash callbacks as the renderer does (JSON + X-CSRFToken)."""

    client: FlaskClient

    @property
    def csrf(self) -> str:
        cookie = self.client.get_cookie("_csrf_token")
        return cookie.value if cookie else ""

    def callback(self, outputs: list[dict] | dict, inputs: list[dict], state: list[dict] | None = None, **kw):
        outs = outputs if isinstance(outputs, list) else [outputs]
        output = (
            "..{}..".format("...".join(f"{o['id']}.{o['property']}" for o in outs))
            if isinstance(outputs, list)
            else f"{outputs['id']}.{outputs['property']}"
        )
        body = {
            "output": output,
            "outputs": outputs,
            "inputs": inputs,
            "state": state or [],
            "changedPropIds": [],
        }
        headers = {"X-CSRFToken": self.csrf, **kw.pop("headers", {})}
        return self.client.post(
            "/_dash-update-component",
            data=json.dumps(body),
            content_type="application/json",
            headers=headers,
            **kw,
        )


def signed_in(app, username: str) -> Session:
    client = app.server.test_client()
    resp = login(client, username)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    client.get("/")  # Dash registers the page router on the first request
    return Session(client)
