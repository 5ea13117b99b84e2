"""The page for any path the app does not know (Dash pages looks this module up by its name)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

TITLE = "Not found"


def layout(**_query: Any) -> dbc.Alert:
    return dbc.Alert(
        [
            html.H1("Page not found", className="h4"),
            html.P("There is no page at this address."),
            dbc.Button("Back to the caseload", href="/", color="primary", outline=True),
        ],
        color="light",
        className="border mt-3",
    )
