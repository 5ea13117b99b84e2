"""The warehouse schema on both backends: migrations, catalogs, constraints, and Alembic agreeing with schema.py."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from warehouse import migrate
from warehouse.db import SQLITE_BUSY_TIMEOUT_MS, is_sqlite, make_engine
from warehouse.schema import (
    clinics,
    etl_batches,
    exercise_types,
    measures,
    metadata,
    patients,
    scores,
    therapists,
)

# code: (min, max, better, mcid_abs, mcid_pct, threshold_kind), as in warehouse/catalog/measures.toml
CORE_MEASURES = {
    "pain_leg": (0, 10, "lower", 2, 30, "published_mcid"),
    "pain_back": (0, 10, "lower", 2, 30, "published_mcid"),
    "numbness": (0, 10, "lower", 2, None, "convention"),
    "odi": (0, 100, "lower", 10, 30, "published_mcid"),
    "slr_left": (0, 90, "higher", 6, None, "detectable_change"),
    "slr_right": (0, 90, "higher", 6, None, "detectable_change"),
    "lumbar_flexion": (0, 90, "higher", 10, None, "convention"),
}
EXERCISE_TYPES = {
    "core_strengthening",
    "glute_strengthening",
    "stretching",
    "nerve_mobilization",
    "posture_training",
    "range_of_motion",
    "manual_therapy",
}
THRESHOLD_KINDS = {"published_mcid", "detectable_change", "convention"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="pg", marks=pytest.mark.postgres),
    ]
)
def empty_engine(request, tmp_path):
    """An engine on a brand-new, never migrated database."""
    if request.param == "sqlite":
        e = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
        yield e
        e.dispose()
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    e = make_engine(server.url(name))
    yield e
    e.dispose()
    server.drop_database(name)


def _schema_diffs(engine: Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)


# --- migrations ----------------------------------------------------------------------------------------------------
def test_migrations_reach_head(engine):
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_empty_database_upgrades_to_head(empty_engine):
    assert migrate.current_revision(empty_engine) is None
    assert migrate.upgrade(empty_engine) == migrate.head_revision()
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert _schema_diffs(empty_engine) == []


def test_upgrade_twice_is_harmless(engine):
    with engine.connect() as conn:
        before = {
            t: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (measures, exercise_types)
        }
    assert migrate.upgrade(engine) == migrate.head_revision()
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        after = {
            t: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (measures, exercise_types)
        }
    assert after == before
    assert _schema_diffs(engine) == []


def test_alembic_schema_matches_schema_py(engine):
    assert _schema_diffs(engine) == []


# --- catalogs ------------------------------------------------------------------------------------------------------
def test_core_measures_seeded_with_ranges_and_thresholds(engine):
    with engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(select(measures))}
    for code, (lo, hi, better, mcid_abs, mcid_pct, kind) in CORE_MEASURES.items():
        assert code in rows, code
        row = rows[code]
        assert (row.min_value, row.max_value, row.better) == (lo, hi, better), code
        assert (row.mcid_abs, row.mcid_pct, row.threshold_kind) == (mcid_abs, mcid_pct, kind), code
        assert row.threshold_source, code


def test_exercise_types_seeded(engine):
    with engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(select(exercise_types))}
    assert set(rows) == EXERCISE_TYPES
    assert [c for c, r in rows.items() if r.clinic_only] == ["manual_therapy"]


def test_every_threshold_says_what_kind_it_is(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(measures.c.code, measures.c.threshold_kind)).all()
    assert rows
    assert {code: kind for code, kind in rows if kind not in THRESHOLD_KINDS} == {}


def test_catalog_rows_added_by_a_clinic_survive_upgrade(engine):
    extra = {
        "code": "clinic_custom",
        "label": "Custom",
        "unit": "points",
        "min_value": 0.0,
        "max_value": 5.0,
        "better": "lower",
        "threshold_kind": "convention",
    }
    with engine.begin() as conn:
        conn.execute(insert(measures).values(**extra))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert (
            conn.execute(select(measures.c.label).where(measures.c.code == "clinic_custom")).scalar_one()
            == "Custom"
        )


# --- SQLite connection settings ------------------------------------------------------------------------------------
def test_sqlite_pragmas(sqlite_engine):
    assert is_sqlite(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == SQLITE_BUSY_TIMEOUT_MS


# --- constraints ---------------------------------------------------------------------------------------------------
def _seed_patient(engine: Engine) -> int:
    with engine.begin() as conn:
        batch_id = conn.execute(
            insert(etl_batches)
            .values(
                file_name="t.csv",
                sha256="0" * 64,
                kind="scores",
                loaded_at=dt.datetime(2026, 1, 1),
                status="ok",
            )
            .returning(etl_batches.c.batch_id)
        ).scalar_one()
        conn.execute(insert(clinics).values(clinic_id="C1", batch_id=batch_id))
        conn.execute(insert(therapists).values(therapist_id="T1", clinic_id="C1", batch_id=batch_id))
        conn.execute(
            insert(patients).values(
                patient_id="P1",
                clinic_id="C1",
                therapist_id="T1",
                birth_year=1970,
                sex="F",
                batch_id=batch_id,
                source_line=2,
            )
        )
    return batch_id


def _score(batch_id: int, patient_id: str = "P1") -> dict:
    return {
        "patient_id": patient_id,
        "measure": "pain_leg",
        "recorded_at": dt.datetime(2026, 1, 5, 9, 30),
        "side": "left",
        "value": 6.0,
        "batch_id": batch_id,
        "source_line": 2,
    }


def test_duplicate_score_natural_key_rejected(engine):
    batch_id = _seed_patient(engine)
    with engine.begin() as conn:
        conn.execute(insert(scores).values(**_score(batch_id)))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(scores).values(**{**_score(batch_id), "value": 5.0, "source_line": 3}))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scores)).scalar_one() == 1


def test_scores_carry_no_foreign_keys(engine):
    """Migration 0008: the loader checks patient and measure set-wise (tests/etl/test_load_rejects.py,
    tests/etl/test_properties.py); the per-row database checks were most of a PostgreSQL load's time."""
    assert inspect(engine).get_foreign_keys("scores") == []
    assert {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("sessions")} >= {"patients"}


def test_check_constraint_enforced(engine):
    batch_id = _seed_patient(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(patients).values(
                patient_id="P2",
                clinic_id="C1",
                therapist_id="T1",
                birth_year=1980,
                sex="Q",
                batch_id=batch_id,
                source_line=3,
            )
        )


def test_fresh_database_per_test(engine):
    """Nothing leaks between tests: the facts are empty at the start of each one."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM patients")).scalar_one() == 0


def test_schema_comparison_detects_drift(engine):
    """Guards the check above against passing vacuously."""
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_etl_batches_sha256"))
    diffs = _schema_diffs(engine)
    assert [d[0] for d in diffs] == ["add_index"]
