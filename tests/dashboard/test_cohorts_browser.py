"""The cohort builder in headless Chromium: change a filter, see the count change, export, get the zip.

Runs as `python -m dashboard --no-auth` does (no login, loopback), so the export uses the public demo key and the
page says so; without that mode the page asks for $OUTCOMES_EXPORT_KEY (tests/dashboard/test_cohorts.py).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from sqlalchemy import select

from dashboard import ids
from dashboard.app import create_app
from dashboard.auth import AuthConfig
from warehouse.schema import audit_log

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_build_cohort_count_changes_and_export_downloads(dash_duo, sqlite_warehouse, monkeypatch, tmp_path):
    monkeypatch.delenv("OUTCOMES_EXPORT_KEY", raising=False)
    monkeypatch.setenv("OUTCOMES_EXPORT_JOBS_DIR", str(tmp_path / "jobs"))
    app = create_app(sqlite_warehouse, auth=AuthConfig.for_tests(mode="no_auth"))
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url + "/cohorts")

    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_COUNT}", "in cohort", timeout=15)
    before = dash_duo.find_element(f"#{ids.COHORTS_COUNT}").text
    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_FLOW}", "with follow-up")
    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_TABLE1}", "Leg pain")

    # Completers only: the count drops.
    dash_duo.driver.find_element(
        By.XPATH, f"//*[@id='{ids.COHORTS_POPULATION}']//label[contains(., 'Completers only')]"
    ).click()
    until(lambda: dash_duo.find_element(f"#{ids.COHORTS_COUNT}").text not in ("", before), timeout=10)
    after = dash_duo.find_element(f"#{ids.COHORTS_COUNT}").text
    assert int(after.split()[0]) < int(before.split()[0]), (before, after)
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "cohorts.png"))

    # Export: a background job (the click's request only starts it), polled until done, then the zipped bundle
    # arrives in the browser's download directory.
    dash_duo.find_element(f"#{ids.COHORTS_EXPORT}").click()
    until(lambda: list((tmp_path / "jobs").glob("*/state.json")), timeout=15)
    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_EXPORT_MESSAGE}", "Bundle exported", timeout=60)
    assert "DEMO KEY" in dash_duo.find_element(f"#{ids.COHORTS_EXPORT_MESSAGE}").text
    downloads = Path(dash_duo.download_path)
    until(lambda: [p for p in downloads.glob("*.zip")], timeout=15)
    (bundle,) = downloads.glob("*.zip")
    until(lambda: zipfile.is_zipfile(bundle), timeout=10)
    names = zipfile.ZipFile(bundle).namelist()
    assert any(n.endswith("/manifest.json") for n in names)
    assert any(n.endswith("/data/episodes.csv") for n in names)
    until(lambda: not list((tmp_path / "jobs").iterdir()), timeout=10)  # the server kept nothing
    with sqlite_warehouse.connect() as conn:
        who = conn.execute(select(audit_log.c.username).where(audit_log.c.action == "export")).scalars().all()
    assert who == ["local"]  # the viewer (--no-auth: the local user), not the OS user
    assert not [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"]


def test_signed_in_researcher_exports_through_the_job_with_csrf(
    dash_duo, sqlite_warehouse, monkeypatch, tmp_path
):
    """With login, CSRF and the security headers on: every poll of the job is a CSRF-checked callback; the bundle
    arrives and the audit row names the researcher."""
    from tests.auth.conftest import PASSWORD, add_users, make_auth_app

    monkeypatch.setenv("OUTCOMES_EXPORT_KEY", "browser-tests-0123456789abcdef")
    monkeypatch.setenv("OUTCOMES_EXPORT_JOBS_DIR", str(tmp_path / "jobs"))
    add_users(sqlite_warehouse)
    dash_duo.start_server(make_auth_app(sqlite_warehouse), navigate=False)
    driver = dash_duo.driver
    driver.get(dash_duo.server.url + "/")
    until(lambda: "/login" in driver.current_url, timeout=10)
    driver.find_element(By.ID, "username").send_keys("researcher")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    until(lambda: driver.current_url.endswith("/cohorts"), timeout=15)
    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_COUNT}", "in cohort", timeout=15)

    dash_duo.find_element(f"#{ids.COHORTS_EXPORT}").click()
    dash_duo.wait_for_contains_text(f"#{ids.COHORTS_EXPORT_MESSAGE}", "Bundle exported", timeout=60)
    assert "DEMO" not in dash_duo.find_element(f"#{ids.COHORTS_EXPORT_MESSAGE}").text
    downloads = Path(dash_duo.download_path)
    until(lambda: [p for p in downloads.glob("*.zip")], timeout=15)
    (bundle,) = downloads.glob("*.zip")
    until(lambda: zipfile.is_zipfile(bundle), timeout=10)
    assert any(n.endswith("/manifest.json") for n in zipfile.ZipFile(bundle).namelist())
    with sqlite_warehouse.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.username, audit_log.c.action).where(
                audit_log.c.action.in_(("export", "download"))
            )
        ).all()
    # one export row, and one download: the progress polls are not downloads
    assert sorted(rows) == [("researcher", "download"), ("researcher", "export")]
    errors = [
        e
        for e in dash_duo.get_logs() or []
        if e.get("level") == "SEVERE" and not (e.get("source") == "network" and " 40" in e.get("message", ""))
    ]
    assert errors == []
