"""The Dash app: `create_app(engine, ...)` builds the shell and registers the pages with the injected engine.

Nothing is read at import time; the engine, the viewer's scope provider and the flag rules are handed in, and every
callback gets them through an `AppContext` closure. Pages are registered explicitly (not discovered from a pages
folder), because each page's callbacks need that context.
"""

from __future__ import annotations

from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html
from flask import has_request_context
from sqlalchemy import Engine

from dashboard import ids
from dashboard.auth import AuthConfig, policy
from dashboard.auth import web as auth_web
from dashboard.context import AppContext
from dashboard.flags import FlagRules
from dashboard.pages import caseload, not_found_404, patient
from dashboard.pages import cohorts as cohorts_page
from dashboard.pages import outcomes as outcomes_page
from dashboard.queries.catalog import measures_catalog
from dashboard.scope import ScopeProvider, clinic_wide_viewer

HERE = Path(__file__).parent
APP_TITLE = "Sciatica outcomes"


#: The navbar's pages, in order; a viewer sees only those their role may open (dashboard.auth.policy).
NAV_PAGES: tuple[tuple[str, str], ...] = (
    ("Caseload", caseload.PATH),
    ("Outcomes", outcomes_page.PATH),
    ("Cohorts", cohorts_page.PATH),
)


def _viewer_role() -> str | None:
    """The signed-in user's role while serving a request with login; None otherwise (no login: every page)."""
    if not has_request_context():
        return None
    user = auth_web.current_user()
    return user.role if user is not None else None


def nav_links(role: str | None) -> list[tuple[str, str]]:
    """Links to show: a link to a page that would answer "No access" is noise, so it is left out.

    Hiding is only courtesy: every page and callback is still checked server-side by role.
    """
    if role is None:
        return list(NAV_PAGES)
    return [(text, href) for text, href in NAV_PAGES if policy.page_allowed(role, href)]


def shell() -> html.Div:
    """Navbar and page container; the page content comes from Dash pages."""
    navbar = dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(APP_TITLE, href="/", className="fw-semibold"),
                dbc.Nav(
                    [
                        dbc.NavItem(dbc.NavLink(text, href=href, active="exact"))
                        for text, href in nav_links(_viewer_role())
                    ],
                    navbar=True,
                    className="me-auto",
                ),
                html.Span(id=ids.VIEWER, className="navbar-text small text-white-50"),
            ],
            fluid=True,
        ),
        color="primary",
        dark=True,
        className="mb-3 no-print",
        id=ids.NAVBAR,
    )
    return html.Div(
        [
            dcc.Location(id=ids.LOCATION),
            navbar,
            dbc.Container(dash.page_container, fluid=True, className="pb-4 app-main"),
        ]
    )


def create_app(
    engine: Engine,
    scope_provider: ScopeProvider = clinic_wide_viewer,
    *,
    flag_rules: FlagRules | None = None,
    page_size: int = 25,
    title: str = APP_TITLE,
    auth: AuthConfig | None = None,
) -> Dash:
    """A Dash app reading the warehouse behind `engine`, as the viewer `scope_provider()` returns per request.

    flag_rules: thresholds of the caseload flags; by default taken from the measures catalog in the warehouse.
    auth: login, roles and audit (`dashboard.auth`); the scope then comes from the signed-in user and
        `scope_provider` must be left out. None (the default, for tests and embedding) serves `scope_provider`'s
        view without login; the entry points (`python -m dashboard`, `dashboard.wsgi`) always pass one.
    """
    if auth is not None:
        if scope_provider is not clinic_wide_viewer:
            raise ValueError("with auth, the scope comes from the signed-in user: pass no scope_provider")
        scope_provider = auth_web.session_scope
    if flag_rules is None:
        flag_rules = FlagRules.from_catalog(measures_catalog(engine).to_dict("records"))
    ctx = AppContext(engine=engine, scope_provider=scope_provider, flag_rules=flag_rules, page_size=page_size)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(HERE / "assets"),
        title=title,
        update_title=None,
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    for page in (caseload, outcomes_page, cohorts_page):  # pages at a fixed path with a fixed title
        dash.register_page(
            page.__name__, path=page.PATH, name=page.TITLE, title=page.TITLE, layout=page.layout
        )
    dash.register_page(
        patient.__name__,
        path_template=patient.PATH_TEMPLATE,
        name="Patient",
        title=patient.title,
        layout=patient.layout,
    )
    dash.register_page("not_found_404", path="/404", title=not_found_404.TITLE, layout=not_found_404.layout)
    app.layout = shell
    caseload.register(app, ctx)
    patient.register(app, ctx)
    outcomes_page.register(app, ctx)
    cohorts_page.register(app, ctx)

    @app.callback(Output(ids.VIEWER, "children"), Input(ids.LOCATION, "pathname"))
    def _viewer(_pathname):
        return f"Viewing: {ctx.scope().describe()}"

    app.server.config["OUTCOMES_CONTEXT"] = ctx
    # --- login, roles, audit and HTTP hardening (dashboard.auth) ---
    if auth is not None:
        auth_web.install(app, ctx, auth)
    else:
        auth_web.install_hardening(app)
    return app
