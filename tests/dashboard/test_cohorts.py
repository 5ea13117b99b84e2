"""The cohort builder's callback bodies, called as functions on the factories warehouse (no browser)."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from dash import no_update

from dashboard import ids
from dashboard.pages import cohorts as page
from dashboard.scope import Scope
from research.cohort import CohortDefinition, DateRange, Range, select_cohort
from tests.dashboard.conftest import make_ctx

KEY_ENV = {"OUTCOMES_EXPORT_KEY": "dashboard-tests-0123456789abcdef"}


def values(**changes):
    """Control values (CONTROLS order) of the empty definition with some controls changed."""
    out = page.inputs_from_definition(CohortDefinition())
    names = [f"{cid}.{prop}" for cid, prop in page.CONTROLS]
    for k, v in changes.items():
        out[names.index(k)] = v
    return out


def count(out) -> str:
    return out[ids.COHORTS_COUNT]


def test_layout_has_no_io_and_every_control():
    tree = str(page.layout())
    for cid, _ in page.CONTROLS:
        assert cid in tree


def test_count_changes_with_filters(ctx):
    everyone = page.cohort_outputs(ctx, values())
    assert everyone[ids.COHORTS_ERROR] is None
    n_all = select_cohort(ctx.engine, CohortDefinition()).shape[0]
    assert count(everyone).startswith(f"{n_all} episode")
    c2 = page.cohort_outputs(ctx, values(**{f"{ids.COHORTS_CLINIC}.value": ["C2"]}))
    n_c2 = select_cohort(ctx.engine, CohortDefinition(clinics=("C2",))).shape[0]
    assert n_c2 < n_all
    assert count(c2).startswith(f"{n_c2} episode")
    assert count(c2) != count(everyone)
    # the flow ends at the count; Table 1 is rendered
    assert "in cohort" in str(c2[ids.COHORTS_FLOW])
    assert "Characteristic" in str(everyone[ids.COHORTS_TABLE1])


def test_page_shows_no_names_or_patient_links(ctx):
    out = str(page.cohort_outputs(ctx, values()))
    for name in ("Berg", "Cole", "/patients/", "P1"):
        assert name not in out


def test_bad_range_names_the_field(ctx):
    out = page.cohort_outputs(
        ctx, values(**{f"{ids.COHORTS_PAIN_MIN}.value": 8, f"{ids.COHORTS_PAIN_MAX}.value": 2})
    )
    assert "baseline_pain_leg" in str(out[ids.COHORTS_ERROR])
    assert out[ids.COHORTS_COUNT] == ""


def test_definition_round_trip_through_save_and_load(ctx):
    d = CohortDefinition(
        name="Study 1",
        description="kept through the page",
        episode_start=DateRange(__import__("datetime").date(2023, 1, 1), None),
        age_bands=("40-49", "50-59"),
        sexes=("F",),
        clinics=("C1",),
        baseline_pain_leg=Range(4, None),
        baseline_odi=Range(None, 60),
        symptom_duration_weeks=Range(1, 52),
        exercise_types=("nerve_mobilization",),
        exercise_types_match="all",
        min_adherence=0.25,
        min_followup_weeks=2,
        population="completers",
    )
    data, msg = page.save_definition(page.inputs_from_definition(d))
    assert msg is None and data["filename"] == "study-1.cohort.json"
    assert data["content"] == d.to_json()
    upload = "data:application/json;base64," + base64.b64encode(data["content"].encode()).decode()
    loaded = page.load_definition(ctx, upload, "study-1.cohort.json")
    assert "Loaded" in str(loaded[-1])
    again = page.definition_from_inputs(*loaded[:-1])
    assert again == d
    assert again.to_json() == d.to_json()
    assert select_cohort(ctx.engine, again).equals(select_cohort(ctx.engine, d))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 99}', "schema_version"),
        ('{"schema_version": 1, "filters": {"sexes": ["Q"]}}', "filters.sexes"),
        ('{"schema_version": 1, "filters": {"exercise_types": ["yoga"]}}', "yoga"),
    ],
)
def test_invalid_upload_gives_a_clear_error_and_leaves_controls(ctx, text, expected):
    upload = "data:application/json;base64," + base64.b64encode(text.encode()).decode()
    out = page.load_definition(ctx, upload, "bad.json")
    assert all(v is no_update for v in out[:-1])
    assert "Could not load bad.json" in str(out[-1]) and expected in str(out[-1])


def test_export_without_key_explains_how_to_set_it(ctx):
    data, msg = page.export_zip(ctx, values(), environ={})
    assert data is no_update
    assert "OUTCOMES_EXPORT_KEY" in str(msg) and "secrets.token_urlsafe" in str(msg)


def test_export_sends_a_zipped_csv_bundle(ctx):
    data, msg = page.export_zip(
        ctx,
        values(**{f"{ids.COHORTS_NAME}.value": "C1 study", f"{ids.COHORTS_CLINIC}.value": ["C1"]}),
        environ=KEY_ENV,
    )
    assert "Bundle exported" in str(msg) and "DEMO" not in str(msg)
    assert data["filename"].startswith("c1-study-") and data["filename"].endswith(".zip")
    zf = zipfile.ZipFile(io.BytesIO(base64.b64decode(data["content"])))
    names = zf.namelist()
    top = names[0].split("/")[0]
    for f in ("cohort.json", "manifest.json", "data_dictionary.md", "data/patients.csv", "data/scores.csv"):
        assert f"{top}/{f}" in names, f
    assert json.loads(zf.read(f"{top}/cohort.json"))["name"] == "C1 study"
    blob = b"".join(zf.read(n) for n in names)
    for secret in (b"Berg", b"Cole", b"dashboard-tests-0123456789abcdef"):
        assert secret not in blob


def test_manager_sees_only_their_clinics(sqlite_warehouse):
    mgr = make_ctx(sqlite_warehouse, Scope.clinics(["C2"]))
    clinics, _types = page.choices(mgr)
    assert [c["value"] for c in clinics] == ["C2"]
    c2 = select_cohort(sqlite_warehouse, CohortDefinition(clinics=("C2",))).shape[0]
    assert count(page.cohort_outputs(mgr, values())).startswith(f"{c2} episode")
    other = page.cohort_outputs(mgr, values(**{f"{ids.COHORTS_CLINIC}.value": ["C1"]}))
    assert count(other).startswith("0 episodes")
    therapist = make_ctx(sqlite_warehouse, Scope.therapist("T1"))
    assert page.effective_definition(therapist, CohortDefinition()) is None
