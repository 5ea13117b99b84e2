"""`python -m etl export` as a user runs it, and the notebooks executed as scripts on small bundles."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from research.cohort import CohortDefinition, Range
from research.deid import KEY_ENV
from research.export import export_bundle
from tests.research.conftest import TEST_KEY
from warehouse.db import make_engine
from warehouse.schema import audit_log

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("exercise_type_comparison", "dose_response")


def run(*args: str, env_key: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if env_key:
        env[KEY_ENV] = env_key
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_export_with_a_cohort_file(shared_url: str, tmp_path: Path):
    cohort = tmp_path / "cohort.json"
    cohort.write_text(CohortDefinition(name="cli", baseline_pain_leg=Range(2, None)).to_json())
    out = tmp_path / "bundle"
    r = run("-m", "etl", "export", "--db", shared_url, "--cohort", str(cohort), "--out", str(out),
            "--format", "parquet", "--k", "3", "--json", env_key="cli-test-key-0123456789")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["k"] == 3 and summary["format"] == "parquet" and summary["cohort"]["name"] == "cli"
    # the audit row names the OS user, marked as a command-line export
    assert summary["user"] == f"cli:{getpass.getuser()}"
    engine = make_engine(shared_url)
    try:
        with engine.connect() as conn:
            who = (
                conn.execute(
                    select(audit_log.c.username).where(
                        audit_log.c.action == "export", audit_log.c.target == str(out)
                    )
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert who == [f"cli:{getpass.getuser()}"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["deidentification"]["key_source"] == "env"
    assert manifest["tables"]["episodes"]["rows"] == summary["row_counts"]["episodes"] > 0
    assert "cli-test-key-0123456789" not in "".join(
        p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()
    )


def test_cli_export_refuses_without_a_key(shared_url: str, tmp_path: Path):
    r = run("-m", "etl", "export", "--db", shared_url, "--out", str(tmp_path / "b"))
    assert r.returncode == 2
    assert KEY_ENV in r.stderr and "--insecure-demo-key" in r.stderr
    assert not (tmp_path / "b").exists()


def test_cli_rejects_an_invalid_cohort(shared_url: str, tmp_path: Path):
    cohort = tmp_path / "bad.json"
    cohort.write_text('{"schema_version": 1, "filters": {"sexes": ["female"]}}')
    r = run("-m", "etl", "export", "--db", shared_url, "--cohort", str(cohort), "--out", str(tmp_path / "b"),
            "--insecure-demo-key")  # fmt: skip
    assert r.returncode == 2 and "filters.sexes[0]" in r.stderr


def test_cli_demo_key_is_flagged(shared_url: str, tmp_path: Path):
    r = run("-m", "etl", "export", "--db", shared_url, "--out", str(tmp_path / "b"), "--insecure-demo-key")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stdout and "demo key" in r.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["deidentification"]["key_source"] == "insecure-demo-key"


@pytest.fixture(scope="module")
def parquet_bundle(shared: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "pq"
    export_bundle(shared, out, CohortDefinition(min_followup_weeks=0), key=TEST_KEY, fmt="parquet")
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebooks_run_on_a_csv_bundle(notebook: str, bundle: Path):
    r = run(f"notebooks/{notebook}.py", str(bundle))
    assert r.returncode == 0, r.stderr
    assert "pain_leg" in r.stdout and ("responder_rate" in r.stdout)


def test_notebooks_run_on_a_parquet_bundle_with_another_measure(parquet_bundle: Path):
    r = run("notebooks/exercise_type_comparison.py", str(parquet_bundle), "odi")
    assert r.returncode == 0, r.stderr
    assert "nerve_mobilization" in r.stdout and "odi:" in r.stdout
    r = run("notebooks/dose_response.py", str(parquet_bundle), "odi")
    assert r.returncode == 0, r.stderr
    assert "adherent (>=80%)" in r.stdout and "points per 10 percentage points" in r.stdout
