"""Page layouts as component trees, and the callback bodies called as plain functions (no browser)."""

from __future__ import annotations

import dash_ag_grid as dag
import plotly.graph_objects as go
import pytest
from dash import dcc, html

from dashboard import ids
from dashboard.pages import caseload as pc
from dashboard.pages import not_found_404
from dashboard.pages import patient as pp
from dashboard.scope import Scope
from tests.dashboard.conftest import make_ctx
from tests.dashboard.factories import AS_OF, d


def _ids_in(component) -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        if getattr(node, "id", None):
            found.add(node.id)
        walk(getattr(node, "children", None))

    walk(component)
    return found


def _text(component) -> str:
    parts = []

    def walk(node):
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "to_plotly_json"):
            walk(getattr(node, "children", None))

    walk(component)
    return " ".join(parts)


# --- layouts -------------------------------------------------------------------------------------------------------
def test_caseload_layout_tree():
    tree = pc.layout()
    assert {
        ids.CASELOAD_FLAG,
        ids.CASELOAD_THERAPIST,
        ids.CASELOAD_CLINIC,
        ids.CASELOAD_SEARCH,
        ids.CASELOAD_GRID,
        ids.CASELOAD_SUMMARY,
        ids.CASELOAD_LOCATION,
    } <= _ids_in(tree)
    grids = [c for c in tree._traverse() if isinstance(c, dag.AgGrid)]
    assert len(grids) == 1 and grids[0].rowModelType == "infinite"
    col_ids = [c.get("colId") for c in grids[0].columnDefs if c.get("colId")]
    assert len(col_ids) == len(set(col_ids)), "column ids must be unique"
    assert set(pc.FILTER_COLUMNS.values()) <= set(col_ids)


def test_patient_layout_tree_without_io():
    tree = pp.layout("P%201")
    store = next(c for c in tree._traverse() if getattr(c, "id", None) == ids.PATIENT_ID)
    assert store.data == "P 1"  # path variables arrive URL-encoded
    assert {
        ids.PATIENT_HEADER,
        ids.PATIENT_DATES,
        ids.PATIENT_TRENDS,
        ids.ADHERENCE_WEEKLY,
        ids.ADHERENCE_CALENDAR,
        ids.SKIP_REASONS,
        ids.PAIN_DURING,
        ids.PROGRAMME_TIMELINE,
        ids.WEEKLY_DOSE,
        ids.SESSION_LOG,
        ids.PATIENT_NOT_FOUND,
        ids.PATIENT_PRINT,
    } <= _ids_in(tree)
    assert pp.layout().children[0].data is None  # Dash validates with no path variables
    assert isinstance(
        next(c for c in tree._traverse() if isinstance(c, dcc.DatePickerRange)), dcc.DatePickerRange
    )


def test_not_found_layout():
    assert "Page not found" in _text(not_found_404.layout())


def test_ids_are_unique():
    values = [v for k, v in vars(ids).items() if k.isupper()]
    assert len(values) == len(set(values))


# --- caseload callbacks ----------------------------------------------------------------------------------------------
def test_filter_model_round_trip():
    model = pc.filter_model("worsening", "T1", "C1", "  P1 ")
    assert pc.filters_from_model(model) == pc.q.CaseloadFilters("worsening", "T1", "C1", "P1")
    assert pc.filter_model("all", None, None, "") == {}
    assert pc.filters_from_model({"filter_flag": {"filter": "bogus"}, "other": {"filter": "x"}}).flag is None
    assert pc.filters_from_model(None) == pc.q.CaseloadFilters()


def test_grid_rows(ctx):
    resp = pc.grid_rows(ctx, {"startRow": 0, "endRow": 25, "sortModel": [], "filterModel": {}})
    assert resp["rowCount"] == 4
    first = resp["rowData"][0]
    assert set(first) >= {"row_id", "patient", "leg_pain", "flags", "adherence_14d_text", "mcid"}
    by_id = {r["patient_id"]: r for r in resp["rowData"]}
    assert by_id["P1"]["patient"] == "Berg, Ana" and by_id["P3"]["patient"] == "P3"
    assert by_id["P1"]["leg_pain"] == "7 → 3 (−4)" and by_id["P1"]["mcid"] == "Leg pain, ODI, SLR L"
    assert by_id["P2"]["flags"] == ["worsening", "low_adherence", "missing_baseline"]
    assert by_id["P3"]["leg_pain"] == "no baseline → 5" and by_id["P3"]["adherence_14d_text"] == "none due"
    assert by_id["P4"]["last_activity_text"] == "21 d ago"
    assert by_id["P1"]["week"] == 5


def test_grid_rows_filter_sort_and_page(ctx):
    flagged = pc.grid_rows(
        ctx, {"startRow": 0, "endRow": 25, "filterModel": pc.filter_model("worsening", None, None, None)}
    )
    assert [r["patient_id"] for r in flagged["rowData"]] == ["P2"] and flagged["rowCount"] == 1
    sorted_ = pc.grid_rows(
        ctx,
        {
            "startRow": 1,
            "endRow": 3,
            "sortModel": [{"colId": "patient_id", "sort": "desc"}, {"colId": "x;--"}],
        },
    )
    assert [r["patient_id"] for r in sorted_["rowData"]] == ["P3", "P2"] and sorted_["rowCount"] == 4
    past_end = pc.grid_rows(ctx, {"startRow": 25, "endRow": 50})
    assert past_end == {"rowData": [], "rowCount": 4}


def test_flag_counts_and_choices(ctx):
    options, summary = pc.flag_filter_options(ctx, None, None, None)
    assert [o["value"] for o in options] == ["all", *pc.FLAGS]
    assert "4 active patients" in summary
    assert _text(options[5]["label"]).endswith("3")  # missing baseline
    clinics, therapists = pc.filter_choices(ctx, "C1")
    assert {c["value"] for c in clinics} == {"C1", "C2"} and {t["value"] for t in therapists} == {"T1", "T2"}
    assert pc.as_of_text(ctx) == f"Summary as of {AS_OF:%d %b %Y}"


def test_patient_href():
    assert pc.patient_href({"rowId": "P1#1", "colId": "patient"}) == "/patients/P1"
    assert pc.patient_href({"rowId": "A/B#12"}) == "/patients/A%2FB"
    assert pc.patient_href(None) is None and pc.patient_href({"value": "x"}) is None


def test_therapist_sees_only_own_caseload(sqlite_warehouse):
    t1 = make_ctx(sqlite_warehouse, Scope.therapist("T1"))
    rows = pc.grid_rows(
        t1, {"startRow": 0, "endRow": 25, "filterModel": pc.filter_model(None, "T3", None, None)}
    )
    assert rows == {"rowData": [], "rowCount": 0}
    rows = pc.grid_rows(t1, {"startRow": 0, "endRow": 25})
    assert {r["patient_id"] for r in rows["rowData"]} == {"P1", "P2"}
    clinics, therapists = pc.filter_choices(t1, None)
    assert [t["value"] for t in therapists] == ["T1"] and [c["value"] for c in clinics] == ["C1"]


# --- patient callbacks -----------------------------------------------------------------------------------------------
def test_overview(ctx):
    ov = pp.overview(ctx, "P1")
    assert ov.found and ov.start == d(35) and ov.end == AS_OF
    text = _text(ov.header)
    assert "Ana Berg" in text and "week 5" in text and "Northside" in text and "No flags" in text
    assert "7 → 3" in _text(ov.key_numbers)
    assert "important change reached" in _text(ov.outcome_table)


def test_overview_flags_match_the_caseload(ctx):
    assert "Worsening" in _text(pp.overview(ctx, "P2").header)
    assert "Low adherence" in _text(pp.overview(ctx, "P2").header)
    assert "Not responding" in _text(pp.overview(ctx, "P4").header)


def test_patient_with_one_score_and_no_sessions(ctx):
    ov = pp.overview(ctx, "P3")
    assert ov.found and "no baseline recorded" in _text(ov.key_numbers)
    cards = pp.trend_cards(ctx, "P3", ov.start.isoformat(), ov.end.isoformat())
    figs = {f.layout.title.text: f for f in (go.Figure(c.children.figure) for c in cards)}
    leg = figs["Leg pain (NPRS) · no baseline"]
    assert len(leg.data) == 1 and len(leg.data[0].x) == 1
    out = pp.session_outputs(ctx, "P3", ov.start.isoformat(), ov.end.isoformat())
    assert out["log"] == [] and "No sessions" in _text(out["note"])
    assert all(
        isinstance(out[k], dict) and not out[k]["data"] for k in ("weekly", "calendar", "timeline", "dose")
    )


def test_discharged_patient_opens_without_flags(ctx):
    ov = pp.overview(ctx, "P5")
    assert ov.found and "discharged" in _text(ov.header) and "Worsening" not in _text(ov.header)


def test_trends_follow_the_date_range(ctx):
    wide = pp.trend_cards(ctx, "P1", d(40).isoformat(), AS_OF.isoformat())
    narrow = pp.trend_cards(ctx, "P1", d(14).isoformat(), AS_OF.isoformat())

    def leg(cards):
        figs = (go.Figure(c.children.figure) for c in cards)
        return next(f for f in figs if f.layout.title.text.startswith("Leg pain"))

    assert len(leg(wide).data[0].x) == 5 and len(leg(narrow).data[0].x) == 2
    assert len(leg(narrow).layout.shapes) == 2  # baseline and band stay: they belong to the episode
    assert len(wide) == len(pp.CORE_MEASURES)


def test_sessions_follow_the_date_range(ctx):
    full = pp.session_outputs(ctx, "P1", d(40).isoformat(), AS_OF.isoformat())
    week = pp.session_outputs(ctx, "P1", d(10).isoformat(), d(4).isoformat())
    assert len(week["log"]) < len(full["log"])
    assert {r["date"] for r in week["log"]} <= {d(n).isoformat() for n in range(4, 11)}
    assert full["skips"]["data"] and full["pain"]["data"] and full["note"] is None
    row = next(r for r in full["log"] if r["status"] == "completed" and r["setting"] == "home")
    assert row["dose"] == "3 × 10 of 3 × 10" and row["minutes"] == "12 of 12"


UNKNOWN_OR_HIDDEN = ["P3", "P4", "no-such-patient"]


@pytest.mark.parametrize("patient_id", UNKNOWN_OR_HIDDEN)
def test_out_of_scope_patient_is_not_found_exactly_like_an_unknown_id(sqlite_warehouse, patient_id):
    t1 = make_ctx(sqlite_warehouse, Scope.therapist("T1"))
    ov = pp.overview(t1, patient_id)
    assert ov == pp.Overview(found=False)
    assert pp.trend_cards(t1, patient_id, None, None) == []
    out = pp.session_outputs(t1, patient_id, None, None)
    assert out["log"] == [] and not any(
        out[k]["data"] for k in ("weekly", "calendar", "skips", "pain", "timeline", "dose")
    )
    unknown = pp.session_outputs(t1, "no-such-patient", None, None)
    assert {k: v for k, v in out.items() if isinstance(v, dict)} == {
        k: v for k, v in unknown.items() if isinstance(v, dict)
    }
    # the overview's store of a visible patient, replayed for this one, shows nothing either
    visible = pp.overview(make_ctx(sqlite_warehouse), "P1").store(patient_id)
    assert pp.trend_cards(t1, patient_id, None, None, visible) == []


def test_own_patient_is_found_in_therapist_scope(sqlite_warehouse):
    assert pp.overview(make_ctx(sqlite_warehouse, Scope.therapist("T1")), "P1").found
    assert not pp.overview(make_ctx(sqlite_warehouse, Scope.therapist("T1")), None).found


def test_html_children_are_serialisable(ctx):
    ov = pp.overview(ctx, "P1")
    for part in (ov.header, ov.key_numbers, ov.outcome_table):
        html.Div(part).to_plotly_json()


def _figures(cards):
    return [c.children.figure for c in cards]


def test_trends_take_the_baselines_from_the_overview_store(ctx):
    """The page hands the overview's baselines to the trends callback: same charts, no second read of the marts."""
    from sqlalchemy import event

    ov = pp.overview(ctx, "P1")
    start, end = ov.start.isoformat(), ov.end.isoformat()
    read = pp.trend_cards(ctx, "P1", start, end)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        stored = pp.trend_cards(ctx, "P1", start, end, ov.store("P1"))
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)
    assert _figures(stored) == _figures(read)
    assert len(statements) == 1 and "scores" in statements[0]  # the points; the catalog is cached
    # a store from another patient is ignored (the baselines are read instead)
    other = pp.overview(ctx, "P2").store("P2")
    assert _figures(pp.trend_cards(ctx, "P1", start, end, other)) == _figures(read)


def test_a_page_load_runs_five_queries(ctx):
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    pp.trend_cards(ctx, "P1", None, None)  # warm the catalog cache
    pp.session_outputs(ctx, "P1", None, None)
    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        ov = pp.overview(ctx, "P1")
        start, end = ov.start.isoformat(), ov.end.isoformat()
        pp.trend_cards(ctx, "P1", start, end, ov.store("P1"))
        pp.session_outputs(ctx, "P1", start, end)
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)
    assert len(statements) == 5, statements  # profile, episodes, measures; scores; sessions
