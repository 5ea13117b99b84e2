"""The login layer's pages: account (`/account`), users (`/admin/users`), ETL status (`/admin/etl`), audit log
(`/admin/audit`, filter and CSV export); the user bar above the navbar; and the role check on every page skeleton.

Layouts are skeletons (no I/O); data arrives through callbacks, which `web` lets through per role like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html
from flask import current_app, g, has_request_context, session
from sqlalchemy import func, select

from dashboard.auth import audit, policy
from dashboard.auth import ids as aid
from dashboard.auth import users as store
from dashboard.auth.config import AuthConfig
from dashboard.context import AppContext
from warehouse.schema import episode_summary, etl_batches, etl_rejects, patients

ADMIN_LINKS = (("Audit log", "/admin/audit"), ("Users", "/admin/users"), ("ETL status", "/admin/etl"))
AUDIT_COLUMNS = [
    {"headerName": "When (UTC)", "field": "at", "width": 170, "sort": "desc"},
    {"headerName": "User", "field": "username", "width": 120},
    {"headerName": "Role", "field": "role", "width": 100},
    {"headerName": "Action", "field": "action", "width": 130},
    {"headerName": "Outcome", "field": "outcome", "width": 100},
    {"headerName": "Target", "field": "target", "minWidth": 140, "flex": 1},
    {"headerName": "From", "field": "ip", "width": 130},
    {"headerName": "Detail", "field": "detail", "minWidth": 200, "flex": 2},
    {"headerName": "Request", "field": "request_id", "width": 150},
]


def _grid(grid_id: str, columns: list[dict[str, Any]], height: str = "60vh") -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "filter": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 50},
        className="ag-theme-quartz",
        style={"height": height},
    )


# --- layouts -----------------------------------------------------------------------------------------------------------
def account_layout(**_: Any) -> html.Div:
    return html.Div([html.H1("Your account", className="h3"), html.Div(id=aid.ACCOUNT)])


def users_layout(**_: Any) -> html.Div:
    columns = [
        {"headerName": "User", "field": "username", "width": 150},
        {"headerName": "Name", "field": "display_name", "width": 160},
        {"headerName": "Role", "field": "role", "width": 110},
        {"headerName": "Sees", "field": "scope", "flex": 1},
        {"headerName": "Active", "field": "active", "width": 90},
        {"headerName": "Last sign-in (UTC)", "field": "last_login_at", "width": 180},
    ]
    return html.Div(
        [
            html.H1("Users", className="h3"),
            html.P(
                [
                    "Add, disable or change users with ",
                    html.Code("python -m etl users add|list|disable|enable|set-role|set-password"),
                    "; every change is in the audit log.",
                ],
                className="small text-muted",
            ),
            _grid(aid.ADMIN_USERS_GRID, columns, "50vh"),
        ]
    )


def etl_layout(**_: Any) -> html.Div:
    columns = [
        {"headerName": "Batch", "field": "batch_id", "width": 90},
        {"headerName": "Loaded (UTC)", "field": "loaded_at", "width": 170},
        {"headerName": "Kind", "field": "kind", "width": 100},
        {"headerName": "Status", "field": "status", "width": 150},
        {"headerName": "File", "field": "file_name", "flex": 1},
        {"headerName": "Read", "field": "rows_read", "width": 90},
        {"headerName": "New", "field": "rows_inserted", "width": 90},
        {"headerName": "Updated", "field": "rows_updated", "width": 100},
        {"headerName": "Rejected", "field": "rows_rejected", "width": 100},
    ]
    return html.Div(
        [
            html.H1("ETL status", className="h3"),
            html.Div(id=aid.ADMIN_ETL_COUNTS, className="small text-muted mb-2"),
            _grid(aid.ADMIN_ETL_GRID, columns, "55vh"),
        ]
    )


def audit_layout(**_: Any) -> html.Div:
    actions = [{"label": a, "value": a} for a in audit.ACTIONS]
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(html.H1("Audit log", className="h3 mb-0"), width="auto"),
                    dbc.Col(html.Div(id=aid.AUDIT_SUMMARY, className="small text-muted pt-2")),
                    dbc.Col(
                        html.A(
                            "Download CSV",
                            id=aid.AUDIT_CSV_LINK,
                            href="/admin/audit.csv",
                            className="btn btn-outline-primary btn-sm",
                        ),
                        width="auto",
                    ),
                ],
                className="align-items-baseline mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(dbc.Input(id=aid.AUDIT_USERNAME, placeholder="User", debounce=True), md=2),
                    dbc.Col(
                        dcc.Dropdown(id=aid.AUDIT_ACTION, options=actions, placeholder="Any action"), md=2
                    ),
                    dbc.Col(
                        dbc.Input(id=aid.AUDIT_TARGET, placeholder="Target (e.g. patient id)", debounce=True),
                        md=3,
                    ),
                    dbc.Col(dbc.Input(id=aid.AUDIT_IP, placeholder="From (IP)", debounce=True), md=2),
                    dbc.Col(
                        dcc.DatePickerRange(
                            id=aid.AUDIT_DATES, display_format="D MMM YYYY", first_day_of_week=1
                        ),
                        md=3,
                    ),
                ],
                className="g-2 mb-2",
            ),
            _grid(aid.AUDIT_GRID, AUDIT_COLUMNS),
        ]
    )


# --- the user bar and the role check on page skeletons ---------------------------------------------------------------------
def user_bar() -> Any:
    """Who is signed in, their pages and a logout button; in no-auth mode a banner saying so."""
    cfg: AuthConfig | None = current_app.config.get("OUTCOMES_AUTH") if has_request_context() else None
    if cfg is None:
        return html.Div(id=aid.USER_BAR)
    if cfg.mode == "no_auth":
        return dbc.Alert(
            [
                html.Strong("No login: local mode. "),
                "Anyone using this computer sees every clinic's patients. Do not leave it unattended.",
            ],
            id=aid.LOCAL_BANNER,
            color="warning",
            className="mb-0 rounded-0 py-1 small no-print",
        )
    user: store.User | None = g.get("auth_user")
    if user is None:
        return html.Div(id=aid.USER_BAR)
    links = [html.A(t, href=h, className="me-3") for t, h in ADMIN_LINKS if policy.path_allowed(user.role, h)]
    return html.Div(
        [
            html.Span(links),
            html.A("Account", href="/account", className="me-3"),
            html.Span(f"Signed in as {user.username} ({user.describe()})", className="me-2 text-muted"),
            html.Form(
                [
                    dcc.Input(
                        type="hidden", name="csrf_token", value=session.get("csrf", ""), id="auth-logout-csrf"
                    ),
                    html.Button(
                        "Log out", id=aid.LOGOUT_BUTTON, className="btn btn-link btn-sm p-0 align-baseline"
                    ),
                ],
                id=aid.LOGOUT_FORM,
                method="POST",
                action="/logout",
                className="d-inline",
            ),
        ],
        id=aid.USER_BAR,
        className="d-flex justify-content-end align-items-baseline px-3 py-1 small bg-light border-bottom no-print",
    )


def with_user_bar(shell: Callable[[], Any]) -> Callable[[], Any]:
    def layout() -> Any:
        return html.Div([user_bar(), shell()])

    return layout


def _denied() -> dbc.Alert:
    user = g.get("auth_user")
    home = policy.HOME.get(user.role, "/account") if user else "/login"
    return dbc.Alert(
        [
            html.H1("No access", className="h4"),
            html.P("Your role cannot open this page."),
            dbc.Button("Back", href=home, color="primary", outline=True),
        ],
        color="light",
        className="border mt-3",
    )


def guard(layout: Any, key: str) -> Any:
    """A page layout that renders "No access" for a signed-in role not allowed on page `key` (the data callbacks
    are refused anyway; this keeps in-app navigation honest)."""
    if getattr(layout, "auth_original", None) is not None or not callable(layout):
        return layout

    def guarded(**kwargs: Any) -> Any:
        user = g.get("auth_user") if has_request_context() else None
        cfg = current_app.config.get("OUTCOMES_AUTH") if has_request_context() else None
        if cfg is not None and user is not None and not policy.page_allowed(user.role, key):
            return _denied()
        return layout(**kwargs)

    guarded.auth_original = layout  # type: ignore[attr-defined]
    return guarded


def guard_all_pages() -> None:
    for page in dash.page_registry.values():
        page["layout"] = guard(page["layout"], policy.page_key(page))


# --- callback bodies ------------------------------------------------------------------------------------------------------
def account_info(user: store.User | None) -> Any:
    if user is None:
        return None
    pages = [k for k in policy.PAGE_ROLES if policy.page_allowed(user.role, k) and k in _registered()]
    return dbc.Card(
        dbc.CardBody(
            [
                html.P([html.Strong("User: "), user.username]),
                html.P([html.Strong("Role: "), user.role]),
                html.P([html.Strong("Sees: "), user.describe()]),
                html.P(
                    [html.Strong("Pages: ")]
                    + [html.A(p, href=p.split("<")[0], className="me-2") for p in pages]
                ),
            ]
        )
    )


def _registered() -> set[str]:
    return {policy.page_key(p) for p in dash.page_registry.values()}


def _iso(value: Any) -> Any:
    return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, dt.datetime) else value


def users_rows(ctx: AppContext) -> list[dict[str, Any]]:
    return [
        {
            "username": u.username,
            "display_name": u.display_name or "",
            "role": u.role,
            "scope": u.describe(),
            "active": "yes" if u.is_active else "disabled",
            "last_login_at": _iso(u.last_login_at) or "never",
        }
        for u in store.list_users(ctx.engine)
    ]


def etl_rows(ctx: AppContext) -> tuple[list[dict[str, Any]], str]:
    with ctx.engine.connect() as conn:
        batches = conn.execute(select(etl_batches).order_by(etl_batches.c.batch_id.desc()).limit(200)).all()
        counts = {
            "patients": conn.execute(select(func.count()).select_from(patients)).scalar_one(),
            "episodes summarised": conn.execute(
                select(func.count()).select_from(episode_summary)
            ).scalar_one(),
            "rejected rows": conn.execute(select(func.count()).select_from(etl_rejects)).scalar_one(),
        }
    rows = [{k: _iso(v) for k, v in b._asdict().items() if k != "sha256"} for b in batches]
    return rows, " · ".join(f"{n}: {c:,}" for n, c in counts.items())


def audit_rows(
    ctx: AppContext, username: str | None, action: str | None, target: str | None, ip: str | None, start, end
) -> tuple[list[dict[str, Any]], str, str]:
    from urllib.parse import urlencode

    from dashboard.auth.web import audit_filters_from

    args = {"username": username, "action": action, "target": target, "ip": ip, "start": start, "end": end}
    args = {k: str(v) for k, v in args.items() if v}
    filters = audit_filters_from(args)
    df = audit.query(ctx.engine, filters)
    total = audit.count(ctx.engine, filters)
    rows = [
        {k: _iso(v) for k, v in r.items()}
        for r in df.astype(object).where(df.notna(), None).to_dict("records")
    ]
    shown = f"{len(rows):,} of {total:,} entries" if total > len(rows) else f"{total:,} entries"
    return rows, shown, "/admin/audit.csv" + (f"?{urlencode(args)}" if args else "")


# --- wiring -------------------------------------------------------------------------------------------------------------
def register(app: Dash, ctx: AppContext, config: AuthConfig) -> None:
    dash.register_page(
        "dashboard.auth.account", path="/account", name="Account", title="Account", layout=account_layout
    )
    dash.register_page(
        "dashboard.auth.users", path="/admin/users", name="Users", title="Users", layout=users_layout
    )
    dash.register_page(
        "dashboard.auth.etl", path="/admin/etl", name="ETL status", title="ETL status", layout=etl_layout
    )
    dash.register_page(
        "dashboard.auth.audit", path="/admin/audit", name="Audit log", title="Audit log", layout=audit_layout
    )
    app.layout = with_user_bar(app.layout) if callable(app.layout) else app.layout
    guard_all_pages()

    @app.callback(Output(aid.ACCOUNT, "children"), Input(aid.ACCOUNT, "id"))
    def _account(_id):
        return account_info(g.get("auth_user"))

    @app.callback(Output(aid.ADMIN_USERS_GRID, "rowData"), Input(aid.ADMIN_USERS_GRID, "id"))
    def _users(_id):
        return users_rows(ctx)

    @app.callback(
        Output(aid.ADMIN_ETL_GRID, "rowData"),
        Output(aid.ADMIN_ETL_COUNTS, "children"),
        Input(aid.ADMIN_ETL_GRID, "id"),
    )
    def _etl(_id):
        return etl_rows(ctx)

    @app.callback(
        Output(aid.AUDIT_GRID, "rowData"),
        Output(aid.AUDIT_SUMMARY, "children"),
        Output(aid.AUDIT_CSV_LINK, "href"),
        Input(aid.AUDIT_USERNAME, "value"),
        Input(aid.AUDIT_ACTION, "value"),
        Input(aid.AUDIT_TARGET, "value"),
        Input(aid.AUDIT_IP, "value"),
        Input(aid.AUDIT_DATES, "start_date"),
        Input(aid.AUDIT_DATES, "end_date"),
    )
    def _audit(username, action, target, ip, start, end):
        return audit_rows(ctx, username, action, target, ip, start, end)
