"""The command line as a person uses it: real subprocesses, exit codes, JSON and readable reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.etl.helpers import SCORES_HEADER, patients_file, write_csv
from warehouse.migrate import head_revision

ROOT = Path(__file__).resolve().parents[2]


def etl(*args: str, db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUTCOMES_DB_URL": db}
    return subprocess.run(
        [sys.executable, "-m", "etl", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_init_load_json_status_rejects(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    init = etl("init", db=db)
    assert init.returncode == 0 and f"-> {head_revision()}" in init.stdout
    assert etl("init", db=db).returncode == 0  # upgrade is idempotent
    patients = patients_file(tmp_path)
    ok = etl("load", str(patients), "--json", "--as-of", "2026-11-20", db=db)
    assert ok.returncode == 0, ok.stderr
    (batch,) = json.loads(ok.stdout)["batches"]
    assert {
        k: batch[k] for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_unchanged", "status")
    } == {
        "rows_read": 3,
        "rows_loaded": 3,
        "rows_rejected": 0,
        "rows_unchanged": 0,
        "status": "loaded",
    }
    bad = write_csv(
        tmp_path / "scores.csv",
        SCORES_HEADER,
        [["P1", "2026-09-01", "pain_leg", "7", ""], ["P1", "2026-09-02", "pain_leg", "70", ""]],
    )
    some = etl("load", str(bad), "--as-of", "2026-11-20", db=db)
    assert some.returncode == 3
    assert "1 rejected" in some.stdout and "python -m etl rejects --batch" in some.stdout
    again = etl("load", str(bad), "--json", "--as-of", "2026-11-20", db=db)
    assert json.loads(again.stdout)["batches"][0]["rows_loaded"] == 0
    rejects = etl("rejects", db=db)
    assert "scores.csv:3" in rejects.stdout and "outside 0-10" in rejects.stdout
    status = etl("status", db=db)
    assert status.returncode == 0 and "patients: 3" in status.stdout and "scores.csv" in status.stdout


def test_file_level_error_exit_2_one_line(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    res = etl("load", str(tmp_path / "x.csv"), db=db)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error: x.csv:")


def test_bad_mapping_is_a_clear_error(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    (tmp_path / "m.toml").write_text("[columns\n")
    res = etl("load", str(patients_file(tmp_path)), "--mapping", str(tmp_path / "m.toml"), db=db)
    assert res.returncode == 2 and "m.toml: not valid TOML" in res.stderr


def test_help_lists_every_command():
    res = subprocess.run([sys.executable, "-m", "etl", "--help"], cwd=ROOT, capture_output=True, text=True)
    for cmd in ("init", "generate", "load", "rejects", "status", "refresh"):
        assert cmd in res.stdout


def test_init_after_a_schema_upgrade_rebuilds_the_summaries(tmp_path):
    """Marts are derived data: after a migration (0002 added mart columns) `init` rebuilds them."""
    from datetime import date, datetime

    from alembic import command
    from sqlalchemy import select, text

    from warehouse.db import make_engine
    from warehouse.migrate import alembic_config, seed_catalogs
    from warehouse.schema import episode_summary

    db = f"sqlite:///{tmp_path}/w.sqlite"
    engine = make_engine(db)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    seed_catalogs(engine)
    with engine.begin() as conn:  # a warehouse as release 0001 left it (written with 0001's columns only)
        conn.execute(
            text(
                "INSERT INTO etl_batches (batch_id, file_name, sha256, kind, loaded_at, status)"
                " VALUES (1, 'x.csv', 'x', 'scores', :t, 'loaded')"
            ),
            {"t": datetime(2026, 11, 1)},
        )
        conn.execute(text("INSERT INTO clinics (clinic_id, batch_id) VALUES ('C1', 1)"))
        conn.execute(
            text("INSERT INTO therapists (therapist_id, clinic_id, batch_id) VALUES ('T1', 'C1', 1)")
        )
        conn.execute(
            text(
                "INSERT INTO patients (patient_id, clinic_id, therapist_id, birth_year, sex, batch_id, source_line)"
                " VALUES ('P1', 'C1', 'T1', 1970, 'F', 1, 2)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO episodes (patient_id, start_date, side, batch_id, source_line)"
                " VALUES ('P1', :d, '', 1, 2)"
            ),
            {"d": date(2026, 9, 1)},
        )
        for when, value in (("2026-09-01 00:00:00.000000", 7), ("2026-10-01 00:00:00.000000", 4)):
            conn.execute(
                text(
                    "INSERT INTO scores (patient_id, measure, recorded_at, side, value, batch_id, source_line)"
                    " VALUES ('P1', 'pain_leg', :w, '', :v, 1, 2)"
                ),
                {"w": when, "v": value},
            )
    res = etl("init", db=db)
    assert res.returncode == 0, res.stderr
    assert "schema 0001 -> " in res.stdout and "summaries rebuilt for 1 episodes" in res.stderr
    with engine.connect() as conn:
        assert conn.execute(select(episode_summary.c.pain_leg_change)).scalar_one() == -3


def test_upgrade_rebuilds_marts_as_of_their_own_date(tmp_path):
    """An upgrade reshapes derived data only: a warehouse summarised as of a past day stays as of that day (as of
    today every patient of an archive would be flagged "no data for 14 days")."""
    from datetime import date

    from alembic import command
    from sqlalchemy import func, select

    from etl.load import load_file
    from warehouse.db import make_engine
    from warehouse.migrate import alembic_config, seed_catalogs
    from warehouse.schema import episode_summary, outcome_pack

    db = f"sqlite:///{tmp_path}/w.sqlite"
    engine = make_engine(db)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    seed_catalogs(engine)
    as_of = date(2026, 11, 20)
    load_file(engine, patients_file(tmp_path), as_of=as_of)
    rows = [
        [f"P{i}", day, "pain_leg", v, ""]
        for i in range(1, 4)
        for day, v in (("2026-09-01", 7), ("2026-11-18", 3))
    ]
    load_file(engine, write_csv(tmp_path / "scores.csv", SCORES_HEADER, rows), as_of=as_of)
    # a warehouse of an older release, its marts summarised as of a past day (loaded with today's loader, which
    # writes tables the old schema lacks, then taken back to 0005)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")

    res = etl("init", db=db)
    assert res.returncode == 0, res.stderr
    assert "schema 0005 -> " in res.stdout and "summaries rebuilt for 3 episodes" in res.stderr
    with engine.connect() as conn:
        got = conn.execute(select(episode_summary.c.as_of, episode_summary.c.flag_no_recent_data)).all()
        packed = conn.execute(select(func.sum(outcome_pack.c.n_episodes))).scalar()
    assert got == [(as_of, 0)] * 3
    assert packed == 3  # the upgrade to 0007 builds the outcome packs


def test_reading_commands_on_a_missing_warehouse_create_nothing(tmp_path):
    db = f"sqlite:///{tmp_path}/nowhere.sqlite"
    for command in ("status", "rejects"):
        r = etl(command, db=db)
        assert r.returncode == 2 and "no warehouse at" in r.stderr and "etl init" in r.stderr
    assert not (tmp_path / "nowhere.sqlite").exists()


def test_rejects_of_a_failed_batch_says_why(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    etl("init", db=db)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    failed = etl("load", str(tmp_path / "x.csv"), "--json", db=db)
    batch = json.loads(failed.stdout)["batches"][0]["batch_id"]
    shown = etl("rejects", "--batch", str(batch), db=db)
    assert shown.returncode == 0 and f"batch {batch} (x.csv) failed" in shown.stdout
    assert "cannot tell the file kind" in shown.stdout
    assert etl("rejects", "--batch", "999", db=db).stdout.strip() == "no batch 999"


def test_a_decimal_comma_gets_a_hint(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    etl("init", db=db)
    etl("load", str(patients_file(tmp_path)), "--as-of", "2026-11-20", db=db)
    path = write_csv(tmp_path / "s.csv", SCORES_HEADER, [["P1", "2026-09-01", "pain_leg", "7,5", ""]])
    assert etl("load", str(path), "--as-of", "2026-11-20", db=db).returncode == 3
    shown = etl("rejects", db=db).stdout
    assert "not a number '7,5'" in shown and 'decimal = ","' in shown
