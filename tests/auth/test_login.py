"""Login, logout, sessions, throttling, SQL injection in every field, and the audit rows each action writes."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, text

from dashboard import ids
from dashboard.auth import audit, throttle
from dashboard.auth import users as store
from dashboard.auth.config import ThrottleRules
from dashboard.pages import caseload as pc
from tests.auth.conftest import PASSWORD, Session, login, make_auth_app, signed_in
from tests.auth.test_access import grid, overview, sessions, trends
from warehouse.schema import audit_log, patients, users

INJECTIONS = (
    "' OR '1'='1",
    "' OR 1=1 --",
    "P1' UNION SELECT patient_id, first_name FROM patients --",
    "'; DROP TABLE patients; --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "T1') OR ('a'='a",
    "1; SELECT pg_sleep(5)",
)


def _rows(engine, action=None):
    df = audit.query(engine, audit.AuditFilters(action=action))
    return df.to_dict("records")


def _intact(engine):
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(patients)).scalar_one() == 5
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 6


# --- login and logout ------------------------------------------------------------------------------------------------
def test_login_logout_and_audit(auth_app, auth_warehouse):
    client = auth_app.server.test_client()
    assert client.get("/").headers["Location"] == "/login"
    resp = login(client, "thera1")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    (row,) = _rows(auth_warehouse, "login")
    assert (row["username"], row["role"], row["outcome"], row["ip"]) == (
        "thera1",
        "therapist",
        "ok",
        "127.0.0.1",
    )
    assert row["request_id"] and row["at"] <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    session = Session(client)
    assert client.post("/logout", headers={"X-CSRFToken": session.csrf}).headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    assert [r["action"] for r in _rows(auth_warehouse) if "log" in r["action"]] == ["logout", "login"]


def test_login_redirects_to_next_but_never_off_site(sqlite_auth_app):
    client = sqlite_auth_app.server.test_client()
    assert client.get("/patients/P1").headers["Location"] == "/login?next=/patients/P1"
    for target, expected in (
        ("/patients/P1", "/patients/P1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/admin/audit", "/"),  # not allowed for a therapist: home instead
    ):
        from tests.auth.conftest import csrf_from_login_page

        client = sqlite_auth_app.server.test_client()
        token = csrf_from_login_page(client)
        resp = client.post(
            "/login", data={"username": "thera1", "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert resp.headers["Location"] == expected, target


@pytest.mark.parametrize(
    ("username", "password"),
    [("thera1", "wrong password!!"), ("nobody", PASSWORD), ("gone", PASSWORD), ("", ""), ("thera1", "")],
)
def test_failed_logins_look_the_same(sqlite_auth_app, sqlite_auth_warehouse, username, password):
    client = sqlite_auth_app.server.test_client()
    resp = login(client, username, password)
    assert resp.status_code == 401
    assert "Invalid user name or password." in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302
    (row,) = _rows(sqlite_auth_warehouse, "login_failed")
    assert row["outcome"] == "failed" and row["username"] == (username or None)


def test_login_form_needs_its_csrf_token(sqlite_auth_app):
    client = sqlite_auth_app.server.test_client()
    client.get("/login")
    resp = client.post("/login", data={"username": "thera1", "password": PASSWORD, "csrf_token": "forged"})
    assert resp.status_code == 400 and client.get("/").status_code == 302
    token_page = client.get("/login").get_data(as_text=True)
    from tests.auth.conftest import CSRF_FIELD

    token = CSRF_FIELD.search(token_page).group(1)
    cross = client.post(
        "/login",
        data={"username": "thera1", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 400


@pytest.mark.parametrize("change", ["disable", "set_role", "set_password", "logout"])
def test_user_changes_end_existing_sessions(sqlite_auth_app, sqlite_auth_warehouse, change):
    session = signed_in(sqlite_auth_app, "thera1")
    other = signed_in(sqlite_auth_app, "thera1")  # a second browser
    if change == "disable":
        store.set_active(sqlite_auth_warehouse, "thera1", False)
    elif change == "set_role":
        store.set_role(sqlite_auth_warehouse, "thera1", "researcher")
    elif change == "set_password":
        store.set_password(sqlite_auth_warehouse, "thera1", "another long password")
    else:
        other.client.post("/logout", headers={"X-CSRFToken": other.csrf})
    assert session.client.get("/").status_code == 302
    assert session.callback({"id": ids.VIEWER, "property": "children"}, []).status_code == 401


def test_a_tampered_session_cookie_is_rejected(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "thera1")
    cookie = session.client.get_cookie("outcomes_session")
    session.client.set_cookie("outcomes_session", cookie.value[:-3] + "abc")
    assert session.client.get("/").status_code == 302


def test_sessions_expire(sqlite_auth_warehouse):
    app = make_auth_app(sqlite_auth_warehouse, session_hours=0.0001)  # about a third of a second
    session = signed_in(app, "thera1")
    import time

    time.sleep(1.2)
    assert session.client.get("/").status_code == 302


# --- throttling ------------------------------------------------------------------------------------------------------
def test_user_lockout_after_repeated_failures(auth_warehouse):
    app = make_auth_app(
        auth_warehouse, throttle=ThrottleRules(max_failures_per_user=3, max_failures_per_ip=50)
    )
    client = app.server.test_client()
    for _ in range(3):
        assert login(client, "thera1", "wrong password!!").status_code == 401
    locked = login(client, "thera1")  # the right password, but locked
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert login(client, "thera3").status_code == 302  # other users are not affected
    outcomes = [r["outcome"] for r in _rows(auth_warehouse, "login_failed")]
    assert outcomes.count("failed") == 3 and outcomes.count("locked") == 1


def test_lockout_is_shared_by_workers_and_ends(auth_warehouse):
    rules = ThrottleRules(window_minutes=15, max_failures_per_user=3, max_failures_per_ip=50)
    worker_a = make_auth_app(auth_warehouse, throttle=rules).server.test_client()
    worker_b = make_auth_app(auth_warehouse, throttle=rules).server.test_client()
    for client in (worker_a, worker_b, worker_a):
        login(client, "thera3", "wrong password!!")
    assert login(worker_b, "thera3").status_code == 429
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=16)
    assert throttle.check(auth_warehouse, "thera3", "127.0.0.1", rules, at=later).allowed


def test_ip_throttle_across_user_names(sqlite_auth_warehouse):
    app = make_auth_app(
        sqlite_auth_warehouse, throttle=ThrottleRules(max_failures_per_user=50, max_failures_per_ip=4)
    )
    client = app.server.test_client()
    for name in ("a1", "a2", "a3", "a4"):
        login(client, name, "wrong password!!")
    assert login(client, "thera1").status_code == 429
    other_ip = app.server.test_client()
    assert login(other_ip, "thera1", REMOTE_ADDR="10.0.0.9").status_code == 302


def test_successful_login_resets_the_user_count(sqlite_auth_warehouse):
    app = make_auth_app(sqlite_auth_warehouse, throttle=ThrottleRules(max_failures_per_user=3))
    client = app.server.test_client()
    login(client, "thera1", "wrong password!!")
    login(client, "thera1", "wrong password!!")
    assert login(client, "thera1").status_code == 302
    fresh = app.server.test_client()
    login(fresh, "thera1", "wrong password!!")
    login(fresh, "thera1", "wrong password!!")
    assert login(fresh, "thera1").status_code == 302


# --- SQL injection ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", INJECTIONS)
def test_injection_in_login_fields(sqlite_auth_app, sqlite_auth_warehouse, attempt):
    client = sqlite_auth_app.server.test_client()
    assert login(client, attempt, attempt).status_code == 401
    assert login(client, "thera1", attempt).status_code == 401
    assert login(client, attempt, PASSWORD).status_code == 401
    _intact(sqlite_auth_warehouse)


def test_injection_in_every_filter(auth_app, auth_warehouse):
    session = signed_in(auth_app, "thera1")
    admin = signed_in(auth_app, "admin")
    for attempt in INJECTIONS:
        for model in (
            pc.filter_model(attempt, None, None, None),
            pc.filter_model(None, attempt, None, None),
            pc.filter_model(None, None, attempt, None),
            pc.filter_model(None, None, None, attempt),
        ):
            rows = grid(session, model)["rowData"]
            assert {r["patient_id"] for r in rows} <= {"P1", "P2"}, attempt
        bad_sort = session.callback(
            {"id": ids.CASELOAD_GRID, "property": "getRowsResponse"},
            [
                {
                    "id": ids.CASELOAD_GRID,
                    "property": "getRowsRequest",
                    "value": {
                        "startRow": 0,
                        "endRow": 10,
                        "sortModel": [{"colId": attempt, "sort": attempt}],
                    },
                }
            ],
        )
        assert bad_sort.status_code == 200
        for call in (overview, trends, sessions):
            resp = call(session, attempt)
            assert resp.status_code == 200 and "Fox" not in resp.get_data(as_text=True)
        counts = session.callback(
            [
                {"id": ids.CASELOAD_FLAG, "property": "options"},
                {"id": ids.CASELOAD_SUMMARY, "property": "children"},
            ],
            [
                {"id": ids.CASELOAD_THERAPIST, "property": "value", "value": attempt},
                {"id": ids.CASELOAD_CLINIC, "property": "value", "value": attempt},
                {"id": ids.CASELOAD_SEARCH, "property": "value", "value": attempt},
            ],
        )
        assert counts.status_code == 200 and "Fox" not in counts.get_data(as_text=True)
        audit_resp = admin.client.get(
            "/admin/audit.csv", query_string={"username": attempt, "target": attempt}
        )
        assert audit_resp.status_code == 200
        assert audit_resp.get_data(as_text=True).count("\n") == 1  # the header only
    _intact(auth_warehouse)


def test_injection_in_dates_does_not_leak(sqlite_auth_app):
    session = signed_in(sqlite_auth_app, "thera1")
    for attempt in INJECTIONS[:4]:
        resp = session.callback(
            {"id": ids.PATIENT_TRENDS, "property": "children"},
            [
                {"id": ids.PATIENT_DATES, "property": "start_date", "value": attempt},
                {"id": ids.PATIENT_DATES, "property": "end_date", "value": attempt},
            ],
            [{"id": ids.PATIENT_ID, "property": "data", "value": "P4"}],
        )
        # a malformed date is a generic server error: no data, no message, no traceback
        assert resp.status_code in (200, 500)
        body = resp.get_data(as_text=True)
        assert "Fox" not in body and "Traceback" not in body and attempt not in body


# --- audit rows for each audited action ----------------------------------------------------------------------------
def test_patient_views_are_audited_with_outcome(auth_app, auth_warehouse):
    session = signed_in(auth_app, "thera1")
    overview(session, "P1")
    overview(session, "P4")  # another therapist's patient
    overview(session, "nobody")
    views = {r["target"]: r for r in _rows(auth_warehouse, "patient_view")}
    assert {k: v["outcome"] for k, v in views.items()} == {
        "P1": "ok",
        "P4": "not_found",
        "nobody": "not_found",
    }
    assert {v["username"] for v in views.values()} == {"thera1"}


def test_downloads_denials_and_user_changes_are_audited(auth_app, auth_warehouse):
    admin = signed_in(auth_app, "admin")
    csv = admin.client.get("/admin/audit.csv", query_string={"action": "login"})
    assert csv.status_code == 200 and csv.headers["Content-Disposition"].startswith("attachment")
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("audit_id,at,username") and len(lines) == 2  # header + the admin's login
    (download,) = _rows(auth_warehouse, "download")
    assert download["username"] == "admin" and '"action": "login"' in download["detail"]

    researcher = signed_in(auth_app, "researcher")
    assert researcher.client.get("/patients/P1").status_code == 403
    assert overview(researcher, "P1").status_code == 403
    denied = _rows(auth_warehouse, "access_denied")
    assert {r["username"] for r in denied} == {"researcher"} and len(denied) == 2

    store.add_user(auth_warehouse, "newbie", PASSWORD, "manager", clinic_ids=["C2"], actor="admin")
    store.set_role(auth_warehouse, "newbie", "therapist", therapist_id="T3")
    store.set_active(auth_warehouse, "newbie", False)
    store.set_password(auth_warehouse, "newbie", "yet another password")
    changes = [
        r for r in _rows(auth_warehouse) if r["action"].startswith("user_") and r["target"] == "newbie"
    ]
    assert [r["action"] for r in changes] == [
        "user_set_password",
        "user_disable",
        "user_set_role",
        "user_add",
    ]
    assert all("correct horse" not in str(r["detail"]) for r in changes)


def test_export_rows_carry_cohort_and_counts(engine):
    from types import SimpleNamespace

    summary = SimpleNamespace(
        user="ana", out_dir="/tmp/x", cohort_json='{"name": "all"}', row_counts={"patients": 3}, format="csv"
    )
    audit.record_export(engine, summary)
    (row,) = _rows(engine, "export")
    assert row["username"] == "ana" and '"row_counts": {"patients": 3}' in row["detail"]


def test_audit_log_is_append_only(engine):
    audit.record(engine, "login", username="x")
    for sql in ("UPDATE audit_log SET username = 'y'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(select(audit_log.c.username)).scalar_one() == "x"


def test_audit_csv_neutralises_formulas():
    import pandas as pd

    df = pd.DataFrame([{c: None for c in audit.COLUMNS} | {"username": "=HYPERLINK(1)", "target": "+1"}])
    out = audit.to_csv(df)
    assert "'=HYPERLINK(1)" in out and "'+1" in out


# --- no PHI in the application log ----------------------------------------------------------------------------------
def test_no_patient_ids_or_names_in_logs(sqlite_auth_app, caplog):
    caplog.set_level(logging.DEBUG)
    session = signed_in(sqlite_auth_app, "thera1")
    session.client.get("/patients/P4")
    overview(session, "P4")
    overview(session, "P1")
    login(sqlite_auth_app.server.test_client(), "thera1", "wrong password!!")
    researcher = signed_in(sqlite_auth_app, "researcher")
    overview(researcher, "P1")
    text_ = caplog.text
    for phi in ("P1", "P4", "Berg", "Ana", "Fox", "wrong password"):
        assert phi not in text_, phi


def test_errors_are_logged_without_message_or_values(sqlite_auth_app, caplog, monkeypatch):
    from dashboard.pages import patient

    def boom(ctx, patient_id):
        raise ValueError(patient_id * 2)  # the message holds the patient id

    monkeypatch.setattr(patient, "overview", boom)
    session = signed_in(sqlite_auth_app, "thera1")
    resp = overview(session, "P1")
    assert resp.status_code == 500 and "P1" not in resp.get_data(as_text=True)
    assert "unhandled ValueError in request" in caplog.text and "boom" in caplog.text  # type and location
    assert "P1" not in caplog.text


def test_werkzeug_request_lines_are_redacted():
    from dashboard.auth.logs import redact

    line = '127.0.0.1 - - [x] "GET /patients/P000123?x=1 HTTP/1.1" 200 -'
    assert "P000123" not in redact(line) and "/patients/<redacted>" in redact(line)
    assert "P9" not in redact("GET /login?next=%2Fpatients%2FP9 HTTP/1.1")
