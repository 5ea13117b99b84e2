"""The flows a therapist clicks through, in headless Chromium: caseload -> flag filter -> patient -> date range.

Screenshots of each page go to test-artifacts/ (gitignored); the browser console must stay free of errors.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard import ids
from dashboard.app import create_app
from tests.dashboard.factories import d

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TREND_POINTS = (
    "return Array.from(document.querySelectorAll('#patient-trends .js-plotly-plot'))"
    ".map(g => [g.layout.title.text, g.data.length ? g.data[0].x.length : 0])"
)


def _shot(dash_duo, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _trend_points(dash_duo) -> dict[str, int]:
    return dict(dash_duo.driver.execute_script(TREND_POINTS))


def _severe(dash_duo) -> list:
    return [entry for entry in dash_duo.get_logs() or [] if entry.get("level") == "SEVERE"]


def _fmt(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def test_caseload_filter_open_patient_change_dates(dash_duo, sqlite_warehouse):
    dash_duo.start_server(create_app(sqlite_warehouse))

    # Caseload: rows come from the server, flag counts on the filter buttons.
    dash_duo.wait_for_contains_text(f"#{ids.CASELOAD_GRID}", "Berg, Ana", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.CASELOAD_SUMMARY}", "4 active patients")
    assert "Worsening" in dash_duo.find_element(f"#{ids.CASELOAD_FLAG}").text
    _shot(dash_duo, "caseload")

    # Filter by a flag: only the worsening patient stays.
    label = dash_duo.driver.find_element(
        By.XPATH, f"//*[@id='{ids.CASELOAD_FLAG}']//label[contains(., 'Worsening')]"
    )
    label.click()
    until(lambda: "Berg, Ana" not in dash_duo.find_element(f"#{ids.CASELOAD_GRID}").text, timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.CASELOAD_GRID}", "Cole, Ben")
    _shot(dash_duo, "caseload-worsening")

    # Open the patient by clicking the row.
    cell = dash_duo.driver.find_element(
        By.XPATH, "//div[contains(@class,'ag-cell') and normalize-space()='Cole, Ben']"
    )
    cell.click()
    dash_duo.wait_for_contains_text(f"#{ids.PATIENT_HEADER}", "Ben Cole", timeout=10)
    assert dash_duo.driver.current_url.endswith("/patients/P2")
    until(lambda: _trend_points(dash_duo).get("Leg pain (NPRS)") == 2, timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.ADHERENCE_WEEKLY}", "Home exercises per week")
    _shot(dash_duo, "patient")

    # Narrow the date range: the charts and the session log follow it.
    start = dash_duo.find_element(f"#{ids.PATIENT_DATES}")
    start.send_keys(Keys.CONTROL, "a")
    start.send_keys(_fmt(d(10)))
    start.send_keys(Keys.ENTER)
    until(lambda: _trend_points(dash_duo).get("Leg pain (NPRS)") == 1, timeout=10)
    _shot(dash_duo, "patient-narrowed")

    # Back to the whole episode.
    dash_duo.find_element(f"#{ids.PATIENT_RESET_DATES}").click()
    until(lambda: _trend_points(dash_duo).get("Leg pain (NPRS)") == 2, timeout=10)

    assert _severe(dash_duo) == [], "browser console errors"


def test_unknown_and_out_of_scope_patient_pages_look_the_same(dash_duo, sqlite_warehouse):
    from dashboard.scope import Scope

    dash_duo.start_server(create_app(sqlite_warehouse, scope_provider=lambda: Scope.therapist("T1")))
    texts = []
    for patient_id in ("P4", "nobody"):  # P4 exists but belongs to therapist T3
        dash_duo.driver.get(f"{dash_duo.server_url}/patients/{patient_id}")
        dash_duo.wait_for_contains_text(f"#{ids.PATIENT_NOT_FOUND}", "Patient not found", timeout=10)
        texts.append(dash_duo.find_element(f"#{ids.PATIENT_NOT_FOUND}").text)
        assert not dash_duo.find_element(f"#{ids.PATIENT_BODY}").is_displayed()
    assert texts[0] == texts[1]
    _shot(dash_duo, "patient-not-found")
    assert _severe(dash_duo) == [], "browser console errors"


def test_patient_with_one_score_and_no_sessions(dash_duo, sqlite_warehouse):
    dash_duo.start_server(create_app(sqlite_warehouse))
    dash_duo.driver.get(f"{dash_duo.server_url}/patients/P3")
    dash_duo.wait_for_contains_text(f"#{ids.PATIENT_TRENDS}", "no baseline", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.SESSIONS_EMPTY}", "No sessions logged")
    _shot(dash_duo, "patient-sparse")
    assert _severe(dash_duo) == [], "browser console errors"
