"""In headless Chromium against a live server with login: sign in -> caseload -> patient -> log out, with the
security headers on (CSP included) and no console errors; the researcher is turned away from the caseload."""

from __future__ import annotations

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.auth import ids as aid
from tests.auth.conftest import PASSWORD, make_auth_app

pytestmark = pytest.mark.browser


def _console_errors(dash_duo) -> list:
    """Console errors other than the HTTP statuses the test provokes (401 wrong password, 403 no access)."""
    return [
        e
        for e in dash_duo.get_logs() or []
        if e.get("level") == "SEVERE" and not (e.get("source") == "network" and " 40" in e.get("message", ""))
    ]


def _sign_in(dash_duo, username: str) -> None:
    driver = dash_duo.driver
    driver.get(dash_duo.server.url + "/")
    until(lambda: "/login" in driver.current_url, timeout=10)
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()


def test_login_caseload_patient_logout(dash_duo, sqlite_auth_warehouse):
    dash_duo.start_server(make_auth_app(sqlite_auth_warehouse), navigate=False)
    driver = dash_duo.driver

    # a wrong password first
    driver.get(dash_duo.server.url + "/login")
    driver.find_element(By.ID, "username").send_keys("thera1")
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.ID, "login-submit").click()
    until(lambda: "Invalid user name or password" in driver.page_source, timeout=10)

    _sign_in(dash_duo, "thera1")
    dash_duo.wait_for_contains_text(f"#{ids.CASELOAD_GRID}", "Berg, Ana", timeout=15)
    dash_duo.wait_for_contains_text(f"#{aid.USER_BAR}", "Signed in as thera1")
    grid_text = dash_duo.find_element(f"#{ids.CASELOAD_GRID}").text
    assert "Fox, Dee" not in grid_text  # T3's patient
    dash_duo.wait_for_contains_text(f"#{ids.CASELOAD_SUMMARY}", "2 active patients")

    # the patient page, then another therapist's patient by URL
    cell = driver.find_element(
        By.XPATH, "//div[contains(@class,'ag-cell') and normalize-space()='Cole, Ben']"
    )
    cell.click()
    dash_duo.wait_for_contains_text(f"#{ids.PATIENT_HEADER}", "Ben Cole", timeout=10)
    driver.get(dash_duo.server.url + "/patients/P4")
    until(lambda: dash_duo.find_element(f"#{ids.PATIENT_NOT_FOUND}").is_displayed(), timeout=10)
    assert "Dee Fox" not in driver.page_source

    assert _console_errors(dash_duo) == [], "console errors (CSP violations show up here)"

    # log out: back to the login page, and the caseload is gone
    dash_duo.find_element(f"#{aid.LOGOUT_BUTTON}").click()
    until(lambda: driver.current_url.endswith("/login"), timeout=10)
    driver.get(dash_duo.server.url + "/")
    until(lambda: "/login" in driver.current_url, timeout=10)
    assert "Berg" not in driver.page_source


def test_researcher_lands_on_cohorts_page(dash_duo, sqlite_auth_warehouse):
    dash_duo.start_server(make_auth_app(sqlite_auth_warehouse), navigate=False)
    _sign_in(dash_duo, "researcher")
    until(lambda: dash_duo.driver.current_url.endswith("/cohorts"), timeout=15)
    dash_duo.wait_for_element(f"#{ids.COHORTS_NAME}", timeout=15)
    nav = {a.get_attribute("href").rsplit("/", 1)[-1] for a in dash_duo.find_elements(".navbar .nav-link")}
    assert nav == {"cohorts"}, "the navbar offers only the pages the role may open"
    dash_duo.driver.get(dash_duo.server.url + "/patients/P1")
    until(lambda: "No access" in dash_duo.driver.page_source, timeout=10)
    assert _console_errors(dash_duo) == []


def test_admin_audit_page_lists_and_filters(dash_duo, sqlite_auth_warehouse):
    dash_duo.start_server(make_auth_app(sqlite_auth_warehouse), navigate=False)
    _sign_in(dash_duo, "admin")
    dash_duo.wait_for_contains_text(f"#{aid.AUDIT_GRID}", "login", timeout=15)
    dash_duo.wait_for_contains_text(f"#{aid.AUDIT_SUMMARY}", "entries")
    href = dash_duo.find_element(f"#{aid.AUDIT_CSV_LINK}").get_attribute("href")
    assert href.endswith("/admin/audit.csv")
    assert _console_errors(dash_duo) == []
