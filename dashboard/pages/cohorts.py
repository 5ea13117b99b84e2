"""Cohort builder (`/cohorts`, researchers; managers within their own clinics).

Filters make a `research.cohort.CohortDefinition`; the page shows its live count, the exclusion flow and Table 1
split by exercise type, saves the definition as versioned JSON, loads one back into the controls, and exports a
de-identified CSV bundle (`research.export.export_bundle`) as a zip. Only counts and summary statistics are shown:
no names, no patient ids, no links to patient pages.

The export runs as a background job (`research.jobs`), never inside the page request: the button's callback resolves
the definition under the viewer's scope and the signed-in user (server side), starts the job and returns; an
interval polls its progress (any gunicorn worker can answer: the state is in files), the user may cancel, and the
finished zip is sent by a separate download callback (audited once as a download). The export's audit row names the
signed-in user.

The callbacks are thin: every body is a plain function (`definition_from_inputs`, `cohort_outputs`,
`save_definition`, `load_definition`, `start_export`, `poll_export`, `cancel_export`, `download_export`) that tests
call without a browser.

Pseudonymisation key: `$OUTCOMES_EXPORT_KEY`. Without it the export is refused with a message saying how to set it,
except in `python -m dashboard --no-auth` (loopback only, one local viewer), where the public insecure demo key is
used and the bundle's manifest says so.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import section
from dashboard.context import AppContext
from dashboard.queries import cohorts as q
from research import jobs
from research.cohort import (
    AGE_BAND_NAMES,
    SEXES,
    CohortDefinition,
    CohortError,
    DateRange,
    Range,
    exclusion_flow,
    table_one,
)
from research.deid import KEY_ENV, MIN_KEY_CHARS, ExportKeyError, key_from_env

PATH = "/cohorts"
# the background export's components (ids local to this page)
EXPORT_JOB = "cohorts-export-job"
EXPORT_POLL = "cohorts-export-poll"
EXPORT_PROGRESS = "cohorts-export-progress"
EXPORT_CANCEL = "cohorts-export-cancel"
EXPORT_READY = "cohorts-export-ready"
POLL_MS = 1000
MAX_DOWNLOAD_BYTES = (
    200 * 1024 * 1024
)  # sent through the callback (base64 in JSON): bigger bundles -> the CLI
TITLE = "Cohorts"
MAX_UPLOAD_BYTES = 256 * 1024
SEX_LABELS = {"F": "Female", "M": "Male", "X": "Other", "U": "Unknown"}
POPULATION_LABELS = {"all_starters": "All starters", "completers": "Completers only"}
NO_KEY_MESSAGE = (
    f"Export needs a pseudonymisation key: set the environment variable {KEY_ENV} to a secret of at least "
    f"{MIN_KEY_CHARS} random characters before starting the dashboard, e.g. "
    f"export {KEY_ENV}=\"$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\". "
    "Keep it out of the bundle and use the same key to get the same pseudonyms again. "
    "(For synthetic demo data only, `python -m dashboard --no-auth` uses a public demo key.)"
)

#: Control id -> (property, CohortDefinition field path); the order of the callbacks' inputs.
CONTROLS: tuple[tuple[str, str], ...] = (
    (ids.COHORTS_NAME, "value"),
    (ids.COHORTS_START, "start_date"),
    (ids.COHORTS_START, "end_date"),
    (ids.COHORTS_AGE, "value"),
    (ids.COHORTS_SEX, "value"),
    (ids.COHORTS_CLINIC, "value"),
    (ids.COHORTS_PAIN_MIN, "value"),
    (ids.COHORTS_PAIN_MAX, "value"),
    (ids.COHORTS_ODI_MIN, "value"),
    (ids.COHORTS_ODI_MAX, "value"),
    (ids.COHORTS_DURATION_MIN, "value"),
    (ids.COHORTS_DURATION_MAX, "value"),
    (ids.COHORTS_TYPES, "value"),
    (ids.COHORTS_TYPES_MATCH, "value"),
    (ids.COHORTS_ADHERENCE, "value"),
    (ids.COHORTS_FOLLOWUP, "value"),
    (ids.COHORTS_POPULATION, "value"),
    (ids.COHORTS_EXTRA, "data"),
)
DEFAULT_EXTRA = {"description": "", "primary_measure": "pain_leg", "require_baseline": True}


# --- layout (skeleton only, no I/O) ------------------------------------------------------------------------------
def _number(cid: str, placeholder: str, lo: float, hi: float | None, step: float = 1) -> dbc.Input:
    kw: dict[str, Any] = {"min": lo, "step": step}
    if hi is not None:
        kw["max"] = hi
    return dbc.Input(id=cid, type="number", placeholder=placeholder, size="sm", debounce=True, **kw)


def _label(text: str) -> html.Label:
    return html.Label(text, className="form-label small fw-semibold mb-1")


def _pair(label: str, lo_id: str, hi_id: str, lo: float, hi: float | None, step: float = 1) -> dbc.Col:
    return dbc.Col(
        [
            _label(label),
            dbc.InputGroup(
                [
                    _number(lo_id, "min", lo, hi, step),
                    dbc.InputGroupText("to"),
                    _number(hi_id, "max", lo, hi, step),
                ],
                size="sm",
            ),
        ],
        md=3,
    )


def filters_panel() -> html.Div:
    opts = lambda values, labels=None: [  # noqa: E731
        {"label": (labels or {}).get(v, v), "value": v} for v in values
    ]
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        [_label("Name"), dbc.Input(id=ids.COHORTS_NAME, size="sm", debounce=True, value="")],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            _label("Episode start"),
                            dcc.DatePickerRange(
                                id=ids.COHORTS_START,
                                display_format="YYYY-MM-DD",
                                first_day_of_week=1,
                                minimum_nights=0,
                                clearable=True,
                                start_date_placeholder_text="from",
                                end_date_placeholder_text="to",
                            ),
                        ],
                        md=3,
                        className="date-range",
                    ),
                    dbc.Col(
                        [
                            _label("Age band"),
                            dcc.Dropdown(
                                id=ids.COHORTS_AGE,
                                options=opts(AGE_BAND_NAMES),
                                multi=True,
                                placeholder="Any age",
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            _label("Sex"),
                            dcc.Dropdown(
                                id=ids.COHORTS_SEX,
                                options=opts(SEXES, SEX_LABELS),
                                multi=True,
                                placeholder="Any sex",
                            ),
                        ],
                        md=3,
                    ),
                ],
                className="g-2 mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            _label("Clinics"),
                            dcc.Dropdown(
                                id=ids.COHORTS_CLINIC, options=[], multi=True, placeholder="All clinics"
                            ),
                        ],
                        md=3,
                    ),
                    _pair("Baseline leg pain (0-10)", ids.COHORTS_PAIN_MIN, ids.COHORTS_PAIN_MAX, 0, 10, 0.5),
                    _pair("Baseline ODI (0-100)", ids.COHORTS_ODI_MIN, ids.COHORTS_ODI_MAX, 0, 100),
                    _pair(
                        "Symptom duration, weeks", ids.COHORTS_DURATION_MIN, ids.COHORTS_DURATION_MAX, 0, None
                    ),
                ],
                className="g-2 mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            _label("Exercise types received"),
                            dcc.Dropdown(id=ids.COHORTS_TYPES, options=[], multi=True, placeholder="Any"),
                            dbc.RadioItems(
                                id=ids.COHORTS_TYPES_MATCH,
                                options=[
                                    {"label": "any of", "value": "any"},
                                    {"label": "all of", "value": "all"},
                                ],
                                value="any",
                                inline=True,
                                className="small",
                            ),
                        ],
                        md=4,
                    ),
                    dbc.Col(
                        [_label("Min. home adherence, %"), _number(ids.COHORTS_ADHERENCE, "none", 0, 100)],
                        md=2,
                    ),
                    dbc.Col(
                        [_label("Min. follow-up, weeks"), _number(ids.COHORTS_FOLLOWUP, "none", 0, None)],
                        md=2,
                    ),
                    dbc.Col(
                        [
                            _label("Population"),
                            dbc.RadioItems(
                                id=ids.COHORTS_POPULATION,
                                options=[{"label": v, "value": k} for k, v in POPULATION_LABELS.items()],
                                value="all_starters",
                                className="small",
                            ),
                        ],
                        md=2,
                    ),
                ],
                className="g-2 mb-2",
            ),
        ],
        className="no-print",
    )


def actions_bar() -> html.Div:
    return html.Div(
        [
            dbc.Button(
                "Save definition",
                id=ids.COHORTS_SAVE,
                size="sm",
                color="secondary",
                n_clicks=0,
                className="me-2",
            ),
            dcc.Upload(
                dbc.Button("Load definition", size="sm", color="secondary", outline=True),
                id=ids.COHORTS_UPLOAD,
                accept=".json,application/json",
                multiple=False,
                max_size=MAX_UPLOAD_BYTES,
                className="d-inline-block me-2",
            ),
            dbc.Button(
                "Export bundle (CSV, zip)", id=ids.COHORTS_EXPORT, size="sm", color="primary", n_clicks=0
            ),
            dbc.Button(
                "Cancel export",
                id=EXPORT_CANCEL,
                size="sm",
                color="danger",
                outline=True,
                n_clicks=0,
                className="ms-2",
                style={"display": "none"},
            ),
            dcc.Download(id=ids.COHORTS_SAVE_DOWNLOAD),
            dcc.Download(id=ids.COHORTS_EXPORT_DOWNLOAD),
            dcc.Store(id=EXPORT_JOB),
            dcc.Store(id=EXPORT_READY),
            dcc.Interval(id=EXPORT_POLL, interval=POLL_MS, disabled=True),
            html.Div(id=ids.COHORTS_LOAD_MESSAGE, className="mt-2"),
            dbc.Progress(
                id=EXPORT_PROGRESS, value=0, striped=True, className="mt-2", style={"display": "none"}
            ),
            html.Div(id=ids.COHORTS_EXPORT_MESSAGE, className="mt-2"),
        ],
        className="mb-3 no-print",
    )


def layout(**_kwargs: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Cohort builder", className="h4"),
            html.P(
                "Define a study cohort, check who is in it, and export a de-identified bundle. Only counts and "
                "summaries are shown here. Definition format: docs/research.md.",
                className="small text-muted",
            ),
            dcc.Store(id=ids.COHORTS_INIT, data=0),
            dcc.Store(id=ids.COHORTS_EXTRA, data=dict(DEFAULT_EXTRA)),
            filters_panel(),
            actions_bar(),
            html.Div(id=ids.COHORTS_ERROR),
            html.Div(id=ids.COHORTS_COUNT, className="h5 mb-3"),
            dbc.Row(
                [
                    dbc.Col(section("Exclusion flow", html.Div(id=ids.COHORTS_FLOW)), lg=4),
                    dbc.Col(
                        section(
                            "Table 1: baseline characteristics",
                            html.Div(id=ids.COHORTS_TABLE1),
                            subtitle="By exercise type received; an episode can receive several types, so the "
                            "type columns overlap.",
                        ),
                        lg=8,
                    ),
                ]
            ),
        ]
    )


# --- definition <-> controls -------------------------------------------------------------------------------------
def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


def _day(v: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(v)[:10]) if v else None


def definition_from_inputs(
    name,
    start,
    end,
    ages,
    sexes,
    clinic_ids,
    pain_min,
    pain_max,
    odi_min,
    odi_max,
    dur_min,
    dur_max,
    types,
    match,
    adherence_pct,
    followup,
    population,
    extra,
) -> CohortDefinition:
    """The controls' values as a definition; raises CohortError naming the field that is wrong."""
    extra = {**DEFAULT_EXTRA, **(extra or {})}
    adherence = _num(adherence_pct)
    try:
        return CohortDefinition(
            name=name or "",
            description=extra["description"] or "",
            episode_start=DateRange(_day(start), _day(end)),
            age_bands=list(ages or []),
            sexes=list(sexes or []),
            clinics=list(clinic_ids or []),
            baseline_pain_leg=Range(_num(pain_min), _num(pain_max)),
            baseline_odi=Range(_num(odi_min), _num(odi_max)),
            symptom_duration_weeks=Range(_num(dur_min), _num(dur_max)),
            exercise_types=list(types or []),
            exercise_types_match=match or "any",
            min_adherence=None if adherence is None else round(adherence / 100, 6),
            min_followup_weeks=_num(followup),
            population=population or "all_starters",
            primary_measure=extra["primary_measure"],
            require_baseline=extra["require_baseline"],
        )
    except (TypeError, ValueError) as exc:
        raise CohortError(str(exc)) from None


def inputs_from_definition(d: CohortDefinition) -> list[Any]:
    """The control values showing `d`, in CONTROLS order (the inverse of definition_from_inputs)."""
    pct = None if d.min_adherence is None else _num(round(d.min_adherence * 100, 4))
    return [
        d.name,
        d.episode_start.start.isoformat() if d.episode_start.start else None,
        d.episode_start.end.isoformat() if d.episode_start.end else None,
        list(d.age_bands),
        list(d.sexes),
        list(d.clinics),
        d.baseline_pain_leg.min,
        d.baseline_pain_leg.max,
        d.baseline_odi.min,
        d.baseline_odi.max,
        d.symptom_duration_weeks.min,
        d.symptom_duration_weeks.max,
        list(d.exercise_types),
        d.exercise_types_match,
        pct,
        d.min_followup_weeks,
        d.population,
        {
            "description": d.description,
            "primary_measure": d.primary_measure,
            "require_baseline": d.require_baseline,
        },
    ]


# --- who sees what -------------------------------------------------------------------------------------------------
def _role() -> str | None:
    from dashboard.auth.web import current_user

    try:
        user = current_user()
    except RuntimeError:  # outside a request (tests calling the bodies)
        return None
    return user.role if user else None


def viewer_scope(ctx: AppContext):
    """None for the whole warehouse (researchers: counts and de-identified exports across clinics), else the
    viewer's scope (managers: their own clinics)."""
    if _role() == "researcher":
        return None
    scope = ctx.scope()
    return None if scope.kind == "clinic_wide" else scope


def effective_definition(ctx: AppContext, d: CohortDefinition) -> CohortDefinition | None:
    """`d` restricted to the clinics the viewer may see; None when that leaves nothing."""
    scope = viewer_scope(ctx)
    if scope is None:
        return d
    if scope.kind != "clinics" or not scope.ids:
        return None
    keep = [c for c in (d.clinics or scope.ids) if c in scope.ids]
    return d.replace(clinics=tuple(keep)) if keep else None


# --- callback bodies (plain functions: tests call these) ---------------------------------------------------------
def choices(ctx: AppContext) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return q.clinic_choices(ctx.engine, viewer_scope(ctx)), q.exercise_type_choices(ctx.engine)


def _table(df: pd.DataFrame, class_name: str = "") -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(c) for c in df.columns]))
    body = html.Tbody([html.Tr([html.Td(str(v)) for v in row]) for row in df.itertuples(index=False)])
    return dbc.Table(
        [head, body],
        size="sm",
        bordered=False,
        striped=True,
        hover=True,
        responsive=True,
        className=f"small mb-0 {class_name}".strip(),
    )


def _alert(text: str, color: str = "danger") -> dbc.Alert:
    return dbc.Alert(text, color=color, className="py-2 small mb-2")


def cohort_outputs(ctx: AppContext, values: list[Any]) -> dict[str, Any]:
    """Count, exclusion flow and Table 1 for the controls' values (or an error naming the bad field)."""
    empty = {ids.COHORTS_COUNT: "", ids.COHORTS_FLOW: None, ids.COHORTS_TABLE1: None}
    try:
        d = effective_definition(ctx, definition_from_inputs(*values))
        if d is None:
            return {**empty, ids.COHORTS_COUNT: "0 episodes (no clinic you may see)", ids.COHORTS_ERROR: None}
        flow = exclusion_flow(ctx.engine, d)
        t1 = table_one(ctx.engine, d)
    except CohortError as exc:
        return {**empty, ids.COHORTS_ERROR: _alert(f"Definition not usable: {exc}")}
    last = flow.iloc[-1]
    n_ep, n_pat = int(last["episodes"]), int(last["patients"])
    count = (
        f"{n_ep:,} episode{'s' if n_ep != 1 else ''} ({n_pat:,} patient{'s' if n_pat != 1 else ''}) in cohort"
    )
    shown = flow.rename(
        columns={"step": "Step", "episodes": "Episodes", "patients": "Patients", "excluded": "Excluded"}
    )
    t1 = t1.rename(columns={"characteristic": "Characteristic", "statistic": "Statistic"})
    return {
        ids.COHORTS_COUNT: count,
        ids.COHORTS_ERROR: None,
        ids.COHORTS_FLOW: _table(shown),
        ids.COHORTS_TABLE1: _table(t1)
        if n_ep
        else html.P("No episodes in this cohort.", className="text-muted"),
    }


def _slug(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return "-".join(p for p in s.split("-") if p)[:60] or "cohort"


def save_definition(values: list[Any]) -> tuple[Any, Any]:
    """(download data, message): the canonical versioned JSON of the controls' definition."""
    try:
        d = definition_from_inputs(*values)
    except CohortError as exc:
        return no_update, _alert(f"Not saved: {exc}")
    return dict(content=d.to_json(), filename=f"{_slug(d.name)}.cohort.json", type="application/json"), None


def parse_upload(contents: str | None) -> CohortDefinition:
    """A dcc.Upload data URL holding cohort JSON -> the definition; CohortError with a readable message."""
    if not contents or "," not in contents:
        raise CohortError("the file is empty")
    header, _, payload = contents.partition(",")
    try:
        raw = base64.b64decode(payload, validate=True) if ";base64" in header else payload.encode()
        text = raw.decode("utf-8-sig")
    except (binascii.Error, UnicodeDecodeError):
        raise CohortError("the file is not UTF-8 text") from None
    return CohortDefinition.from_json(text)


def load_definition(ctx: AppContext, contents: str | None, filename: str | None) -> list[Any]:
    """The control values of the uploaded definition plus a message; on error every control is left alone."""
    try:
        d = parse_upload(contents)
        from research.cohort import check_against_catalog

        check_against_catalog(ctx.engine, d)
    except CohortError as exc:
        return [no_update] * len(CONTROLS) + [_alert(f"Could not load {filename or 'the file'}: {exc}")]
    msg = _alert(f"Loaded {filename or 'definition'}" + (f" ({d.name})" if d.name else "") + ".", "success")
    return inputs_from_definition(d) + [msg]


def _no_auth_on_loopback() -> bool:
    """True inside a request of `python -m dashboard --no-auth` addressed to a loopback host."""
    try:
        from flask import current_app, request

        from dashboard.auth.config import is_loopback

        config = current_app.config.get("OUTCOMES_AUTH")
        host = urlsplit("//" + (request.host or "")).hostname or ""
    except RuntimeError:  # outside a request
        return False
    return getattr(config, "mode", None) == "no_auth" and is_loopback(host)


def export_key(environ: dict[str, str] | None = None):
    """The export key, or raise ExportKeyError with the message the page shows."""
    try:
        return key_from_env(environ, insecure_demo_key=_no_auth_on_loopback())
    except ExportKeyError as exc:
        if "too short" in str(exc):
            raise
        raise ExportKeyError(NO_KEY_MESSAGE) from None


def current_username() -> str | None:
    """The signed-in user's name (`local` in --no-auth mode); None outside a request (tests pass one)."""
    from dashboard.auth.web import current_user

    try:
        user = current_user()
    except RuntimeError:
        return None
    return user.username if user else None


def start_export(
    ctx: AppContext,
    values: list[Any],
    user: str | None,
    environ: dict[str, str] | None = None,
    root: Path | None = None,
) -> tuple[Any, Any]:
    """(job store, message): start the de-identified CSV export of the controls' cohort as a background job.

    Everything that decides what is exported happens here, in the request: the definition is restricted to the
    viewer's clinics, the key is checked, and the job is owned by (and audited as) the signed-in user."""
    if not user:
        return None, _alert("Export needs a signed-in user.", "warning")
    try:
        d = effective_definition(ctx, definition_from_inputs(*values))
        if d is None:
            return None, _alert("Nothing to export: the cohort holds no clinic you may see.", "warning")
        key = export_key(environ)
    except (CohortError, ExportKeyError) as exc:
        return None, _alert(str(exc), "warning")
    filename = f"{_slug(d.name)}-{dt.date.today():%Y%m%d}.zip"
    try:
        job_id = jobs.start(ctx.engine, d, key=key, owner=user, filename=filename, fmt="csv", root=root)
    except jobs.JobError as exc:
        return None, _alert(f"Export not started: {exc}.", "warning")
    return {"job": job_id}, _alert("Export started: selecting the cohort ...", "info")


HIDDEN, SHOWN = {"display": "none"}, {"display": "inline-block"}


def poll_export(job: dict | None, user: str | None, root: Path | None = None) -> dict[str, Any]:
    """Progress of the viewer's job: bar, message, whether to keep polling, and the ready signal once done."""
    idle = {
        "progress": (0, "", {"display": "none"}),
        "cancel": HIDDEN,
        "poll_disabled": True,
        "message": no_update,
        "ready": no_update,
    }
    if not job or not user:
        return idle
    try:
        st = jobs.status(job.get("job"), user, root)
    except jobs.JobError as exc:
        return {**idle, "message": _alert(f"Export: {exc}.", "danger")}
    total, done = st.get("total") or 0, st.get("done") or 0
    pct = round(100 * done / total) if total else 0
    status = st["status"]
    if status in jobs.ACTIVE:
        label = f"{pct} %" if total else ""
        return {
            **idle,
            "progress": (pct if total else 100 if status == "zipping" else 5, label, {"display": "flex"}),
            "cancel": SHOWN,
            "poll_disabled": False,
            "message": _alert(f"Exporting: {st.get('message', '')}.", "info"),
        }
    if status == "done":
        rows = ", ".join(f"{k} {v:,}" for k, v in (st.get("rows") or {}).items())
        demo = " Made with the PUBLIC DEMO KEY: synthetic data only." if st.get("demo_key") else ""
        msg = _alert(
            f"Bundle exported ({st.get('seconds', 0):.1f} s): {rows}.{demo}", "warning" if demo else "success"
        )
        return {**idle, "message": msg, "ready": {"job": st["job_id"]}}
    if status == "cancelled":
        return {**idle, "message": _alert(f"Export cancelled: {st.get('message', '')}.", "secondary")}
    return {**idle, "message": _alert(f"Export failed: {st.get('message', '')}.", "danger")}


def cancel_export(job: dict | None, user: str | None, root: Path | None = None) -> Any:
    """Ask the viewer's running job to stop (it stops at the next block and keeps nothing)."""
    if not job or not user:
        return no_update
    try:
        jobs.cancel(job.get("job"), user, root)
    except jobs.JobError as exc:
        return _alert(f"Export: {exc}.", "danger")
    return _alert("Cancelling the export ...", "secondary")


def download_export(ready: dict | None, user: str | None, root: Path | None = None) -> tuple[Any, Any]:
    """(download data, message): the finished zip of the viewer's job, then the job's files are deleted."""
    if not ready or not user:
        return no_update, no_update
    try:
        path = jobs.result_path(ready.get("job"), user, root)
        state = jobs.status(ready.get("job"), user, root)
        if path.stat().st_size > MAX_DOWNLOAD_BYTES:
            return no_update, _alert(
                f"The bundle is {path.stat().st_size / 1e6:,.0f} MB, too big to send through the page: "
                "use `python -m etl export` on the server.",
                "warning",
            )
        data = dcc.send_bytes(path.read_bytes(), state["filename"])
    except (jobs.JobError, OSError) as exc:
        return no_update, _alert(f"Download failed: {exc}.", "danger")
    jobs.remove(ready.get("job"), user, root)
    return data, no_update


# --- wiring --------------------------------------------------------------------------------------------------------
def _controls(kind=Input) -> list:
    return [kind(cid, prop) for cid, prop in CONTROLS]


OUTPUTS = (ids.COHORTS_COUNT, ids.COHORTS_ERROR, ids.COHORTS_FLOW, ids.COHORTS_TABLE1)
OUTPUT_PROPS = {
    ids.COHORTS_COUNT: "children",
    ids.COHORTS_ERROR: "children",
    ids.COHORTS_FLOW: "children",
    ids.COHORTS_TABLE1: "children",
}


def register(app: Dash, ctx: AppContext) -> None:
    @app.callback(
        Output(ids.COHORTS_CLINIC, "options"),
        Output(ids.COHORTS_TYPES, "options"),
        Input(ids.COHORTS_INIT, "data"),
    )
    def _choices(_init):
        return choices(ctx)

    @app.callback([Output(i, OUTPUT_PROPS[i]) for i in OUTPUTS], _controls())
    def _cohort(*values):
        out = cohort_outputs(ctx, list(values))
        return [out.get(i) for i in OUTPUTS]

    @app.callback(
        Output(ids.COHORTS_SAVE_DOWNLOAD, "data"),
        Output(ids.COHORTS_LOAD_MESSAGE, "children", allow_duplicate=True),
        Input(ids.COHORTS_SAVE, "n_clicks"),
        _controls(State),
        prevent_initial_call=True,
    )
    def _save(_n, *values):
        return save_definition(list(values))

    @app.callback(
        [Output(cid, prop) for cid, prop in CONTROLS] + [Output(ids.COHORTS_LOAD_MESSAGE, "children")],
        Input(ids.COHORTS_UPLOAD, "contents"),
        State(ids.COHORTS_UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    def _load(contents, filename):
        return load_definition(ctx, contents, filename)

    @app.callback(
        Output(EXPORT_JOB, "data"),
        Output(ids.COHORTS_EXPORT_MESSAGE, "children", allow_duplicate=True),
        Output(EXPORT_POLL, "disabled", allow_duplicate=True),
        Input(ids.COHORTS_EXPORT, "n_clicks"),
        _controls(State),
        prevent_initial_call=True,
    )
    def _export(_n, *values):
        job, msg = start_export(ctx, list(values), current_username())
        return job, msg, job is None

    @app.callback(
        Output(EXPORT_PROGRESS, "value"),
        Output(EXPORT_PROGRESS, "label"),
        Output(EXPORT_PROGRESS, "style"),
        Output(EXPORT_CANCEL, "style"),
        Output(EXPORT_POLL, "disabled"),
        Output(ids.COHORTS_EXPORT_MESSAGE, "children"),
        Output(EXPORT_READY, "data"),
        Input(EXPORT_POLL, "n_intervals"),
        State(EXPORT_JOB, "data"),
        prevent_initial_call=True,
    )
    def _poll(_n, job):
        out = poll_export(job, current_username())
        value, label, style = out["progress"]
        return value, label, style, out["cancel"], out["poll_disabled"], out["message"], out["ready"]

    @app.callback(
        Output(ids.COHORTS_EXPORT_MESSAGE, "children", allow_duplicate=True),
        Input(EXPORT_CANCEL, "n_clicks"),
        State(EXPORT_JOB, "data"),
        prevent_initial_call=True,
    )
    def _cancel(_n, job):
        return cancel_export(job, current_username())

    @app.callback(
        Output(ids.COHORTS_EXPORT_DOWNLOAD, "data"),
        Output(ids.COHORTS_EXPORT_MESSAGE, "children", allow_duplicate=True),
        Input(EXPORT_READY, "data"),
        prevent_initial_call=True,
    )
    def _download(ready):
        return download_export(ready, current_username())
