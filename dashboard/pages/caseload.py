"""Caseload (`/`): active patients with their flags, paged, sorted and filtered by the database."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Input, Output, dcc, html, no_update

from dashboard import ids
from dashboard.components import fmt_change, fmt_num, fmt_pct, missing
from dashboard.context import AppContext
from dashboard.flags import FLAG_LABELS, FLAGS
from dashboard.queries import caseload as q

PATH = "/"
TITLE = "Caseload"

MCID_SHORT = {
    "pain_leg": "Leg pain",
    "odi": "ODI",
    "numbness": "Numbness",
    "slr_left": "SLR L",
    "slr_right": "SLR R",
}
#: Hidden grid columns that carry the page's own filters into the grid's filter model, so a change of filter
#: makes the infinite row model drop its cache and ask the server again.
FILTER_COLUMNS = {
    "flag": "filter_flag",
    "therapist_id": "filter_therapist",
    "clinic_id": "filter_clinic",
    "search": "filter_search",
}
ALL = "all"

COLUMN_DEFS: list[dict[str, Any]] = [
    {"headerName": "Patient", "field": "patient", "colId": "patient", "minWidth": 140, "flex": 2},
    {"headerName": "ID", "field": "patient_id", "colId": "patient_id", "minWidth": 90, "flex": 1},
    {
        "headerName": "Week",
        "field": "week",
        "colId": "days_in_episode",
        "minWidth": 72,
        "type": "rightAligned",
    },
    {
        "headerName": "Leg pain",
        "headerTooltip": "Leg pain, baseline → latest (change); 0-10, lower is better",
        "field": "leg_pain",
        "colId": "pain_leg_change",
        "minWidth": 120,
        "flex": 1,
    },
    {
        "headerName": "ODI Δ",
        "headerTooltip": "Oswestry Disability Index, change from baseline in points; lower is better",
        "field": "odi_change_text",
        "colId": "odi_change",
        "minWidth": 76,
        "type": "rightAligned",
    },
    {
        "headerName": "MCID",
        "headerTooltip": "Measures whose improvement reached the clinically important (or detectable) change",
        "field": "mcid",
        "sortable": False,
        "minWidth": 110,
        "flex": 1,
    },
    {
        "headerName": "Adh. 14 d",
        "headerTooltip": "Home exercises done / scheduled in the last 14 days",
        "field": "adherence_14d_text",
        "colId": "adherence_14d",
        "minWidth": 90,
        "type": "rightAligned",
    },
    {
        "headerName": "Adh. all",
        "headerTooltip": "Home exercises done / scheduled since the start of the episode",
        "field": "adherence_text",
        "colId": "adherence",
        "minWidth": 82,
        "type": "rightAligned",
    },
    {
        "headerName": "Last activity",
        "field": "last_activity_text",
        "colId": "last_activity",
        "tooltipField": "last_activity_date",
        "minWidth": 100,
    },
    {
        "headerName": "Flags",
        "field": "flags",
        "colId": "n_flags",
        "cellRenderer": "FlagBadges",
        "headerTooltip": "Sorted by the number of flags",
        "minWidth": 250,
        "flex": 3,
    },
    {"headerName": "Therapist", "field": "therapist", "colId": "therapist_id", "minWidth": 96, "flex": 1},
    *(
        {"field": col, "colId": col, "hide": True, "filter": "agTextColumnFilter", "sortable": False}
        for col in FILTER_COLUMNS.values()
    ),
]


def layout(**_query: Any) -> html.Div:
    flag_options = [{"label": "All", "value": ALL}] + [{"label": FLAG_LABELS[f], "value": f} for f in FLAGS]
    return html.Div(
        [
            dcc.Location(id=ids.CASELOAD_LOCATION, refresh="callback-nav"),
            dbc.Row(
                [
                    dbc.Col(html.H1("Caseload", className="h3 mb-0"), width="auto"),
                    dbc.Col(html.Div(id=ids.CASELOAD_AS_OF, className="text-muted small"), className="pt-2"),
                ],
                className="align-items-baseline mb-2",
            ),
            html.Div(
                dbc.RadioItems(
                    id=ids.CASELOAD_FLAG,
                    options=flag_options,
                    value=ALL,
                    inline=True,
                    className="btn-group flex-wrap flag-filter",
                    inputClassName="btn-check",
                    labelClassName="btn btn-outline-primary btn-sm",
                    labelCheckedClassName="active",
                ),
                className="mb-2",
                role="group",
                **{"aria-label": "Filter by flag"},
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label(
                                "Search patient id or name",
                                html_for=ids.CASELOAD_SEARCH,
                                className="visually-hidden",
                            ),
                            dbc.Input(
                                id=ids.CASELOAD_SEARCH,
                                type="search",
                                placeholder="Search patient id or name",
                                debounce=True,
                            ),
                        ],
                        md=4,
                    ),
                    dbc.Col(
                        dcc.Dropdown(id=ids.CASELOAD_CLINIC, placeholder="All clinics", options=[]), md=4
                    ),
                    dbc.Col(
                        dcc.Dropdown(id=ids.CASELOAD_THERAPIST, placeholder="All therapists", options=[]),
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id=ids.CASELOAD_SUMMARY, className="small text-muted mb-1"),
            dag.AgGrid(
                id=ids.CASELOAD_GRID,
                rowModelType="infinite",
                columnDefs=COLUMN_DEFS,
                defaultColDef={
                    "sortable": True,
                    "resizable": True,
                    "filter": False,
                    "suppressHeaderMenuButton": True,
                },
                getRowId="params.data.row_id",
                columnSize="responsiveSizeToFit",
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": 25,
                    "paginationPageSizeSelector": False,
                    "cacheBlockSize": 25,
                    "maxBlocksInCache": 4,
                    "rowHeight": 38,
                    "tooltipShowDelay": 300,
                    "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": False},
                    "localeText": {"noRowsToShow": "No active patients match these filters"},
                },
                className="ag-theme-quartz caseload-grid",
                style={"height": "calc(100vh - 300px)", "minHeight": "420px"},
            ),
        ]
    )


# --- callback bodies (plain functions: tests call these) ---------------------------------------------------------
def filters_from_model(filter_model: dict[str, Any] | None) -> q.CaseloadFilters:
    """Read the page filters back out of the grid's filter model (unknown keys and values are ignored)."""
    model = filter_model or {}

    def value(key: str) -> str | None:
        entry = model.get(FILTER_COLUMNS[key]) or {}
        text = entry.get("filter")
        return str(text) if text not in (None, "") else None

    flag = value("flag")
    return q.CaseloadFilters(
        flag=flag if flag in FLAGS else None,
        therapist_id=value("therapist_id"),
        clinic_id=value("clinic_id"),
        search=value("search"),
    )


def filter_model(
    flag: str | None, therapist_id: str | None, clinic_id: str | None, search: str | None
) -> dict:
    values = {
        "flag": None if flag in (None, ALL) else flag,
        "therapist_id": therapist_id,
        "clinic_id": clinic_id,
        "search": (search or "").strip() or None,
    }
    return {
        FILTER_COLUMNS[key]: {"filterType": "text", "type": "equals", "filter": val}
        for key, val in values.items()
        if val is not None
    }


def _sort_keys(sort_model: list[dict[str, Any]] | None) -> list[q.SortKey]:
    allowed = set(q.sortable_columns())
    return [
        q.SortKey(item["colId"], item.get("sort") == "desc")
        for item in (sort_model or [])
        if item.get("colId") in allowed
    ]


def _as_date(value: Any) -> dt.date | None:
    if missing(value):
        return None
    return value.date() if isinstance(value, pd.Timestamp | dt.datetime) else value


def _ago_text(value: Any, as_of: Any) -> str:
    day, ref = _as_date(value), _as_date(as_of)
    if day is None:
        return "never"
    if ref is None:
        return f"{day:%d %b %Y}"
    ago = (ref - day).days
    return "today" if ago == 0 else f"{ago} d ago"


def grid_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One caseload row as the grid shows it (numbers formatted here, sorted by their raw value in SQL)."""
    first, last = rec.get("first_name"), rec.get("last_name")
    name = ", ".join(p for p in (last, first) if not missing(p)) or rec["patient_id"]
    leg = "—"
    if not missing(rec.get("pain_leg_latest")):
        base = rec.get("pain_leg_baseline")
        leg = (
            f"{fmt_num(base)} → {fmt_num(rec['pain_leg_latest'])} ({fmt_change(rec.get('pain_leg_change'))})"
            if not missing(base)
            else f"no baseline → {fmt_num(rec['pain_leg_latest'])}"
        )
    mcid = [label for code, label in MCID_SHORT.items() if rec.get(f"mcid_{code}") is True]
    adh14 = rec.get("adherence_14d")
    return {
        "row_id": f"{rec['patient_id']}#{rec['episode_id']}",
        "patient_id": rec["patient_id"],
        "patient": name,
        "week": int(rec["days_in_episode"]) // 7 + 1,
        "leg_pain": leg,
        "odi_change_text": fmt_change(rec.get("odi_change"), 0),
        "mcid": ", ".join(mcid) or "—",
        "adherence_14d_text": fmt_pct(adh14) if not missing(adh14) else "none due",
        "adherence_text": fmt_pct(rec.get("adherence")),
        "last_activity_text": _ago_text(rec.get("last_activity"), rec.get("as_of")),
        "last_activity_date": f"{_as_date(rec['last_activity']):%d %b %Y}"
        if _as_date(rec.get("last_activity"))
        else "",
        "flags": [f for f in FLAGS if rec.get(f"flag_{f}") == 1],
        "therapist": rec.get("therapist_name")
        if not missing(rec.get("therapist_name"))
        else rec["therapist_id"],
    }


def grid_rows(ctx: AppContext, request: dict[str, Any] | None) -> dict[str, Any]:
    """The infinite row model's `getRowsRequest` -> `getRowsResponse`, one block at a time."""
    request = request or {}
    start = max(0, int(request.get("startRow") or 0))
    end = int(request.get("endRow") or start + ctx.page_size)
    filters = filters_from_model(request.get("filterModel"))
    df = q.caseload_page(
        ctx.engine,
        ctx.scope(),
        filters,
        ctx.flag_rules,
        sort=_sort_keys(request.get("sortModel")),
        offset=start,
        limit=max(1, end - start),
    )
    if df.empty:
        total = q.caseload_total(ctx.engine, ctx.scope(), filters, ctx.flag_rules) if start else 0
        return {"rowData": [], "rowCount": total}
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    return {"rowData": [grid_row(r) for r in records], "rowCount": int(records[0]["total_rows"])}


def _count_label(text: str, count: int) -> list[Any]:
    return [text, html.Span(f"{count:,}", className="badge rounded-pill text-bg-light ms-1 flag-count")]


def flag_filter_options(
    ctx: AppContext, therapist_id: str | None, clinic_id: str | None, search: str | None
) -> tuple[list[dict[str, Any]], str]:
    """Flag filter buttons labelled with their counts, and a one-line summary of the caseload."""
    filters = q.CaseloadFilters(
        therapist_id=therapist_id, clinic_id=clinic_id, search=(search or "").strip() or None
    )
    counts = q.flag_counts(ctx.engine, ctx.scope(), filters, ctx.flag_rules)
    options = [{"label": _count_label("All", counts["all"]), "value": ALL}] + [
        {"label": _count_label(FLAG_LABELS[f], counts[f]), "value": f} for f in FLAGS
    ]
    summary = (
        f"{counts['all']} active patient{'s' if counts['all'] != 1 else ''}; click a row to open the patient."
    )
    return options, summary


def filter_choices(
    ctx: AppContext, clinic_id: str | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Clinic and therapist dropdown options, limited to the viewer's scope."""
    scope = ctx.scope()
    clinics = q.clinic_options(ctx.engine, scope)
    therapists = q.therapist_options(ctx.engine, scope, clinic_id)
    clinic_opts = [{"label": r.name or r.clinic_id, "value": r.clinic_id} for r in clinics.itertuples()]
    therapist_opts = [
        {"label": r.name or r.therapist_id, "value": r.therapist_id} for r in therapists.itertuples()
    ]
    return clinic_opts, therapist_opts


def as_of_text(ctx: AppContext) -> str:
    as_of = q.summary_as_of(ctx.engine, ctx.scope())
    return f"Summary as of {as_of:%d %b %Y}" if as_of else "No summary computed yet"


def patient_href(cell: dict[str, Any] | None) -> str | None:
    """Where a click on a caseload cell goes: the patient's page (the row id is `patient_id#episode_id`)."""
    if not cell or not cell.get("rowId"):
        return None
    patient_id = str(cell["rowId"]).rsplit("#", 1)[0]
    return f"/patients/{quote(patient_id, safe='')}"


# --- wiring ------------------------------------------------------------------------------------------------------
def register(app: Dash, ctx: AppContext) -> None:
    @app.callback(
        Output(ids.CASELOAD_GRID, "filterModel"),
        Input(ids.CASELOAD_FLAG, "value"),
        Input(ids.CASELOAD_THERAPIST, "value"),
        Input(ids.CASELOAD_CLINIC, "value"),
        Input(ids.CASELOAD_SEARCH, "value"),
        prevent_initial_call=True,
    )
    def _filters(flag, therapist_id, clinic_id, search):
        return filter_model(flag, therapist_id, clinic_id, search)

    @app.callback(Output(ids.CASELOAD_GRID, "getRowsResponse"), Input(ids.CASELOAD_GRID, "getRowsRequest"))
    def _rows(request):
        if request is None:
            return no_update
        return grid_rows(ctx, request)

    @app.callback(
        Output(ids.CASELOAD_FLAG, "options"),
        Output(ids.CASELOAD_SUMMARY, "children"),
        Input(ids.CASELOAD_THERAPIST, "value"),
        Input(ids.CASELOAD_CLINIC, "value"),
        Input(ids.CASELOAD_SEARCH, "value"),
    )
    def _counts(therapist_id, clinic_id, search):
        return flag_filter_options(ctx, therapist_id, clinic_id, search)

    @app.callback(
        Output(ids.CASELOAD_CLINIC, "options"),
        Output(ids.CASELOAD_THERAPIST, "options"),
        Output(ids.CASELOAD_AS_OF, "children"),
        Input(ids.CASELOAD_CLINIC, "value"),
    )
    def _choices(clinic_id):
        clinic_opts, therapist_opts = filter_choices(ctx, clinic_id)
        return clinic_opts, therapist_opts, as_of_text(ctx)

    @app.callback(
        Output(ids.CASELOAD_LOCATION, "pathname"),
        Input(ids.CASELOAD_GRID, "cellClicked"),
        prevent_initial_call=True,
    )
    def _open(cell):
        return patient_href(cell) or no_update
