"""The outcomes page: callbacks called as plain functions, the layout's ids, and one browser flow."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from dash.testing.wait import until

from dashboard import ids
from dashboard.app import create_app
from dashboard.auth.policy import page_allowed
from dashboard.context import AppContext
from dashboard.figures import outcomes as fig
from dashboard.pages import outcomes as page
from dashboard.queries import outcomes as q
from dashboard.scope import Scope
from tests.dashboard.test_outcomes_queries import build


@pytest.fixture
def owh(sqlite_engine):
    build(sqlite_engine)
    return sqlite_engine


def _ctx(engine, scope=Scope.clinic_wide()) -> AppContext:
    return AppContext(engine=engine, scope_provider=lambda: scope)


def _csv(payload) -> pd.DataFrame:
    content = payload["content"]
    raw = base64.b64decode(content).decode() if payload.get("base64") else content
    return pd.read_csv(io.StringIO(raw))


def test_filters_from_inputs_drop_unknown_values():
    f = page.filters_from_inputs("C1", None, "2024-01-01T00:00:00", None, "awful", "40-59", "Z", "home")
    assert f == q.OutcomeFilters(
        clinic_id="C1", start_from=pd.Timestamp("2024-01-01").date(), age_band="40-59", setting="home"
    )


def test_main_outputs_n_updates_with_filters_and_every_chart_says_n(owh):
    ctx = _ctx(owh)
    out = page.main_outputs(ctx, q.OutcomeFilters())
    assert out[ids.OUTCOMES_N].startswith("n = 6 episodes")
    charts = [out[i] for i, prop in page.MAIN_OUTPUTS if prop == "figure"]
    assert all("n=" in t for t in fig.titles(charts))
    for chart in charts:  # plain specs on the page: each must be a valid plotly figure
        go.Figure(chart)
    severe = page.main_outputs(ctx, q.OutcomeFilters(severity="severe"))
    assert severe[ids.OUTCOMES_N].startswith("n = 3 episodes")
    assert set(out) == {i for i, _ in page.MAIN_OUTPUTS}


def test_comparison_and_quality_outputs(owh):
    ctx = _ctx(owh)
    out = page.comparison_outputs(ctx, q.OutcomeFilters())
    assert set(out) == {i for i, _ in page.COMPARISON_OUTPUTS}
    assert "n < 10: not ranked" in str(out[ids.OUTCOMES_THERAPIST_TABLE])
    quality = str(page.quality_panel(ctx, q.OutcomeFilters()))
    assert "value: value … outside 0-10" in quality and "'12'" not in quality
    rec = page.recovery_figure(ctx, "pain_leg", "severe", None)
    assert "n=3 past episodes" in fig.titles([rec])[0]
    go.Figure(rec)
    for chart in page.comparison_outputs(ctx, q.OutcomeFilters(severity="severe")).values():
        if isinstance(chart, dict):
            go.Figure(chart)


def test_every_csv_downloads_and_respects_the_scope(owh):
    for which in page.CSV_BUTTONS:
        payload = page.download(_ctx(owh), which, q.OutcomeFilters())
        assert payload["filename"].startswith("outcomes-") and payload["filename"].endswith(".csv")
        assert len(_csv(payload)) > 0
    c2 = _csv(page.download(_ctx(owh, Scope.clinics(["C2"])), ids.OUTCOMES_CSV_CLINICS, q.OutcomeFilters()))
    assert list(c2["group"]) == ["C2"]
    types = _csv(page.download(_ctx(owh, Scope.clinics(["C2"])), ids.OUTCOMES_CSV_TYPES, q.OutcomeFilters()))
    assert types.loc[types["group"] == "All episodes", "episodes"].item() == 2


def test_empty_selection_renders(owh):
    out = page.main_outputs(_ctx(owh), q.OutcomeFilters(clinic_id="nowhere"))
    assert out[ids.OUTCOMES_N].startswith("n = 0 episodes")
    comp = page.comparison_outputs(_ctx(owh), q.OutcomeFilters(clinic_id="nowhere"))
    assert "No episodes" in str(comp[ids.OUTCOMES_CLINIC_TABLE])


def test_page_is_registered_for_managers_only(owh):
    app = create_app(owh)
    import dash

    assert any(p["path"] == page.PATH for p in dash.page_registry.values())
    assert page_allowed("manager", page.PATH) and not page_allowed("therapist", page.PATH)
    assert "Outcomes" in str(app.layout())


def test_page_serves(owh):
    client = create_app(owh).server.test_client()
    assert client.get(page.PATH).status_code == 200


# --- browser ------------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_outcomes_filter_updates_n_and_downloads_csv(dash_duo, owh):
    dash_duo.start_server(create_app(owh))
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}{page.PATH}", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.OUTCOMES_N}", "n = 6 episodes", timeout=20)
    dash_duo.select_dcc_dropdown(f"#{ids.OUTCOMES_SEVERITY}", index=2)  # severe
    dash_duo.wait_for_contains_text(f"#{ids.OUTCOMES_N}", "n = 3 episodes", timeout=20)
    button = dash_duo.find_element(f"#{ids.OUTCOMES_CSV_TYPES}")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView(); arguments[0].click();", button)
    target = Path(dash_duo.download_path) / "outcomes-by-exercise-type.csv"
    until(lambda: target.exists() and target.stat().st_size > 0, timeout=20)
    time.sleep(0.2)
    df = pd.read_csv(target)
    assert df.loc[df["group"] == "All episodes", "episodes"].item() == 3
    assert not [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"]
