"""The app as Dash serves it: the shell, the registered callbacks, and a callback dispatched over HTTP."""

from __future__ import annotations

import json

import pytest

from dashboard import __main__ as cli
from dashboard import ids, wsgi
from dashboard.app import create_app
from dashboard.flags import FlagRules
from dashboard.pages import caseload as pc
from dashboard.scope import Scope


def _dispatch(client, output: str, outputs: dict | list, inputs: list[dict], state: list[dict] | None = None):
    body = {
        "output": output,
        "outputs": outputs,
        "inputs": inputs,
        "changedPropIds": [],
        "state": state or [],
    }
    resp = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    return resp.status_code, resp.get_json() if resp.status_code == 200 else None


def test_pages_and_assets_are_served(app):
    client = app.server.test_client()
    for path in ("/", "/patients/P1", "/patients/unknown", "/nowhere"):
        assert client.get(path).status_code == 200, path
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/_dash-dependencies").status_code == 200
    index = client.get("/").get_data(as_text=True)
    assert "01-bootstrap-5.3.8.min.css" in index and "03-print.css" in index
    assert "cdn" not in index.lower()  # everything served locally: no patient URL leaks to a CDN


def test_callbacks_are_registered_on_the_app(app):
    client = app.server.test_client()
    client.get("/")  # pages registers its router on the first request
    outputs = " ".join(app.callback_map)
    for component in (
        ids.CASELOAD_GRID,
        ids.CASELOAD_FLAG,
        ids.CASELOAD_CLINIC,
        ids.CASELOAD_LOCATION,
        ids.PATIENT_HEADER,
        ids.PATIENT_TRENDS,
        ids.ADHERENCE_WEEKLY,
        ids.SESSION_LOG,
        ids.VIEWER,
    ):
        assert component in outputs, component
    assert not app.config.suppress_callback_exceptions


def test_grid_callback_over_http_enforces_the_scope(sqlite_warehouse):
    app = create_app(sqlite_warehouse, scope_provider=lambda: Scope.therapist("T1"))
    client = app.server.test_client()
    client.get("/")
    request = {
        "startRow": 0,
        "endRow": 25,
        "sortModel": [],
        "filterModel": pc.filter_model(None, "T3", None, None),
    }
    status, body = _dispatch(
        client,
        f"{ids.CASELOAD_GRID}.getRowsResponse",
        {"id": ids.CASELOAD_GRID, "property": "getRowsResponse"},
        [{"id": ids.CASELOAD_GRID, "property": "getRowsRequest", "value": request}],
    )
    assert status == 200
    assert body["response"][ids.CASELOAD_GRID]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    request["filterModel"] = {}
    _, body = _dispatch(
        client,
        f"{ids.CASELOAD_GRID}.getRowsResponse",
        {"id": ids.CASELOAD_GRID, "property": "getRowsResponse"},
        [{"id": ids.CASELOAD_GRID, "property": "getRowsRequest", "value": request}],
    )
    rows = body["response"][ids.CASELOAD_GRID]["getRowsResponse"]["rowData"]
    assert sorted(r["patient_id"] for r in rows) == ["P1", "P2"]


@pytest.mark.parametrize(("patient_id", "found"), [("P1", True), ("P4", False), ("nobody", False)])
def test_patient_header_over_http(sqlite_warehouse, patient_id, found):
    app = create_app(sqlite_warehouse, scope_provider=lambda: Scope.therapist("T1"))
    client = app.server.test_client()
    client.get("/")
    names = ("children", "children", "children", "hidden", "is_open", "data", "start_date", "end_date")
    targets = (
        ids.PATIENT_HEADER,
        ids.PATIENT_KEY_NUMBERS,
        ids.PATIENT_OUTCOME_TABLE,
        ids.PATIENT_BODY,
        ids.PATIENT_NOT_FOUND,
        ids.PATIENT_DEFAULT_DATES,
        ids.PATIENT_DATES,
        ids.PATIENT_DATES,
    )
    output = "...".join(f"{t}.{n}" for t, n in zip(targets, names, strict=True))
    status, body = _dispatch(
        client,
        f"..{output}..",
        [{"id": t, "property": n} for t, n in zip(targets, names, strict=True)],
        [{"id": ids.PATIENT_ID, "property": "data", "value": patient_id}],
    )
    assert status == 200
    resp = body["response"]
    assert resp[ids.PATIENT_NOT_FOUND]["is_open"] is (not found)
    assert resp[ids.PATIENT_BODY]["hidden"] is (not found)
    assert ("Berg" in json.dumps(resp)) is found


def test_two_apps_in_one_process_keep_their_own_engine_and_scope(sqlite_warehouse, tmp_path):
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade

    empty = make_engine(f"sqlite:///{tmp_path}/empty.sqlite")
    upgrade(empty)
    full_app = create_app(sqlite_warehouse)
    empty_app = create_app(empty, flag_rules=FlagRules())
    for app, expected in ((full_app, 4), (empty_app, 0), (full_app, 4)):
        client = app.server.test_client()
        client.get("/")
        _, body = _dispatch(
            client,
            f"{ids.CASELOAD_GRID}.getRowsResponse",
            {"id": ids.CASELOAD_GRID, "property": "getRowsResponse"},
            [{"id": ids.CASELOAD_GRID, "property": "getRowsRequest", "value": {"startRow": 0, "endRow": 25}}],
        )
        assert body["response"][ids.CASELOAD_GRID]["getRowsResponse"]["rowCount"] == expected


def test_flag_rules_come_from_the_catalog(sqlite_warehouse):
    app = create_app(sqlite_warehouse)
    assert dict(app.server.config["OUTCOMES_CONTEXT"].flag_rules.worsening)["slr_left"] == -6.0


def test_cli_arguments(monkeypatch):
    args = cli.parse_args([])
    assert (args.db, args.host, args.port, args.debug) == (None, "127.0.0.1", 8050, False)
    args = cli.parse_args(["--db", "sqlite:///x.sqlite", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.db, args.host, args.port) == ("sqlite:///x.sqlite", "0.0.0.0", 9000)


def test_cli_main_serves_the_given_warehouse(monkeypatch, sqlite_warehouse):
    from dashboard.auth.users import add_user

    add_user(sqlite_warehouse, "admin", "a long enough password", "admin")  # with login, no users = no start
    url = str(sqlite_warehouse.url)
    served = {}
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: served.update(kw, app=self))
    assert cli.main(["--db", url, "--port", "8999"]) == 0
    assert served["port"] == 8999 and served["host"] == "127.0.0.1"
    assert (
        served["app"].server.config["OUTCOMES_CONTEXT"].engine.url.database == sqlite_warehouse.url.database
    )


def test_wsgi_server_reads_the_environment_lazily(monkeypatch, sqlite_warehouse):
    from dashboard.auth.users import add_user

    add_user(sqlite_warehouse, "admin", "a long enough password", "admin")  # production start needs a user
    monkeypatch.setattr(wsgi, "_server", None)
    monkeypatch.setenv("OUTCOMES_DB_URL", str(sqlite_warehouse.url))
    monkeypatch.setenv("OUTCOMES_SECRET_KEY", "s" * 40)
    server = wsgi.server
    assert server.config["OUTCOMES_CONTEXT"].engine.url.database == sqlite_warehouse.url.database
    assert server.test_client().get("/login").status_code == 200
    assert server.test_client().get("/").headers["Location"].startswith("/login")  # login required
    assert wsgi.application is server
    with pytest.raises(AttributeError):
        wsgi.nothing  # noqa: B018
