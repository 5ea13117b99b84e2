"""Headless Chromium drives a trivial Dash app: proves the browser set-up in tests/conftest.py works."""

from __future__ import annotations

import pytest
from dash import Dash, Input, Output, html

pytestmark = pytest.mark.browser


def test_dash_app_renders_and_runs_a_callback(dash_duo):
    app = Dash(__name__)
    app.layout = html.Div(
        [html.H1("Sciatica outcomes", id="title"), html.Button("go", id="go"), html.Div(id="out")]
    )

    @app.callback(Output("out", "children"), Input("go", "n_clicks"))
    def show(n_clicks):
        return f"clicked {n_clicks or 0}"

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#title", "Sciatica outcomes")
    dash_duo.wait_for_text_to_equal("#out", "clicked 0")
    dash_duo.find_element("#go").click()
    dash_duo.wait_for_text_to_equal("#out", "clicked 1")
    assert dash_duo.driver.execute_script("return navigator.webdriver") is True
    assert dash_duo.get_logs() == [], "browser console errors"
