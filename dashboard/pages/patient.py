"""Patient (`/patients/<patient_id>`): outcome trends, adherence, programme and session log, as a printable report.

The layout is a skeleton holding the patient id; callbacks read the data, each through a scoped query, so a patient
outside the viewer's scope looks exactly like an unknown id ("not found").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import flag_badges, fmt_change, fmt_num, fmt_pct, key_number, missing, section
from dashboard.context import AppContext
from dashboard.figures import adherence as fa
from dashboard.figures import programme as fp
from dashboard.figures import trends as ft
from dashboard.flags import flags_for
from dashboard.queries import patient as qp

PATH_TEMPLATE = "/patients/<patient_id>"
#: Measures charted for every patient (empty charts say so); other catalog measures appear when recorded.
CORE_MEASURES = ("pain_leg", "pain_back", "numbness", "odi", "slr_left", "slr_right", "lumbar_flexion")
#: No mode bar (it covers legends and is noise in a clinic); drag to zoom and double-click to reset still work.
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
NOT_FOUND_TEXT = "Patient not found"

SESSION_COLUMNS = [
    {"headerName": "Date", "field": "date", "width": 116, "sort": "desc"},
    {"headerName": "Setting", "field": "setting", "width": 96},
    {"headerName": "Exercise", "field": "exercise", "minWidth": 170, "flex": 1},
    {"headerName": "Type", "field": "type", "minWidth": 150},
    {"headerName": "Status", "field": "status", "width": 110},
    {"headerName": "Sets × reps", "field": "dose", "width": 120},
    {"headerName": "Minutes", "field": "minutes", "width": 110},
    {"headerName": "Pain", "field": "pain_during", "width": 80, "type": "rightAligned"},
    {"headerName": "Skip reason", "field": "skip_reason", "minWidth": 140, "flex": 1},
]


def title(patient_id: str | None = None, **_: Any) -> str:
    return f"Patient {unquote(patient_id)}" if patient_id else "Patient"


def _graph(graph_id: str, height: int = 280) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id, config=GRAPH_CONFIG, style={"height": f"{height}px"}, className="report-graph"
    )


def layout(patient_id: str | None = None, **_query: Any) -> html.Div:
    pid = unquote(patient_id) if patient_id else None
    return html.Div(
        [
            dcc.Store(id=ids.PATIENT_ID, data=pid),
            dcc.Store(id=ids.PATIENT_DEFAULT_DATES),
            html.Div(id=ids.PATIENT_PRINT_DONE, hidden=True),
            dbc.Alert(
                [
                    html.H1(NOT_FOUND_TEXT, className="h4"),
                    html.P(
                        "There is no patient with this id among the patients you can see. "
                        "Check the link, or find the patient on the caseload."
                    ),
                    dbc.Button("Back to the caseload", href="/", color="primary", outline=True),
                ],
                id=ids.PATIENT_NOT_FOUND,
                color="light",
                className="border mt-3",
                is_open=False,
            ),
            html.Div(
                [
                    html.Div(html.Div("Loading patient…", className="text-muted"), id=ids.PATIENT_HEADER),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label(
                                        "Date range", html_for=ids.PATIENT_DATES, className="small mb-0 me-2"
                                    ),
                                    html.Div(
                                        dcc.DatePickerRange(
                                            id=ids.PATIENT_DATES,
                                            display_format="D MMM YYYY",
                                            first_day_of_week=1,
                                            minimum_nights=0,
                                            updatemode="bothdates",
                                        ),
                                        className="date-range",
                                    ),
                                    dbc.Button(
                                        "Whole episode",
                                        id=ids.PATIENT_RESET_DATES,
                                        color="secondary",
                                        outline=True,
                                        size="sm",
                                        className="ms-2",
                                    ),
                                ],
                                className="d-flex align-items-center flex-wrap gap-1",
                            ),
                            dbc.Col(
                                dbc.Button(
                                    "Print report",
                                    id=ids.PATIENT_PRINT,
                                    color="primary",
                                    outline=True,
                                    size="sm",
                                ),
                                width="auto",
                                className="no-print",
                            ),
                        ],
                        className="my-2 align-items-center date-controls",
                    ),
                    dbc.Row(id=ids.PATIENT_KEY_NUMBERS, className="g-2 mb-3"),
                    section(
                        "Outcomes",
                        html.Div(id=ids.PATIENT_OUTCOME_TABLE),
                        dbc.Row(id=ids.PATIENT_TRENDS, className="g-2"),
                        subtitle="Each measurement with its date; dashed line = baseline; grey band = change "
                        "smaller than the clinically important (or detectable) threshold.",
                    ),
                    section(
                        "Home exercise adherence",
                        html.Div(id=ids.SESSIONS_EMPTY),
                        _graph(ids.ADHERENCE_WEEKLY, 280),
                        _graph(ids.ADHERENCE_CALENDAR, 240),
                        dbc.Row(
                            [
                                dbc.Col(_graph(ids.SKIP_REASONS, 240), md=6),
                                dbc.Col(_graph(ids.PAIN_DURING, 240), md=6),
                            ],
                            className="g-2",
                        ),
                        subtitle="Done / scheduled home exercises; a partial exercise counts half.",
                    ),
                    section(
                        "Programme",
                        html.Div(_graph(ids.PROGRAMME_TIMELINE, 300), className="programme-timeline"),
                        _graph(ids.WEEKLY_DOSE, 360),
                        subtitle="Exercises over time by type, and the dose done against the dose prescribed.",
                    ),
                    section(
                        "Session log",
                        dag.AgGrid(
                            id=ids.SESSION_LOG,
                            columnDefs=SESSION_COLUMNS,
                            rowData=[],
                            defaultColDef={"sortable": True, "resizable": True, "filter": True},
                            dashGridOptions={
                                "pagination": True,
                                "paginationPageSize": 20,
                                "localeText": {"noRowsToShow": "No sessions in this date range"},
                            },
                            columnSize="responsiveSizeToFit",
                            className="ag-theme-quartz",
                            style={"height": "420px"},
                        ),
                        class_name="session-log",
                    ),
                ],
                id=ids.PATIENT_BODY,
            ),
        ]
    )


# --- callback bodies -----------------------------------------------------------------------------------------------
@dataclass
class Overview:
    """What the page shows about the patient before any date range applies."""

    found: bool
    header: Any = None
    key_numbers: Any = None
    outcome_table: Any = None
    start: dt.date | None = None
    end: dt.date | None = None
    #: Baseline per measure of the latest episode ({code: {"baseline_value": ...}}): handed to the trends
    #: callback through the page's store, so it does not read the episode and its measures again.
    baselines: dict[str, dict[str, Any]] | None = None

    def store(self, patient_id: str) -> dict[str, Any]:
        """What the page keeps in `PATIENT_DEFAULT_DATES` for the other callbacks (JSON)."""
        return {
            "patient_id": patient_id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "baselines": self.baselines or {},
        }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _as_date(value: Any) -> dt.date | None:
    if missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _name(profile: dict[str, Any]) -> str:
    parts = [profile.get("first_name"), profile.get("last_name")]
    name = " ".join(p for p in parts if not missing(p))
    return name or f"Patient {profile['patient_id']}"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing values: `df.astype(object).where(df.notna(), None).to_dict("records")`
    without its per-block pandas work (~1 ms per call, three calls per overview)."""
    columns = {c: [None if missing(v) else v for v in df[c].tolist()] for c in df.columns}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _outcome_table(measures: list[dict[str, Any]]) -> Any:
    if not measures:
        return dbc.Alert("No outcome summary for this episode yet.", color="light", className="border small")
    rows = []
    for m in measures:
        if m["measure"] not in CORE_MEASURES and not m["n_values"]:
            continue
        base = (
            f"{fmt_num(m['baseline_value'])} ({_as_date(m['baseline_at']):%d %b})"
            if not missing(m["baseline_value"])
            else html.Span("no baseline recorded", className="text-warning-emphasis")
        )
        latest = (
            f"{fmt_num(m['latest_value'])} ({_as_date(m['latest_at']):%d %b})"
            if not missing(m["latest_value"])
            else "—"
        )
        if m["mcid_reached"] is True:
            verdict = dbc.Badge("important change reached", color="success", className="fw-normal")
        elif m["worsened"] is True:
            verdict = dbc.Badge("worse", color="danger", className="fw-normal")
        else:
            verdict = html.Span("—", className="text-muted")
        word = ft.THRESHOLD_WORDS.get(m["threshold_kind"], "threshold")
        threshold = (
            f"{fmt_num(m['mcid_abs'])} {m['unit']}"
            + (f" or {fmt_num(m['mcid_pct'])} % of baseline" if not missing(m["mcid_pct"]) else "")
            if not missing(m["mcid_abs"])
            else "—"
        )
        rows.append(
            html.Tr(
                [
                    html.Td(m["label"]),
                    html.Td(base),
                    html.Td(latest),
                    html.Td(fmt_change(m["change"])),
                    html.Td([threshold, html.Span(f" {word}", className="small text-muted")]),
                    html.Td(verdict),
                ]
            )
        )
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("Measure", "Baseline", "Latest", "Change", "Threshold", "")])
    )
    return dbc.Table(
        [head, html.Tbody(rows)], size="sm", hover=True, responsive=True, className="mb-3 outcome-table"
    )


def overview(ctx: AppContext, patient_id: str | None) -> Overview:
    """Header, key numbers and outcome table for the patient's latest episode; `found=False` when not visible."""
    if not patient_id:
        return Overview(found=False)
    scope = ctx.scope()
    profile_df = qp.patient_profile(ctx.engine, scope, patient_id)
    if profile_df.empty:
        return Overview(found=False)
    profile = _records(profile_df)[0]
    episodes = qp.patient_episodes(ctx.engine, scope, patient_id)
    meta = [
        f"ID {profile['patient_id']}",
        f"born {profile['birth_year']}",
        profile["sex"],
        profile.get("clinic_name") or profile["clinic_id"],
        f"therapist {profile.get('therapist_name') or profile['therapist_id']}",
    ]
    if episodes.empty:
        start, end = qp.patient_date_span(ctx.engine, scope, patient_id)
        header = html.Div(
            [
                html.H1(_name(profile), className="h3 mb-1"),
                html.Div(" · ".join(str(m) for m in meta), className="text-muted small"),
                dbc.Alert(
                    "No episode summary yet for this patient.", color="light", className="border small mt-2"
                ),
            ]
        )
        return Overview(
            found=True, header=header, key_numbers=[], outcome_table=None, start=start, end=end, baselines={}
        )

    ep = _records(episodes.iloc[:1])[0]
    measures = qp.episode_measures(ctx.engine, scope, patient_id, int(ep["episode_id"]))
    measure_rows = _records(measures)
    by_measure = {m["measure"]: m for m in measure_rows}
    start_date, as_of = _as_date(ep["start_date"]), _as_date(ep["as_of"])
    days = (as_of - start_date).days
    raised = (
        flags_for(
            changes={k: v["change"] for k, v in by_measure.items()},
            mcid_reached={k: v["mcid_reached"] for k, v in by_measure.items()},
            baselines={k: v["baseline_value"] for k, v in by_measure.items()},
            days_in_episode=days,
            visits=int(ep["visits"]),
            adherence_14d=ep["adherence_14d"],
            last_activity=_as_date(ep["last_activity"]),
            start_date=start_date,
            as_of=as_of,
            rules=ctx.flag_rules,
        )
        if ep["is_active"]
        else []
    )
    status = "active" if ep["is_active"] else f"discharged {_as_date(ep['end_date']) or ''}".strip()
    episode_text = (
        f"Episode from {start_date:%d %b %Y} · week {days // 7 + 1} · {status} · as of {as_of:%d %b %Y}"
    )
    header = html.Div(
        [
            html.Div(
                [
                    html.H1(_name(profile), className="h3 mb-0 me-3"),
                    html.Div(flag_badges(raised) if ep["is_active"] else [], className="d-inline-block"),
                ],
                className="d-flex align-items-center flex-wrap",
            ),
            html.Div(" · ".join(str(m) for m in meta), className="text-muted small"),
            html.Div(episode_text, className="small"),
        ]
    )

    def measure_number(code: str, label: str) -> Any:
        m = by_measure.get(code)
        if not m or missing(m["latest_value"]):
            return key_number(label, "—", "not measured")
        if missing(m["baseline_value"]):
            return key_number(label, fmt_num(m["latest_value"]), "no baseline recorded", "warning-emphasis")
        color = "success" if m["mcid_reached"] else ("danger" if m["worsened"] else None)
        return key_number(
            label,
            f"{fmt_num(m['baseline_value'])} → {fmt_num(m['latest_value'])}",
            fmt_change(m["change"]),
            color,
        )

    low = ctx.flag_rules.low_adherence
    adh14 = ep["adherence_14d"]
    numbers = [
        measure_number("pain_leg", "Leg pain (0-10)"),
        measure_number("odi", "ODI (%)"),
        key_number(
            "Adherence, last 14 d",
            fmt_pct(adh14) if not missing(adh14) else "none due",
            f"{fmt_num(ep['home_done_14d'])} of {ep['home_scheduled_14d']} exercises",
            "danger" if not missing(adh14) and adh14 < low else None,
        ),
        key_number(
            "Adherence, episode",
            fmt_pct(ep["adherence"]),
            f"{fmt_num(ep['home_done'])} of {ep['home_scheduled']} exercises",
        ),
        key_number("Clinic visits", str(ep["visits"])),
        key_number(
            "Last activity",
            f"{_as_date(ep['last_activity']):%d %b}" if ep["last_activity"] else "never",
            f"{(as_of - _as_date(ep['last_activity'])).days} days before as-of"
            if ep["last_activity"]
            else None,
        ),
    ]
    first = _as_date(ep["first_activity"])
    last = _as_date(ep["last_activity"])
    start = min(d for d in (start_date, first) if d)
    end = max(d for d in (as_of, last, _as_date(ep["end_date"])) if d)
    return Overview(
        found=True,
        header=header,
        key_numbers=numbers,
        outcome_table=_outcome_table(measure_rows),
        start=start,
        end=end,
        baselines={
            code: {"baseline_value": None if missing(m["baseline_value"]) else float(m["baseline_value"])}
            for code, m in by_measure.items()
        },
    )


def _parse_day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value[:10]) if value else None


def _baselines(ctx: AppContext, patient_id: str) -> dict[str, dict[str, Any]] | None:
    """The latest episode's baselines read from the marts; None when the patient is not visible."""
    scope = ctx.scope()
    episodes = qp.patient_episodes(ctx.engine, scope, patient_id)
    if episodes.empty:
        return {} if not qp.patient_profile(ctx.engine, scope, patient_id).empty else None
    summary = qp.episode_measures(ctx.engine, scope, patient_id, int(episodes.iloc[0]["episode_id"]))
    return {r["measure"]: r for r in summary.to_dict("records")}


def trend_cards(
    ctx: AppContext,
    patient_id: str | None,
    start: str | None,
    end: str | None,
    known: dict[str, Any] | None = None,
) -> list[Any]:
    """One chart per measure over the date range; the baseline comes from the episode summary.

    known: the overview's `Overview.store()` for this patient (the page passes it from its store, saving the
    episode and measure reads); without it they are read here. Only baselines come from it (the client could
    alter it): the points are read under the viewer's scope, and with no points the patient's visibility is
    checked, so a patient out of scope gets no chart whatever the client sends.
    """
    if not patient_id:
        return []
    scope = ctx.scope()
    points = qp.patient_scores(ctx.engine, scope, patient_id, _parse_day(start), _parse_day(end))
    baselines = known.get("baselines") if known and known.get("patient_id") == patient_id else None
    if baselines is None:
        baselines = _baselines(ctx, patient_id)
    elif points.empty and qp.patient_profile(ctx.engine, scope, patient_id).empty:
        baselines = None  # the store is the client's: no points may also mean "not visible"
    if baselines is None:
        return []
    catalog = qp.chart_catalog(ctx.engine)
    by_measure = dict(tuple(points.groupby("measure", sort=False))) if not points.empty else {}
    no_points = points.iloc[0:0]
    cards = []
    for m in catalog.to_dict("records"):
        if not (m["code"] in CORE_MEASURES or m["code"] in by_measure or m["code"] in baselines):
            continue
        fig = ft.trend_figure(
            by_measure.get(m["code"], no_points),
            m,
            baselines.get(m["code"]),
            x_range=(_parse_day(start), _parse_day(end)),
        )
        cards.append(
            dbc.Col(
                dcc.Graph(figure=fig, config=GRAPH_CONFIG, className="report-graph trend-graph"),
                md=6,
                className="trend-card",
            )
        )
    return cards


def session_outputs(
    ctx: AppContext, patient_id: str | None, start: str | None, end: str | None
) -> dict[str, Any]:
    """Adherence, programme figures and the session log for the date range."""
    scope = ctx.scope()
    s, e = _parse_day(start), _parse_day(end)
    df = qp.patient_sessions(ctx.engine, scope, patient_id or "", s, e)
    type_labels = qp.exercise_type_names(ctx.engine) if not df.empty else {}
    low = ctx.flag_rules.low_adherence
    note = (
        dbc.Alert("No sessions logged in this date range.", color="light", className="border small")
        if df.empty
        else None
    )
    return {
        "note": note,
        "weekly": fa.weekly_adherence_figure(df, low=low),
        "calendar": fa.calendar_figure(df, s, e),
        "skips": fa.skip_reasons_figure(df),
        "pain": fa.pain_during_figure(df, x_range=(s, e)),
        "timeline": fp.programme_timeline_figure(df, type_labels, x_range=(s, e)),
        "dose": fp.weekly_dose_figure(df),
        "log": session_log_rows(df, type_labels),
    }


def _count(value: Any) -> str:
    return "—" if missing(value) else f"{int(value)}"


def session_log_rows(df: pd.DataFrame, type_labels: dict[str, str]) -> list[dict[str, Any]]:
    """The session log as grid rows: done against prescribed, as "3 × 10 of 3 × 10" and "12 of 15"."""
    rows = []
    for r in _records(df):
        dose = (
            "—" if r["sets"] is None and r["reps"] is None else f"{_count(r['sets'])} × {_count(r['reps'])}"
        )
        if r["prescribed_sets"] is not None or r["prescribed_reps"] is not None:
            dose += f" of {_count(r['prescribed_sets'])} × {_count(r['prescribed_reps'])}"
        minutes = fmt_num(r["duration_min"]) + (
            f" of {fmt_num(r['prescribed_min'])}" if r["prescribed_min"] is not None else ""
        )
        rows.append(
            {
                "date": _as_date(r["session_date"]).isoformat(),
                "setting": r["setting"],
                "exercise": r["exercise"],
                "type": type_labels.get(r["exercise_type"], r["exercise_type"]),
                "status": r["status"],
                "dose": dose,
                "minutes": minutes,
                "pain_during": fmt_num(r["pain_during"]) if r["pain_during"] is not None else "",
                "skip_reason": r["skip_reason"] or "",
            }
        )
    return rows


# --- wiring --------------------------------------------------------------------------------------------------------
def register(app: Dash, ctx: AppContext) -> None:
    @app.callback(
        Output(ids.PATIENT_HEADER, "children"),
        Output(ids.PATIENT_KEY_NUMBERS, "children"),
        Output(ids.PATIENT_OUTCOME_TABLE, "children"),
        Output(ids.PATIENT_BODY, "hidden"),
        Output(ids.PATIENT_NOT_FOUND, "is_open"),
        Output(ids.PATIENT_DEFAULT_DATES, "data"),
        Output(ids.PATIENT_DATES, "start_date"),
        Output(ids.PATIENT_DATES, "end_date"),
        Input(ids.PATIENT_ID, "data"),
    )
    def _overview(patient_id):
        ov = overview(ctx, patient_id)
        if not ov.found:
            return None, [], None, True, True, None, None, None
        store = ov.store(patient_id)
        return ov.header, ov.key_numbers, ov.outcome_table, False, False, store, store["start"], store["end"]

    @app.callback(
        Output(ids.PATIENT_DATES, "start_date", allow_duplicate=True),
        Output(ids.PATIENT_DATES, "end_date", allow_duplicate=True),
        Input(ids.PATIENT_RESET_DATES, "n_clicks"),
        State(ids.PATIENT_DEFAULT_DATES, "data"),
        prevent_initial_call=True,
    )
    def _reset(_clicks, defaults):
        if not defaults:
            return no_update, no_update
        return defaults["start"], defaults["end"]

    @app.callback(
        Output(ids.PATIENT_TRENDS, "children"),
        Input(ids.PATIENT_DATES, "start_date"),
        Input(ids.PATIENT_DATES, "end_date"),
        State(ids.PATIENT_ID, "data"),
        State(ids.PATIENT_DEFAULT_DATES, "data"),
        prevent_initial_call=True,
    )
    def _trends(start, end, patient_id, known):
        return trend_cards(ctx, patient_id, start, end, known if isinstance(known, dict) else None)

    @app.callback(
        Output(ids.SESSIONS_EMPTY, "children"),
        Output(ids.ADHERENCE_WEEKLY, "figure"),
        Output(ids.ADHERENCE_CALENDAR, "figure"),
        Output(ids.SKIP_REASONS, "figure"),
        Output(ids.PAIN_DURING, "figure"),
        Output(ids.PROGRAMME_TIMELINE, "figure"),
        Output(ids.WEEKLY_DOSE, "figure"),
        Output(ids.SESSION_LOG, "rowData"),
        Input(ids.PATIENT_DATES, "start_date"),
        Input(ids.PATIENT_DATES, "end_date"),
        State(ids.PATIENT_ID, "data"),
        prevent_initial_call=True,
    )
    def _sessions(start, end, patient_id):
        out = session_outputs(ctx, patient_id, start, end)
        return (
            out["note"],
            out["weekly"],
            out["calendar"],
            out["skips"],
            out["pain"],
            out["timeline"],
            out["dose"],
            out["log"],
        )

    app.clientside_callback(
        "function(n) { if (n) { window.print(); } return ''; }",
        Output(ids.PATIENT_PRINT_DONE, "children"),
        Input(ids.PATIENT_PRINT, "n_clicks"),
        prevent_initial_call=True,
    )
