"""Who may open which page and trigger which callback, through the real app and Flask's test client.

The expected table is written from the issue (not read from `dashboard.auth.policy`): therapist and manager see the
caseload and the patient page; the researcher neither; the admin only the admin pages; everyone their account.
"""

from __future__ import annotations

import json

import pytest

from dashboard import ids
from dashboard.auth import ids as aid
from tests.auth.conftest import CSRF_FIELD, ROLE_USER, signed_in

ROLES = ("therapist", "manager", "researcher", "admin")
CLINICAL = {"therapist", "manager"}
EVERYONE = set(ROLES)

# page -> roles allowed (issue 6)
PAGES = {
    "/": CLINICAL,
    "/patients/P1": CLINICAL,
    "/outcomes": {"manager"},
    "/cohorts": {"researcher", "manager"},
    "/account": EVERYONE,
    "/admin/users": {"admin"},
    "/admin/etl": {"admin"},
    "/admin/audit": {"admin"},
    "/admin/audit.csv": {"admin"},
    "/nowhere": EVERYONE,  # the not-found page
}


def _page_of_output(component_id: str) -> set[str]:
    """Roles allowed to run a callback writing to `component_id`, from the id's name."""
    patient = {ids.PATIENT_HEADER, ids.PATIENT_KEY_NUMBERS, ids.PATIENT_OUTCOME_TABLE, ids.PATIENT_BODY}
    patient |= {ids.PATIENT_NOT_FOUND, ids.PATIENT_DEFAULT_DATES, ids.PATIENT_DATES, ids.PATIENT_TRENDS}
    patient |= {ids.SESSIONS_EMPTY, ids.ADHERENCE_WEEKLY, ids.ADHERENCE_CALENDAR, ids.SKIP_REASONS}
    patient |= {ids.PAIN_DURING, ids.PROGRAMME_TIMELINE, ids.WEEKLY_DOSE, ids.SESSION_LOG}
    if component_id.startswith("caseload-") or component_id in patient:
        return CLINICAL
    if component_id in (ids.VIEWER, aid.ACCOUNT, "_pages_content", "_pages_store"):
        return EVERYONE
    if component_id.startswith("outcomes-"):
        return {"manager"}
    if component_id.startswith("cohorts-"):
        return {"researcher", "manager"}
    if component_id.startswith(("admin-", "audit-")):
        return {"admin"}
    raise AssertionError(f"test table has no rule for {component_id}: add the new page's callbacks here")


def _callbacks(app) -> list[tuple[str, list[dict], list[dict], list[dict]]]:
    out = []
    for key, spec in app.callback_map.items():
        if "callback" not in spec:  # clientside: runs in the browser only
            continue
        parts = key.strip(".").split("...") if key.startswith("..") else [key]
        outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
        inputs = [{**i, "value": "/" if i["id"] == "_pages_location" else None} for i in spec["inputs"]]
        state = [{**s, "value": None} for s in spec["state"]]
        out.append((key, outputs, inputs, state))
    return out


def _post(session, key: str, outputs, inputs, state):
    body = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": inputs,
        "state": state,
        "changedPropIds": [],
    }
    return session.client.post(
        "/_dash-update-component",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": session.csrf},
    )


@pytest.mark.parametrize("role", ROLES)
def test_pages_per_role(sqlite_auth_app, role):
    session = signed_in(sqlite_auth_app, ROLE_USER[role])
    for path, allowed in PAGES.items():
        resp = session.client.get(path)
        if role in allowed:
            assert resp.status_code == 200, (role, path, resp.status_code)
        elif path == "/":
            assert resp.status_code == 302 and resp.headers["Location"] != "/", (role, path)
        else:
            assert resp.status_code == 403, (role, path, resp.status_code)
            assert "No access" in resp.get_data(as_text=True)


@pytest.mark.parametrize("role", ROLES)
def test_every_callback_per_role(sqlite_auth_app, sqlite_auth_warehouse, role):
    session = signed_in(sqlite_auth_app, ROLE_USER[role])
    callbacks = _callbacks(sqlite_auth_app)
    assert len(callbacks) >= 14
    for key, outputs, inputs, state in callbacks:
        allowed = set.intersection(*(_page_of_output(o["id"]) for o in outputs))
        resp = _post(session, key, outputs, inputs, state)
        if role in allowed:
            assert resp.status_code in (200, 204), (role, key, resp.status_code)
        else:
            assert resp.status_code == 403, (role, key, resp.status_code)
            assert resp.get_data(as_text=True) == "Forbidden."
    if role == "manager":  # the outcomes page's CSV download callback is audited as a download
        from dashboard.auth import audit

        rows = audit.query(sqlite_auth_warehouse, audit.AuditFilters(action="download"))
        assert ids.OUTCOMES_DOWNLOAD in set(rows["target"])


def test_unauthenticated_requests_get_nothing(sqlite_auth_app):
    client = sqlite_auth_app.server.test_client()
    for path in [*PAGES, "/patients/P4", "/logout"]:
        resp = client.get(path)
        assert resp.status_code in (302, 401, 405), path
        if resp.status_code == 302:
            assert resp.headers["Location"].startswith("/login")
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
    # every callback, without a session
    admin = signed_in(sqlite_auth_app, "admin")  # only to learn the callbacks
    for key, outputs, inputs, state in _callbacks(sqlite_auth_app):
        body = {"output": key, "outputs": outputs, "inputs": inputs, "state": state, "changedPropIds": []}
        resp = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
        assert resp.status_code == 401, key
        assert "Berg" not in resp.get_data(as_text=True)
    assert admin.client.post("/logout", headers={"X-CSRFToken": admin.csrf}).status_code == 302
    # static files stay public (the login page needs its stylesheet), and nothing else internal is served
    assert client.get("/assets/02-theme.css").status_code == 200
    assert client.get("/_mcp").status_code in (401, 404)


def test_unknown_internal_routes_are_not_served(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "admin")
    assert session.client.get("/_mcp").status_code == 404
    assert session.client.get("/_anything").status_code == 404


# --- crafted callbacks across scopes ----------------------------------------------------------------------------------
OVERVIEW = [
    {"id": t, "property": p}
    for t, p in (
        (ids.PATIENT_HEADER, "children"),
        (ids.PATIENT_KEY_NUMBERS, "children"),
        (ids.PATIENT_OUTCOME_TABLE, "children"),
        (ids.PATIENT_BODY, "hidden"),
        (ids.PATIENT_NOT_FOUND, "is_open"),
        (ids.PATIENT_DEFAULT_DATES, "data"),
        (ids.PATIENT_DATES, "start_date"),
        (ids.PATIENT_DATES, "end_date"),
    )
]
SESSIONS = [
    {"id": t, "property": p}
    for t, p in (
        (ids.SESSIONS_EMPTY, "children"),
        (ids.ADHERENCE_WEEKLY, "figure"),
        (ids.ADHERENCE_CALENDAR, "figure"),
        (ids.SKIP_REASONS, "figure"),
        (ids.PAIN_DURING, "figure"),
        (ids.PROGRAMME_TIMELINE, "figure"),
        (ids.WEEKLY_DOSE, "figure"),
        (ids.SESSION_LOG, "rowData"),
    )
]
DATES = [
    {"id": ids.PATIENT_DATES, "property": "start_date", "value": "2020-01-01"},
    {"id": ids.PATIENT_DATES, "property": "end_date", "value": "2030-01-01"},
]


def overview(session, patient_id):
    return session.callback(OVERVIEW, [{"id": ids.PATIENT_ID, "property": "data", "value": patient_id}])


def trends(session, patient_id):
    # the renderer also sends the overview's store (baselines); empty here, as for a patient not found
    return session.callback(
        {"id": ids.PATIENT_TRENDS, "property": "children"},
        DATES,
        [
            {"id": ids.PATIENT_ID, "property": "data", "value": patient_id},
            {"id": ids.PATIENT_DEFAULT_DATES, "property": "data", "value": None},
        ],
    )


def sessions(session, patient_id):
    return session.callback(
        SESSIONS, DATES, [{"id": ids.PATIENT_ID, "property": "data", "value": patient_id}]
    )


def grid(session, filter_model=None, start=0, end=100):
    request = {"startRow": start, "endRow": end, "sortModel": [], "filterModel": filter_model or {}}
    resp = session.callback(
        {"id": ids.CASELOAD_GRID, "property": "getRowsResponse"},
        [{"id": ids.CASELOAD_GRID, "property": "getRowsRequest", "value": request}],
    )
    assert resp.status_code == 200
    return resp.get_json()["response"][ids.CASELOAD_GRID]["getRowsResponse"]


@pytest.mark.parametrize(
    ("user", "own", "other"), [("thera1", "P1", "P4"), ("thera3", "P4", "P1"), ("manager1", "P3", "P4")]
)
def test_other_scopes_patient_is_exactly_not_found(auth_app, user, own, other):
    session = signed_in(auth_app, user)
    assert overview(session, own).get_json()["response"][ids.PATIENT_NOT_FOUND]["is_open"] is False
    for call in (overview, trends, sessions):
        theirs, unknown = call(session, other), call(session, "no-such-patient")
        assert theirs.status_code == unknown.status_code == 200
        assert theirs.get_data() == unknown.get_data(), call.__name__


def test_therapist_grid_cannot_be_widened_by_filters(auth_app):
    from dashboard.pages import caseload as pc

    session = signed_in(auth_app, "thera1")
    assert sorted(r["patient_id"] for r in grid(session)["rowData"]) == ["P1", "P2"]
    for model in (
        pc.filter_model(None, "T3", None, None),
        pc.filter_model(None, None, "C2", None),
        pc.filter_model(None, None, None, "Fox"),
        pc.filter_model(None, None, None, "P4"),
    ):
        assert grid(session, model) == {"rowData": [], "rowCount": 0}


def test_manager_sees_their_clinics_only(auth_app):
    session = signed_in(auth_app, "manager1")
    assert sorted(r["patient_id"] for r in grid(session)["rowData"]) == ["P1", "P2", "P3"]


def test_scope_never_comes_from_the_client(auth_app):
    """Nothing a client sends (a scope-looking body field, header, cookie or query) changes what it sees."""
    session = signed_in(auth_app, "thera1")
    session.client.set_cookie("scope", "clinic_wide")
    resp = session.callback(
        OVERVIEW,
        [{"id": ids.PATIENT_ID, "property": "data", "value": "P4"}],
        headers={"X-Scope": "clinic_wide", "X-Therapist": "T3"},
        query_string={"scope": "clinic_wide"},
    )
    assert resp.get_json()["response"][ids.PATIENT_NOT_FOUND]["is_open"] is True


# --- CSRF, origin, size ------------------------------------------------------------------------------------------------
def test_callbacks_need_the_csrf_header(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "thera1")
    body = json.dumps(
        {
            "output": f"{ids.VIEWER}.children",
            "outputs": {"id": ids.VIEWER, "property": "children"},
            "inputs": [{"id": ids.LOCATION, "property": "pathname", "value": "/"}],
            "changedPropIds": [],
        }
    )
    post = session.client.post
    kw = {"data": body, "content_type": "application/json"}
    assert post("/_dash-update-component", **kw).status_code == 403
    assert post("/_dash-update-component", headers={"X-CSRFToken": "forged"}, **kw).status_code == 403
    cross = {"X-CSRFToken": session.csrf, "Origin": "https://evil.example"}
    assert post("/_dash-update-component", headers=cross, **kw).status_code == 403
    same = {"X-CSRFToken": session.csrf, "Origin": "http://localhost"}
    assert post("/_dash-update-component", headers=same, **kw).status_code == 200


def test_logout_needs_post_and_csrf(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "thera1")
    assert session.client.get("/logout").status_code == 405
    assert session.client.post("/logout").status_code == 403  # no token: still signed in
    assert session.client.get("/").status_code == 200


def test_request_size_is_limited(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "thera1")
    big = json.dumps({"output": "x.y", "inputs": [{"id": "a", "property": "b", "value": "x" * 2_000_000}]})
    resp = session.client.post(
        "/_dash-update-component",
        data=big,
        content_type="application/json",
        headers={"X-CSRFToken": session.csrf},
    )
    assert resp.status_code == 413


def test_security_headers(sqlite_auth_app):
    client = sqlite_auth_app.server.test_client()
    for resp in (client.get("/login"), client.get("/")):
        h = resp.headers
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["X-Content-Type-Options"] == "nosniff"
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp
        assert "script-src 'self' 'sha256-" in csp and "script-src 'self' 'unsafe-inline'" not in csp
        assert h["Cache-Control"] == "no-store"
    session = signed_in(sqlite_auth_app, "thera1")
    cookie = session.client.get_cookie("outcomes_session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_session_cookie_is_secure_over_https(sqlite_auth_warehouse):
    from tests.auth.conftest import PASSWORD, make_auth_app

    app = make_auth_app(sqlite_auth_warehouse, cookie_secure="auto")
    client = app.server.test_client()
    page = client.get("/login", base_url="https://localhost")
    assert "Strict-Transport-Security" in page.headers
    token = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
    resp = client.post(
        "/login",
        base_url="https://localhost",
        data={"username": "thera1", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://localhost"},
    )
    assert resp.status_code == 302
    cookies = resp.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("outcomes_session="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    plain = make_auth_app(sqlite_auth_warehouse, cookie_secure="auto").server.test_client().get("/login")
    assert "Secure" not in " ".join(plain.headers.getlist("Set-Cookie"))
