"""Starting the dashboard: no-auth on loopback only, production refused without a secret key or without users,
and the `python -m etl users` commands."""

from __future__ import annotations

import pytest

from dashboard import __main__ as cli
from dashboard import wsgi
from dashboard.auth import AuthConfig, AuthError
from dashboard.auth.config import is_loopback
from dashboard.auth.users import add_user, get_user
from etl.cli import main as etl_main
from tests.auth.conftest import PASSWORD, login

SECRET = "s" * 40


@pytest.fixture
def served(monkeypatch):
    runs = {}
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: runs.update(kw, app=self))
    return runs


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "dashboard.clinic.example"])
def test_no_auth_refused_off_loopback(sqlite_engine, served, capsys, host):
    assert cli.main(["--db", str(sqlite_engine.url), "--no-auth", "--host", host]) == 2
    assert "loopback" in capsys.readouterr().err and not served


def test_no_auth_on_loopback_serves_with_banner_and_warning(sqlite_engine, served, capsys, caplog):
    from tests.dashboard import factories

    factories.build(sqlite_engine)
    assert cli.main(["--db", str(sqlite_engine.url), "--no-auth"]) == 0
    assert served["host"] == "127.0.0.1"
    assert "WARNING: no login" in capsys.readouterr().err
    assert "WITHOUT LOGIN" in caplog.text
    client = served["app"].server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "No login: local mode" in layout
    # DNS rebinding: a page on another host name that resolves to 127.0.0.1 gets nothing
    assert client.get("/", headers={"Host": "evil.example:8050"}).status_code == 403
    assert client.get("/admin/audit").status_code == 403  # no admin pages without login


def test_debug_refused_off_loopback(sqlite_engine, served):
    assert cli.main(["--db", str(sqlite_engine.url), "--debug", "--host", "0.0.0.0"]) == 2


def test_login_start_refused_without_users(sqlite_engine, served, capsys):
    assert cli.main(["--db", str(sqlite_engine.url)]) == 2
    assert "no users configured" in capsys.readouterr().err and not served


def test_login_start_off_loopback_needs_the_secret_key(sqlite_engine, served, capsys, monkeypatch):
    add_user(sqlite_engine, "admin", PASSWORD, "admin")
    monkeypatch.delenv("OUTCOMES_SECRET_KEY", raising=False)
    assert cli.main(["--db", str(sqlite_engine.url), "--host", "0.0.0.0"]) == 2
    assert "OUTCOMES_SECRET_KEY" in capsys.readouterr().err
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", "short")
    assert cli.main(["--db", str(sqlite_engine.url), "--host", "0.0.0.0"]) == 2
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", SECRET)
    assert cli.main(["--db", str(sqlite_engine.url), "--host", "0.0.0.0"]) == 0
    assert served["app"].server.secret_key == SECRET


def test_local_login_start_gets_an_ephemeral_key(sqlite_engine, served, monkeypatch, caplog):
    add_user(sqlite_engine, "admin", PASSWORD, "admin")
    monkeypatch.delenv("OUTCOMES_SECRET_KEY", raising=False)
    assert cli.main(["--db", str(sqlite_engine.url)]) == 0
    assert len(served["app"].server.secret_key) >= 32 and "OUTCOMES_SECRET_KEY is not set" in caplog.text


def test_wsgi_refuses_without_secret_key_or_users(engine, monkeypatch):
    monkeypatch.setattr(wsgi, "_server", None)
    monkeypatch.setenv("OUTCOMES_DB_URL", str(engine.url.render_as_string(hide_password=False)))
    monkeypatch.delenv("OUTCOMES_SECRET_KEY", raising=False)
    with pytest.raises(AuthError, match="OUTCOMES_SECRET_KEY"):
        wsgi.create_server()
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", SECRET)
    with pytest.raises(AuthError, match="no users configured"):
        wsgi.create_server()
    add_user(engine, "admin", PASSWORD, "admin")
    server = wsgi.create_server()
    assert server.test_client().get("/").status_code == 302


def test_wsgi_with_only_disabled_users_refuses(sqlite_engine, monkeypatch):
    from dashboard.auth.users import set_active

    add_user(sqlite_engine, "admin", PASSWORD, "admin")
    set_active(sqlite_engine, "admin", False)
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", SECRET)
    with pytest.raises(AuthError, match="no users configured"):
        wsgi.create_server(str(sqlite_engine.url))


def test_cookie_and_proxy_settings_from_env(monkeypatch):
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", SECRET)
    monkeypatch.setenv("OUTCOMES_COOKIE_SECURE", "always")
    monkeypatch.setenv("OUTCOMES_TRUST_PROXY", "1")
    cfg = AuthConfig.from_env()
    assert (cfg.cookie_secure, cfg.trust_proxy, cfg.ephemeral_key) == ("always", 1, False)
    monkeypatch.setenv("OUTCOMES_COOKIE_SECURE", "sometimes")
    with pytest.raises(AuthError):
        AuthConfig.from_env()


def test_create_app_rejects_a_scope_provider_with_auth(sqlite_engine):
    from dashboard.app import create_app
    from dashboard.scope import Scope

    with pytest.raises(ValueError, match="scope"):
        create_app(sqlite_engine, scope_provider=lambda: Scope.clinic_wide(), auth=AuthConfig.for_tests())


# --- python -m etl users ---------------------------------------------------------------------------------------------
def test_users_cli(db_url, capsys, monkeypatch):
    import io

    from warehouse.db import make_engine

    assert etl_main(["users", "add", "ana", "--role", "therapist", "--therapist", "T1", "--db", db_url]) == 0
    out = capsys.readouterr().out
    password = out.split("password: ")[1].strip()
    assert len(password) >= 20
    monkeypatch.setattr("sys.stdin", io.StringIO("a password from stdin\n"))
    assert (
        etl_main(
            ["users", "add", "bo", "--role", "manager", "--clinic", "C1", "--password-stdin", "--db", db_url]
        )
        == 0
    )
    assert "password:" not in capsys.readouterr().out
    for bad in (
        ["users", "add", "ana", "--role", "admin"],  # exists
        ["users", "add", "x", "--role", "manager"],  # no clinic
        ["users", "add", "y", "--role", "therapist"],  # no therapist
        ["users", "add", "z", "--role", "admin", "--clinic", "C1"],  # admin sees no patients
        ["users", "add", "w", "--role", "admin", "--password", "short"],
        ["users", "add", "' OR 1=1 --", "--role", "admin"],
        ["users", "disable", "nobody"],
    ):
        assert etl_main([*bad, "--db", db_url]) == 2, bad
    assert etl_main(["users", "set-role", "ana", "--role", "researcher", "--db", db_url]) == 0
    assert etl_main(["users", "disable", "bo", "--db", db_url]) == 0
    assert etl_main(["users", "list", "--db", db_url]) == 0
    listing = capsys.readouterr().out
    assert "ana" in listing and "researcher" in listing and "disabled" in listing
    assert password not in listing
    engine = make_engine(db_url)
    try:
        assert get_user(engine, username="ana").role == "researcher"
        assert get_user(engine, username="bo").is_active is False
    finally:
        engine.dispose()


def test_users_demo_creates_one_user_per_role_and_they_can_sign_in(sqlite_engine, capsys):
    from tests.dashboard import factories

    factories.build(sqlite_engine)
    url = str(sqlite_engine.url)
    assert etl_main(["users", "demo", "--db", url]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    creds = {parts[0]: parts[1] for parts in lines}
    assert set(creds) == {"demo-therapist", "demo-manager", "demo-researcher", "demo-admin"}
    assert etl_main(["users", "demo", "--db", url]) == 0  # again: new passwords, same users
    creds = {p[0]: p[1] for p in (line.split() for line in capsys.readouterr().out.splitlines()[1:])}
    from tests.auth.conftest import make_auth_app

    app = make_auth_app(sqlite_engine)
    for name, pw in creds.items():
        assert login(app.server.test_client(), name, pw).status_code == 302, name
