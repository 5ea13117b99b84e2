"""Outcomes (`/outcomes`, managers): exercise types, therapists and clinics compared honestly.

The callbacks are thin: `filters_from_inputs` -> `queries.outcomes` (grouped SQL over the marts for the main
outputs, the filtered episodes' rows for the regressions; scope enforced in SQL) -> `figures.outcomes` charts.
Nothing is kept between callbacks. Every body is a plain function taking the `AppContext`, so tests call it
without a browser.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import ids, stats
from dashboard.components import fmt_num, missing, section
from dashboard.context import AppContext
from dashboard.figures import outcomes as fig
from dashboard.queries import caseload as cq
from dashboard.queries import outcomes as q
from dashboard.queries import outcomes_packed as qp
from dashboard.queries.catalog import exercise_type_labels

PATH = "/outcomes"
TITLE = "Outcomes"

TYPE_RULE = (
    f"An episode counts for every exercise type that makes up at least {q.TYPE_SHARE:.0%} of its logged dose "
    "(minutes done, completed and partial sessions; done sessions where no minutes were logged), home and clinic "
    "together unless a setting is chosen. Types overlap: one episode can count for several."
)
OBSERVATIONAL_NOTE = (
    "These are observational data, not a trial: therapists choose exercises for their patients, so sicker or more "
    "motivated patients may get some types more often. The adjusted estimates compare patients with similar "
    "baseline score, age, symptom duration and adherence (a linear regression), but cannot remove differences "
    "that were not measured. Treat differences as questions to look into, not as proof that one type works better."
)
MISSING_NOTE = (
    "Responder rates are shown two ways: among all who started with a baseline (ITT: a missing follow-up counts "
    "as not reached) and among completers (discharged with a follow-up). Episodes whose baseline is already within "
    "the MCID of the best value (ceiling effect) cannot show an MCID and are counted apart, not in either rate. "
    "Mean changes use the episodes with a follow-up measurement (n shown)."
)
SEVERITY_LABELS = {"mild": "Mild (leg pain < 4)", "moderate": "Moderate (4 to < 7)", "severe": "Severe (≥ 7)"}
BAND_MEASURES = {"pain_leg": "Leg pain", "numbness": "Numbness", "odi": "ODI"}
#: Baseline bands for the expected-recovery chart, per measure: value -> (label, low, high).
RECOVERY_BANDS: dict[str, dict[str, tuple[str, float, float]]] = {
    "pain_leg": {
        "mild": ("0 to < 4", 0, 4),
        "moderate": ("4 to < 7", 4, 7),
        "severe": ("7 to 10", 7, 10.0001),
    },
    "numbness": {
        "mild": ("0 to < 4", 0, 4),
        "moderate": ("4 to < 7", 4, 7),
        "severe": ("7 to 10", 7, 10.0001),
    },
    "odi": {"mild": ("0-20", 0, 21), "moderate": ("21-40", 21, 41), "severe": ("41-100", 41, 100.0001)},
}
CSV_BUTTONS = {
    ids.OUTCOMES_CSV_TYPES: "by-exercise-type",
    ids.OUTCOMES_CSV_DOSE: "dose-response",
    ids.OUTCOMES_CSV_ADJUSTED: "adjusted-vs-unadjusted",
    ids.OUTCOMES_CSV_THERAPISTS: "therapist-benchmarks",
    ids.OUTCOMES_CSV_CLINICS: "clinic-benchmarks",
    ids.OUTCOMES_CSV_MISSING: "missing-data",
    ids.OUTCOMES_CSV_QUALITY: "data-quality",
}
FILTER_INPUTS = (
    ids.OUTCOMES_CLINIC,
    ids.OUTCOMES_THERAPIST,
    ids.OUTCOMES_DATES,
    ids.OUTCOMES_SEVERITY,
    ids.OUTCOMES_AGE,
    ids.OUTCOMES_SEX,
    ids.OUTCOMES_SETTING,
)


# --- layout (skeleton only, no I/O) ------------------------------------------------------------------------------
def _dropdown(cid: str, placeholder: str, options: list[dict[str, str]] | None = None) -> dcc.Dropdown:
    return dcc.Dropdown(id=cid, placeholder=placeholder, options=options or [], clearable=True)


def _csv(cid: str) -> dbc.Button:
    return dbc.Button("CSV", id=cid, size="sm", color="link", className="p-0 ms-2 no-print", n_clicks=0)


def _graph(cid: str) -> dcc.Graph:
    return dcc.Graph(id=cid, config={"displaylogo": False, "responsive": True})


def filters_bar() -> dbc.Row:
    opts = lambda values: [{"label": v, "value": v} for v in values]  # noqa: E731
    return dbc.Row(
        [
            dbc.Col(_dropdown(ids.OUTCOMES_CLINIC, "All clinics"), md=2),
            dbc.Col(_dropdown(ids.OUTCOMES_THERAPIST, "All therapists"), md=2),
            dbc.Col(
                dcc.DatePickerRange(
                    id=ids.OUTCOMES_DATES,
                    display_format="D MMM YYYY",
                    first_day_of_week=1,
                    minimum_nights=0,
                    clearable=True,
                    start_date_placeholder_text="Start from",
                    end_date_placeholder_text="to",
                ),
                md=3,
                className="date-range",
            ),
            dbc.Col(
                _dropdown(
                    ids.OUTCOMES_SEVERITY,
                    "Any baseline severity",
                    [{"label": lbl, "value": v} for v, lbl in SEVERITY_LABELS.items()],
                ),
                md=2,
            ),
            dbc.Col(_dropdown(ids.OUTCOMES_AGE, "Any age", opts(q.AGE_BANDS)), md=1),
            dbc.Col(_dropdown(ids.OUTCOMES_SEX, "Any sex", opts(q.SEXES)), md=1),
            dbc.Col(_dropdown(ids.OUTCOMES_SETTING, "Home + clinic", opts(q.SETTINGS)), md=1),
        ],
        className="g-2 mb-2 no-print",
    )


def layout(**_kwargs: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Outcomes", className="h4"),
            filters_bar(),
            html.Div(id=ids.OUTCOMES_N, className="small text-muted mb-2"),
            dbc.Row(id=ids.OUTCOMES_KEY_NUMBERS, className="g-2 mb-3"),
            section(
                "By exercise type",
                html.P(TYPE_RULE, className="small text-muted"),
                _graph(ids.OUTCOMES_FOREST),
                html.Div([html.Span("Table", className="small fw-semibold"), _csv(ids.OUTCOMES_CSV_TYPES)]),
                html.Div(id=ids.OUTCOMES_TYPE_TABLE, className="table-responsive"),
                dbc.Row(
                    [
                        dbc.Col(_graph(ids.OUTCOMES_RESPONDERS), lg=6),
                        dbc.Col(_graph(ids.OUTCOMES_SCATTER), lg=6),
                    ]
                ),
                _graph(ids.OUTCOMES_TREND),
                subtitle=MISSING_NOTE,
            ),
            section(
                "Dose-response",
                dbc.Row(
                    [
                        dbc.Col(_graph(ids.OUTCOMES_DOSE), lg=5),
                        dbc.Col(
                            [
                                html.Div(
                                    [
                                        html.Span(
                                            "Leg pain change by weekly minutes of each type",
                                            className="small fw-semibold",
                                        ),
                                        _csv(ids.OUTCOMES_CSV_DOSE),
                                    ]
                                ),
                                html.Div(id=ids.OUTCOMES_DOSE_TYPE_TABLE, className="table-responsive"),
                            ],
                            lg=7,
                        ),
                    ]
                ),
            ),
            section(
                "Fair comparison: unadjusted and risk-adjusted",
                dbc.Alert(OBSERVATIONAL_NOTE, color="light", className="small"),
                _graph(ids.OUTCOMES_ADJUSTED),
                html.Div(
                    [html.Span("Table", className="small fw-semibold"), _csv(ids.OUTCOMES_CSV_ADJUSTED)]
                ),
                html.Div(id=ids.OUTCOMES_ADJUSTED_TABLE, className="table-responsive"),
            ),
            section(
                "Therapists and clinics",
                html.P(
                    f"Adjusted change: leg pain, compared with patients of similar baseline, age, symptom duration "
                    f"and adherence (observed - expected). Failure to progress: no MCID on leg pain or ODI after "
                    f"6 weeks or 8 visits. Groups with fewer than {q.MIN_BENCHMARK_N} episodes are greyed and "
                    "never ranked: their numbers move too much by chance.",
                    className="small text-muted",
                ),
                html.Div(
                    [
                        html.Span("Therapists", className="small fw-semibold"),
                        _csv(ids.OUTCOMES_CSV_THERAPISTS),
                    ]
                ),
                html.Div(id=ids.OUTCOMES_THERAPIST_TABLE, className="table-responsive"),
                html.Div(
                    [html.Span("Clinics", className="small fw-semibold"), _csv(ids.OUTCOMES_CSV_CLINICS)]
                ),
                html.Div(id=ids.OUTCOMES_CLINIC_TABLE, className="table-responsive"),
            ),
            section(
                "Missing data",
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                html.Div(
                                    [
                                        html.Span("Counts", className="small fw-semibold"),
                                        _csv(ids.OUTCOMES_CSV_MISSING),
                                    ]
                                ),
                                html.Div(id=ids.OUTCOMES_MISSING_TABLE),
                            ],
                            lg=5,
                        ),
                        dbc.Col(_graph(ids.OUTCOMES_DROPOUT), lg=7),
                    ]
                ),
            ),
            section(
                "Expected recovery",
                dbc.Row(
                    [
                        dbc.Col(
                            dcc.Dropdown(
                                id=ids.OUTCOMES_BAND_MEASURE,
                                options=[{"label": v, "value": k} for k, v in BAND_MEASURES.items()],
                                value="pain_leg",
                                clearable=False,
                            ),
                            md=3,
                        ),
                        dbc.Col(
                            dcc.Dropdown(
                                id=ids.OUTCOMES_BAND_RANGE,
                                options=[
                                    {"label": f"Baseline {v}", "value": k} for k, v in SEVERITY_LABELS.items()
                                ],
                                value="severe",
                                clearable=False,
                            ),
                            md=3,
                        ),
                    ],
                    className="g-2 mb-2",
                ),
                _graph(ids.OUTCOMES_RECOVERY),
                subtitle="Percentiles of past episodes' measurements by week since the start (clinic filter applies; "
                "the most recent 5,000 episodes in the band).",
            ),
            section(
                "Data quality",
                html.Div(
                    [
                        html.Span("ETL batches, rejects and missing values", className="small fw-semibold"),
                        _csv(ids.OUTCOMES_CSV_QUALITY),
                    ]
                ),
                html.Div(id=ids.OUTCOMES_QUALITY),
                html.Div(id=ids.OUTCOMES_QUALITY_WAREHOUSE),
            ),
            dcc.Download(id=ids.OUTCOMES_DOWNLOAD),
        ]
    )


# --- callback bodies (plain functions: tests call these) ---------------------------------------------------------
def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def filters_from_inputs(
    clinic_id=None,
    therapist_id=None,
    start=None,
    end=None,
    severity=None,
    age_band=None,
    sex=None,
    setting=None,
) -> q.OutcomeFilters:
    """The page's filter values as `OutcomeFilters`; unknown values (a crafted request) are dropped."""

    def known(value, allowed):
        return value if value in allowed else None

    return q.OutcomeFilters(
        clinic_id=clinic_id or None,
        therapist_id=therapist_id or None,
        start_from=_date(start),
        start_to=_date(end),
        severity=known(severity, q.SEVERITY_BANDS),
        age_band=known(age_band, q.AGE_BANDS),
        sex=known(sex, q.SEXES),
        setting=known(setting, q.SETTINGS),
    )


def aggregates_for(ctx: AppContext, filters: q.OutcomeFilters) -> q.OutcomeAggregates:
    """The main outputs' numbers, in the viewer's scope: summed from the outcome packs, else grouped SQL."""
    return qp.aggregates(ctx.engine, ctx.scope(), filters, ctx.flag_rules)


def view_for(ctx: AppContext, filters: q.OutcomeFilters) -> q.OutcomeView:
    """The filtered episodes' rows (model columns only), for the regressions."""
    return qp.rows(ctx.engine, ctx.scope(), filters, ctx.flag_rules, columns=q.MODEL_COLUMNS)


def _ci(mean: Any, lo: Any, hi: Any, digits: int = 1) -> str:
    if missing(mean):
        return "—"
    if missing(lo):
        return fmt_num(mean, digits)
    return f"{fmt_num(mean, digits)} ({fmt_num(lo, digits)} to {fmt_num(hi, digits)})"


def _pct_ci(p: Any, lo: Any, hi: Any) -> str:
    if missing(p):
        return "—"
    return f"{p * 100:.0f} % ({lo * 100:.0f}-{hi * 100:.0f})"


#: Rows shown in an on-page table; the CSV always has every row.
MAX_TABLE_ROWS = 100


def html_table(
    rows: list[dict[str, Any]],
    columns: list[str],
    muted: list[bool] | None = None,
    limit: int = MAX_TABLE_ROWS,
    total: int | None = None,
) -> html.Div:
    """`rows` (at most `limit`) as a small table; `total`: how many rows there are when only the first ones were
    formatted (the CSV has them all)."""
    total = len(rows) if total is None else total
    head = html.Thead(html.Tr([html.Th(c, className="small") for c in columns]))
    body = []
    for i, row in enumerate(rows[:limit]):
        cls = "text-muted table-light small-n" if muted and muted[i] else None
        body.append(html.Tr([html.Td(row.get(c, ""), className="small") for c in columns], className=cls))
    parts: list[Any] = [dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-1")]
    if total > limit:
        parts.append(
            html.Div(
                f"Showing {limit} of {total:,} rows; the CSV has all.", className="small text-muted mb-2"
            )
        )
    return html.Div(parts)


def type_table(summary: pd.DataFrame) -> html.Div:
    cols = ["Exercise type", "Episodes"] + [f"{lbl} Δ (95 % CI)" for lbl in q.MEASURES.values()]
    cols += [
        "Leg pain MCID, ITT",
        "Leg pain MCID, completers",
        "ODI MCID, ITT",
        "Median weeks to MCID",
        "Adherence",
    ]
    rows = []
    for r in summary.to_dict("records"):
        row = {"Exercise type": r["group"], "Episodes": f"{int(r['episodes'])}"}
        for m, lbl in q.MEASURES.items():
            row[f"{lbl} Δ (95 % CI)"] = (
                f"{_ci(r[f'{m}_mean'], r[f'{m}_lo'], r[f'{m}_hi'])}, n={int(r[f'{m}_n'])}"
            )
        row["Leg pain MCID, ITT"] = (
            f"{_pct_ci(r['pain_leg_itt_rate'], r['pain_leg_itt_lo'], r['pain_leg_itt_hi'])}, n={int(r['pain_leg_itt_n'])}"
        )
        row["Leg pain MCID, completers"] = (
            f"{_pct_ci(r['pain_leg_completers_rate'], r['pain_leg_completers_lo'], r['pain_leg_completers_hi'])}, "
            f"n={int(r['pain_leg_completers_n'])}"
        )
        row["ODI MCID, ITT"] = (
            f"{_pct_ci(r['odi_itt_rate'], r['odi_itt_lo'], r['odi_itt_hi'])}, n={int(r['odi_itt_n'])}"
        )
        row["Median weeks to MCID"] = (
            f"{fmt_num(r['weeks_to_mcid_median'])} (n={int(r['weeks_to_mcid_n'])})"
            if r["weeks_to_mcid_n"]
            else "—"
        )
        row["Adherence"] = "—" if missing(r["adherence_mean"]) else f"{r['adherence_mean'] * 100:.0f} %"
        rows.append(row)
    return html_table(rows, cols)


def benchmark_table(df: pd.DataFrame, noun: str) -> html.Div:
    if df.empty:
        return html.Div("No episodes match these filters.", className="small text-muted")
    cols = [
        "Rank",
        noun,
        "Episodes",
        "Adjusted leg pain Δ (95 % CI)",
        "Observed Δ",
        "MCID (ITT)",
        "Failure to progress",
    ]
    rows = []
    shown = df.head(MAX_TABLE_ROWS)  # 2,000+ therapists clinic-wide: format only what the table shows
    for r in shown.to_dict("records"):
        rows.append(
            {
                "Rank": "n < 10: not ranked"
                if r["small_n"]
                else ("—" if pd.isna(r["rank"]) else int(r["rank"])),
                noun: r["name"],
                "Episodes": int(r["n"]),
                "Adjusted leg pain Δ (95 % CI)": f"{_ci(r['adjusted'], r['adjusted_lo'], r['adjusted_hi'])}, n={int(r['n_model'])}",
                "Observed Δ": fmt_num(r["observed"]),
                "MCID (ITT)": f"{_pct_ci(r['responder_rate'], r['responder_lo'], r['responder_hi'])}, n={int(r['responder_n'])}",
                "Failure to progress": "—"
                if missing(r["ftp_rate"])
                else f"{r['ftp_rate'] * 100:.0f} % of {int(r['ftp_n'])}",
            }
        )
    return html_table(rows, cols, muted=[bool(x) for x in shown["small_n"]], total=len(df))


def adjusted_table(df: pd.DataFrame) -> html.Div:
    cols = [
        "Measure",
        "Exercise type",
        "Unadjusted Δ (95 % CI)",
        "Adjusted Δ (95 % CI)",
        "Difference vs. not receiving it",
    ]
    rows = [
        {
            "Measure": q.MEASURES.get(r["measure"], r["measure"]),
            "Exercise type": r["label"],
            "Unadjusted Δ (95 % CI)": f"{_ci(r['unadjusted'], r['unadjusted_lo'], r['unadjusted_hi'])}, n={int(r['n'])}",
            "Adjusted Δ (95 % CI)": f"{_ci(r['adjusted'], r['adjusted_lo'], r['adjusted_hi'])}, n={int(r['n_model'])}",
            "Difference vs. not receiving it": _ci(r["difference"], r["difference_lo"], r["difference_hi"]),
        }
        for r in df.to_dict("records")
    ]
    return html_table(rows, cols)


def dose_type_table(df: pd.DataFrame) -> html.Div:
    bands = [b[0] for b in q.WEEKLY_DOSE_BANDS]
    rows = []
    for label, part in df.groupby("label", sort=True):
        row = {"Exercise type": label}
        for r in part.to_dict("records"):
            row[r["band"]] = f"{_ci(r['mean'], r['lo'], r['hi'])}, n={int(r['n'])}" if r["n"] else "n=0"
        rows.append(row)
    return html_table(rows, ["Exercise type", *bands])


def key_numbers(agg: q.OutcomeAggregates) -> list[dbc.Col]:
    from dashboard.components import key_number

    leg = agg.responders(q.PRIMARY) if agg.n else None
    md = agg.missing_data().set_index("what")["episodes"]
    out = [
        key_number("Episodes (all starters)", f"{agg.n:,}"),
        key_number("Completers", f"{int(md['Completers (discharged)']):,}"),
        key_number("Dropped out", f"{int(md['Dropped out (no data 14 d, not discharged)']):,}"),
    ]
    if leg:
        out.append(
            key_number(
                "Leg pain MCID (ITT)",
                "—" if missing(leg["itt"].p) else f"{leg['itt'].p * 100:.0f} %",
                f"of {leg['itt'].n}; {leg['ceiling']} at ceiling apart",
            )
        )
    return out


def _labels(ctx: AppContext) -> dict[str, str]:
    return exercise_type_labels(ctx.engine)


def main_outputs(ctx: AppContext, filters: q.OutcomeFilters) -> dict[str, Any]:
    """Everything the filter change redraws except the regression-based parts (see `comparison_outputs`)."""
    agg = aggregates_for(ctx, filters)
    labels = _labels(ctx)
    summary = agg.type_summary(labels)
    units = {"pain_leg": "points", "numbness": "points", "odi": "points", "slr": "degrees"}
    points = agg.scatter_points()
    trend = stats.trend_line(points["adherence"], points["change"]) if len(points) else None
    dropout = agg.dropout_by_week()
    md = agg.missing_data()
    return {
        ids.OUTCOMES_N: f"n = {agg.n:,} episodes ({filters.describe()}).",
        ids.OUTCOMES_KEY_NUMBERS: key_numbers(agg),
        ids.OUTCOMES_FOREST: fig.forest(summary, q.MEASURES, units),
        ids.OUTCOMES_TYPE_TABLE: type_table(summary),
        ids.OUTCOMES_RESPONDERS: fig.responder_bars(summary),
        ids.OUTCOMES_SCATTER: fig.adherence_scatter(points, trend, agg.n_pairs),
        ids.OUTCOMES_TREND: fig.monthly(agg.monthly_trend()),
        ids.OUTCOMES_DOSE: fig.dose_response(agg.dose_response()),
        ids.OUTCOMES_DOSE_TYPE_TABLE: dose_type_table(agg.dose_by_type(labels)),
        ids.OUTCOMES_MISSING_TABLE: html_table(
            [{"": r["what"], "Episodes": f"{int(r['episodes']):,}"} for r in md.to_dict("records")],
            ["", "Episodes"],
        ),
        ids.OUTCOMES_DROPOUT: fig.dropout(dropout, agg.n),
    }


MAIN_OUTPUTS: tuple[tuple[str, str], ...] = (
    (ids.OUTCOMES_N, "children"),
    (ids.OUTCOMES_KEY_NUMBERS, "children"),
    (ids.OUTCOMES_FOREST, "figure"),
    (ids.OUTCOMES_TYPE_TABLE, "children"),
    (ids.OUTCOMES_RESPONDERS, "figure"),
    (ids.OUTCOMES_SCATTER, "figure"),
    (ids.OUTCOMES_TREND, "figure"),
    (ids.OUTCOMES_DOSE, "figure"),
    (ids.OUTCOMES_DOSE_TYPE_TABLE, "children"),
    (ids.OUTCOMES_MISSING_TABLE, "children"),
    (ids.OUTCOMES_DROPOUT, "figure"),
)


def _names(ctx: AppContext) -> tuple[dict[str, str], dict[str, str]]:
    scope = ctx.scope()
    t = cq.therapist_options(ctx.engine, scope)
    c = cq.clinic_options(ctx.engine, scope)
    return (
        {r.therapist_id: r.name or r.therapist_id for r in t.itertuples()},
        {r.clinic_id: r.name or r.clinic_id for r in c.itertuples()},
    )


def comparison_outputs(ctx: AppContext, filters: q.OutcomeFilters) -> dict[str, Any]:
    """Risk-adjusted comparison by type and the therapist / clinic benchmarks (the OLS fits: rows needed)."""
    view = view_for(ctx, filters)
    labels = _labels(ctx)
    adj = q.adjusted_comparison(view, labels)
    therapist_names, clinic_names = _names(ctx)
    model = q.benchmark_model(view) if view.n else None
    return {
        ids.OUTCOMES_ADJUSTED: fig.adjusted_forest(adj, q.PRIMARY, "Leg pain"),
        ids.OUTCOMES_ADJUSTED_TABLE: adjusted_table(adj),
        ids.OUTCOMES_THERAPIST_TABLE: benchmark_table(
            q.benchmarks(view, "therapist_id", therapist_names, model), "Therapist"
        ),
        ids.OUTCOMES_CLINIC_TABLE: benchmark_table(
            q.benchmarks(view, "clinic_id", clinic_names, model), "Clinic"
        ),
    }


COMPARISON_OUTPUTS: tuple[tuple[str, str], ...] = (
    (ids.OUTCOMES_ADJUSTED, "figure"),
    (ids.OUTCOMES_ADJUSTED_TABLE, "children"),
    (ids.OUTCOMES_THERAPIST_TABLE, "children"),
    (ids.OUTCOMES_CLINIC_TABLE, "children"),
)


def quality_frames(ctx: AppContext, filters: q.OutcomeFilters) -> dict[str, pd.DataFrame]:
    return {
        "batches": q.etl_batch_rows(ctx.engine),
        "rejects": q.reject_reasons(ctx.engine),
        "missing": qp.quality(ctx.engine, ctx.scope(), filters, ctx.flag_rules),
    }


def quality_missing(ctx: AppContext, filters: q.OutcomeFilters) -> list[Any]:
    """The part of the data-quality panel that depends on the filters (redrawn on every filter change)."""
    missing_rows = [
        {
            "Measure": r["measure"],
            "Episodes": r["episodes"],
            "Patients missing baseline": r["patients_missing_baseline"],
            "Patients missing follow-up": r["patients_missing_followup"],
        }
        for r in qp.quality(ctx.engine, ctx.scope(), filters, ctx.flag_rules).to_dict("records")
    ]
    return [
        html.H3("Patients missing baseline or follow-up (these filters)", className="h6 mt-2"),
        html_table(
            missing_rows, ["Measure", "Episodes", "Patients missing baseline", "Patients missing follow-up"]
        ),
    ]


def quality_warehouse(ctx: AppContext) -> list[Any]:
    """ETL batches and rejects: whole warehouse, the same whatever the filters, so drawn once per page visit."""
    b = q.etl_batch_rows(ctx.engine)
    rejects = q.reject_reasons(ctx.engine)
    batches = html_table(
        [
            {
                "Batch": r["batch_id"],
                "File": r["file_name"],
                "Kind": r["kind"],
                "Status": r["status"],
                "Loaded": str(r["loaded_at"])[:16],
                "Read": r["rows_read"],
                "New": r["rows_inserted"],
                "Updated": r["rows_updated"],
                "Rejected": r["rows_rejected"],
            }
            for r in b.to_dict("records")
        ],
        ["Batch", "File", "Kind", "Status", "Loaded", "Read", "New", "Updated", "Rejected"],
    )
    table = html_table(
        [
            {"File": r["file_name"], "Reason": r["reason"], "Rows": r["rows"]}
            for r in rejects.to_dict("records")
        ],
        ["File", "Reason", "Rows"],
    )
    return [
        html.H3("Rejected rows by reason and file (whole warehouse; values cut)", className="h6 mt-3"),
        table if len(rejects) else html.Div("No rejected rows.", className="small text-muted"),
        html.H3("ETL batches (latest 50)", className="h6 mt-3"),
        batches,
    ]


def quality_panel(ctx: AppContext, filters: q.OutcomeFilters) -> list[Any]:
    """The whole data-quality panel (both parts), as the page shows it."""
    return [*quality_missing(ctx, filters), *quality_warehouse(ctx)]


def recovery_figure(ctx: AppContext, measure: str | None, band: str | None, clinic_id: str | None):
    measure = measure if measure in RECOVERY_BANDS else q.PRIMARY
    band = band if band in RECOVERY_BANDS[measure] else "severe"
    label, lo, hi = RECOVERY_BANDS[measure][band]
    df = q.recovery_scores(ctx.engine, ctx.scope(), measure, (lo, hi), clinic_id or None)
    bands = q.recovery_bands(df)
    unit = "points" if measure != "odi" else "%"
    return fig.recovery(bands, BAND_MEASURES[measure], label, int(df["episode_id"].nunique()), unit)


def csv_frame(ctx: AppContext, which: str, filters: q.OutcomeFilters) -> pd.DataFrame:
    """The table behind a CSV button, unformatted (numbers as numbers)."""
    labels = _labels(ctx)
    if which == ids.OUTCOMES_CSV_TYPES:
        return aggregates_for(ctx, filters).type_summary(labels)
    if which == ids.OUTCOMES_CSV_DOSE:
        agg = aggregates_for(ctx, filters)
        return pd.concat(
            [
                agg.dose_response().assign(table="adherence band"),
                agg.dose_by_type(labels).assign(table="weekly dose by type"),
            ],
            ignore_index=True,
        )
    if which == ids.OUTCOMES_CSV_ADJUSTED:
        return q.adjusted_comparison(view_for(ctx, filters), labels)
    if which in (ids.OUTCOMES_CSV_THERAPISTS, ids.OUTCOMES_CSV_CLINICS):
        therapist_names, clinic_names = _names(ctx)
        if which == ids.OUTCOMES_CSV_THERAPISTS:
            return q.benchmarks(view_for(ctx, filters), "therapist_id", therapist_names)
        return q.benchmarks(view_for(ctx, filters), "clinic_id", clinic_names)
    if which == ids.OUTCOMES_CSV_MISSING:
        agg = aggregates_for(ctx, filters)
        return pd.concat(
            [
                agg.missing_data().assign(table="counts"),
                agg.dropout_by_week().assign(table="dropout by week"),
            ],
            ignore_index=True,
        )
    if which == ids.OUTCOMES_CSV_QUALITY:
        f = quality_frames(ctx, filters)
        return pd.concat([frame.assign(table=name) for name, frame in f.items()], ignore_index=True)
    raise ValueError(f"no CSV for {which!r}")


def download(ctx: AppContext, which: str, filters: q.OutcomeFilters) -> dict[str, Any]:
    df = csv_frame(ctx, which, filters)
    return dcc.send_data_frame(df.to_csv, f"outcomes-{CSV_BUTTONS[which]}.csv", index=False)


def filter_choices(ctx: AppContext, clinic_id: str | None):
    scope = ctx.scope()
    clinics = cq.clinic_options(ctx.engine, scope)
    therapists = cq.therapist_options(ctx.engine, scope, clinic_id)
    return (
        [{"label": r.name or r.clinic_id, "value": r.clinic_id} for r in clinics.itertuples()],
        [{"label": r.name or r.therapist_id, "value": r.therapist_id} for r in therapists.itertuples()],
    )


# --- wiring ------------------------------------------------------------------------------------------------------
def _filter_inputs(kind=Input) -> list:
    return [
        kind(ids.OUTCOMES_CLINIC, "value"),
        kind(ids.OUTCOMES_THERAPIST, "value"),
        kind(ids.OUTCOMES_DATES, "start_date"),
        kind(ids.OUTCOMES_DATES, "end_date"),
        kind(ids.OUTCOMES_SEVERITY, "value"),
        kind(ids.OUTCOMES_AGE, "value"),
        kind(ids.OUTCOMES_SEX, "value"),
        kind(ids.OUTCOMES_SETTING, "value"),
    ]


def register(app: Dash, ctx: AppContext) -> None:
    """Wire the page's callbacks (they keep nothing between calls: every number comes from SQL)."""

    @app.callback(
        Output(ids.OUTCOMES_CLINIC, "options"),
        Output(ids.OUTCOMES_THERAPIST, "options"),
        Input(ids.OUTCOMES_CLINIC, "value"),
    )
    def _choices(clinic_id):
        return filter_choices(ctx, clinic_id)

    @app.callback([Output(i, p) for i, p in MAIN_OUTPUTS], _filter_inputs())
    def _main(*values):
        out = main_outputs(ctx, filters_from_inputs(*values))
        return [out[i] for i, _ in MAIN_OUTPUTS]

    @app.callback([Output(i, p) for i, p in COMPARISON_OUTPUTS], _filter_inputs())
    def _comparison(*values):
        out = comparison_outputs(ctx, filters_from_inputs(*values))
        return [out[i] for i, _ in COMPARISON_OUTPUTS]

    @app.callback(Output(ids.OUTCOMES_QUALITY, "children"), _filter_inputs())
    def _quality(*values):
        return quality_missing(ctx, filters_from_inputs(*values))

    # batches and rejects do not depend on the filters: drawn once when the page loads (the container's own id
    # is the input), not on every filter change
    @app.callback(
        Output(ids.OUTCOMES_QUALITY_WAREHOUSE, "children"), Input(ids.OUTCOMES_QUALITY_WAREHOUSE, "id")
    )
    def _quality_warehouse(_id):
        return quality_warehouse(ctx)

    @app.callback(
        Output(ids.OUTCOMES_RECOVERY, "figure"),
        Input(ids.OUTCOMES_BAND_MEASURE, "value"),
        Input(ids.OUTCOMES_BAND_RANGE, "value"),
        Input(ids.OUTCOMES_CLINIC, "value"),
    )
    def _recovery(measure, band, clinic_id):
        return recovery_figure(ctx, measure, band, clinic_id)

    @app.callback(
        Output(ids.OUTCOMES_DOWNLOAD, "data"),
        [Input(cid, "n_clicks") for cid in CSV_BUTTONS],
        _filter_inputs(State),
        prevent_initial_call=True,
    )
    def _download(*args):
        which = dash.ctx.triggered_id
        if which not in CSV_BUTTONS:
            return no_update
        return download(ctx, which, filters_from_inputs(*args[len(CSV_BUTTONS) :]))
