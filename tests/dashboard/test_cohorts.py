"""The cohort builder's callback bodies, called as functions on the factories warehouse (no browser)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile

import pytest
from dash import no_update
from sqlalchemy import select

from dashboard import ids
from dashboard.pages import cohorts as page
from dashboard.scope import Scope
from research import jobs
from research.cohort import CohortDefinition, DateRange, Range, select_cohort
from tests.dashboard.conftest import make_ctx
from warehouse.schema import audit_log

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


def wait_finished(job, user, root, polls: list | None = None) -> dict:
    """Poll like the page's interval until the job leaves the active states (no timing asserted)."""
    for _ in range(2000):
        out = page.poll_export(job, user, root)
        if polls is not None:
            polls.append(out)
        if out["poll_disabled"]:
            return out
        time.sleep(0.05)
    raise AssertionError("the export job did not finish")


@pytest.fixture
def jobs_root(tmp_path):
    """The export jobs' directory (as $OUTCOMES_EXPORT_JOBS_DIR), apart from the warehouse file."""
    root = tmp_path / "jobs"
    root.mkdir()
    return root


def test_export_without_key_explains_how_to_set_it(ctx, jobs_root):
    job, msg = page.start_export(ctx, values(), "rae", environ={}, root=jobs_root)
    assert job is None
    assert "OUTCOMES_EXPORT_KEY" in str(msg) and "secrets.token_urlsafe" in str(msg)
    assert not list(jobs_root.iterdir())


def test_export_runs_as_a_background_job_with_progress_and_sends_the_zip(ctx, jobs_root):
    controls = values(**{f"{ids.COHORTS_NAME}.value": "C1 study", f"{ids.COHORTS_CLINIC}.value": ["C1"]})
    job, msg = page.start_export(ctx, controls, "rae", environ=KEY_ENV, root=jobs_root)
    assert job and "Export started" in str(msg)
    polls: list = []
    final = wait_finished(job, "rae", jobs_root, polls)
    assert "Bundle exported" in str(final["message"]) and "DEMO" not in str(final["message"])
    assert final["ready"] == job
    data, _msg = page.download_export(final["ready"], "rae", jobs_root)
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
    assert not list(jobs_root.iterdir())  # the job's files are gone once downloaded
    # the export's audit row names the signed-in user, not the OS user
    with ctx.engine.connect() as conn:
        who = conn.execute(select(audit_log.c.username).where(audit_log.c.action == "export")).scalars().all()
    assert who == ["rae"]


@pytest.fixture
def gated(monkeypatch):
    """export_bundle held at its first progress report until the test opens the gate; records its thread.
    k = 1: the factories warehouse is too small for k = 5 (every patient would be suppressed)."""
    from research import export as rx

    gate, seen = threading.Event(), {}
    real = rx.export_bundle

    def slow(engine, out, definition, **kw):
        tick = kw["on_progress"]

        def held(done, total):
            seen.setdefault("thread", threading.current_thread().name)
            seen["definition"] = definition
            tick(done, total)
            assert gate.wait(30)

        return real(engine, out, definition, **{**kw, "on_progress": held, "block_patients": 1, "k": 1})

    monkeypatch.setattr(jobs, "export_bundle", slow)
    return gate, seen


def test_export_returns_before_the_work_and_reports_progress(ctx, jobs_root, gated):
    gate, seen = gated
    job, _msg = page.start_export(ctx, values(), "rae", environ=KEY_ENV, root=jobs_root)
    # the request has returned while the export is held in another thread
    for _ in range(400):
        st = jobs.status(job["job"], "rae", jobs_root)
        if st.get("total"):
            break
        time.sleep(0.05)
    assert st["status"] == "running" and st["total"] > 1 and st["done"] == 0
    assert seen["thread"] != threading.current_thread().name
    out = page.poll_export(job, "rae", jobs_root)
    assert out["poll_disabled"] is False and out["cancel"] == page.SHOWN
    assert "Exporting" in str(out["message"]) and out["progress"][2] == {"display": "flex"}
    # someone else cannot see, cancel or download it
    assert "unknown export job" in str(page.poll_export(job, "mallory", jobs_root)["message"])
    assert "unknown export job" in str(page.cancel_export(job, "mallory", jobs_root))
    assert page.download_export(job, "mallory", jobs_root)[0] is no_update
    # a second export of the same user waits for the first
    again, msg = page.start_export(ctx, values(), "rae", environ=KEY_ENV, root=jobs_root)
    assert again is None and "still running" in str(msg)
    gate.set()
    polls: list = []
    final = wait_finished(job, "rae", jobs_root, polls)
    assert final["ready"] == job
    done = [p["progress"][0] for p in polls if not p["poll_disabled"]]
    assert done == sorted(done)  # progress only moves forward


def test_cancel_stops_the_job_and_keeps_nothing(ctx, jobs_root, gated):
    gate, _seen = gated
    job, _msg = page.start_export(ctx, values(), "rae", environ=KEY_ENV, root=jobs_root)
    assert "Cancelling" in str(page.cancel_export(job, "rae", jobs_root))
    gate.set()
    final = wait_finished(job, "rae", jobs_root)
    assert "Export cancelled" in str(final["message"]) and final["ready"] is no_update
    assert page.download_export(job, "rae", jobs_root)[0] is no_update
    job_dir = jobs_root / job["job"]
    assert sorted(p.name for p in job_dir.iterdir()) == ["cancel", "state.json"]  # no bundle, no zip
    with ctx.engine.connect() as conn:
        assert not conn.execute(select(audit_log).where(audit_log.c.action == "export")).all()


def test_failed_export_shows_a_clear_error(ctx, jobs_root, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("SELECT ... WHERE patient_id IN ('P1')")

    monkeypatch.setattr(jobs, "export_bundle", broken)
    job, _msg = page.start_export(ctx, values(), "rae", environ=KEY_ENV, root=jobs_root)
    final = wait_finished(job, "rae", jobs_root)
    assert "Export failed" in str(final["message"]) and "RuntimeError" in str(final["message"])
    assert "P1" not in str(final["message"])  # database errors can quote patient ids: type only


def test_interrupted_job_is_reported(ctx, jobs_root, gated, monkeypatch):
    gate, _seen = gated
    job, _msg = page.start_export(ctx, values(), "rae", environ=KEY_ENV, root=jobs_root)
    monkeypatch.setattr(jobs, "STALE_SECONDS", -1)  # as if the worker running it had gone
    assert "stopped" in str(page.poll_export(job, "rae", jobs_root)["message"])
    monkeypatch.setattr(jobs, "STALE_SECONDS", 120)
    gate.set()
    wait_finished(job, "rae", jobs_root)  # let the thread end before the warehouse goes


def test_manager_export_is_restricted_to_their_clinics_server_side(sqlite_warehouse, jobs_root, gated):
    gate, seen = gated
    mgr = make_ctx(sqlite_warehouse, Scope.clinics(["C2"]))
    job, _msg = page.start_export(
        mgr, values(**{f"{ids.COHORTS_CLINIC}.value": ["C1", "C2"]}), "ben", environ=KEY_ENV, root=jobs_root
    )
    gate.set()
    wait_finished(job, "ben", jobs_root)
    assert seen["definition"].clinics == ("C2",)
    none, msg = page.start_export(
        mgr, values(**{f"{ids.COHORTS_CLINIC}.value": ["C1"]}), "ben", environ=KEY_ENV, root=jobs_root
    )
    assert none is None and "no clinic you may see" in str(msg)


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
