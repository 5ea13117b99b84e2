"""A refresh block whose patients have no episodes (any more) leaves none of their mart rows behind.

`_refresh_block` used to return right after clearing `episode_summary` / `episode_measure_summary` when the block had
no episodes, before `refresh_outcome_marts`: the patients' `episode_exercise_dose` and `episode_first_mcid` rows
stayed, naming episodes that no longer were theirs. Nothing in the loader deletes episodes or moves them to another
patient (it only upserts on (patient_id, start_date)), so the tests change the warehouse by hand: the episodes
deleted (with the foreign keys bypassed, as a hand repair on a copy would), or moved to another patient (what the
foreign keys allow). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from etl.load import load_file
from etl.summary import refresh_summaries
from tests.etl.helpers import AS_OF, PATIENTS_HEADER, SCORES_HEADER, SESSIONS_HEADER, rows, write_csv
from warehouse.schema import (
    episode_exercise_dose,
    episode_first_mcid,
    episode_measure_summary,
    episode_summary,
    episodes,
)

MARTS = (episode_summary, episode_measure_summary, episode_exercise_dose, episode_first_mcid)


def _load(engine: Engine, tmp_path) -> None:
    """P1 and P2, each with one episode, exercise sessions and leg pain reaching the MCID: rows in every mart."""
    write_csv(
        tmp_path / "patients.csv",
        PATIENTS_HEADER,
        [
            ["P1", "C1", "T1", 1970, "F", "2026-09-01", "", "", "left", "", ""],
            ["P2", "C1", "T1", 1980, "M", "2026-09-10", "", "", "right", "", ""],
        ],
    )
    ex = ["Bird dog", "core_strengthening"]
    score_rows, session_rows = [], []
    for pid, start, later in (("P1", "2026-09-01", "2026-10-20"), ("P2", "2026-09-10", "2026-10-25")):
        score_rows += [[pid, f"{start}T09:00", "pain_leg", 7, ""], [pid, f"{later}T09:00", "pain_leg", 3, ""]]
        session_rows += [
            [pid, "2026-09-12", "home", *ex, "completed", 3, 10, 15, "", ""],
            [pid, "2026-10-01", "clinic", *ex, "partial", 1, 10, 5, "", ""],
        ]
    load_file(engine, tmp_path / "patients.csv", as_of=AS_OF)
    load_file(engine, write_csv(tmp_path / "scores.csv", SCORES_HEADER, score_rows), as_of=AS_OF)
    load_file(engine, write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, session_rows), as_of=AS_OF)


def _mart_rows(engine: Engine, patient_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(
                select(func.count()).select_from(t).where(t.c.patient_id == patient_id)
            ).scalar_one()
            for t in MARTS
        }


def _outcome_rows(engine: Engine, patient_id: str) -> list:
    return [
        rows(engine, select(t).where(t.c.patient_id == patient_id).order_by(*t.primary_key.columns))
        for t in (episode_exercise_dose, episode_first_mcid)
    ]


def _delete_episodes(engine: Engine, patient_id: str) -> None:
    """The patient's episodes deleted while their mart rows still point at them (foreign keys bypassed)."""
    if engine.dialect.name == "sqlite":
        # autocommit at the driver (warehouse.db): the pragma takes effect outside a transaction only
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("DELETE FROM episodes WHERE patient_id = ?", (patient_id,))
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK triggers
            conn.execute(episodes.delete().where(episodes.c.patient_id == patient_id))


def _move_episodes(engine: Engine, patient_id: str, to: str) -> None:
    """The patient's episodes moved to another patient (the foreign keys allow it)."""
    with engine.begin() as conn:
        conn.execute(episodes.update().where(episodes.c.patient_id == patient_id).values(patient_id=to))


@pytest.mark.parametrize("change", ["deleted", "moved"])
def test_refresh_without_episodes_clears_outcome_marts(engine, tmp_path, change):
    _load(engine, tmp_path)
    before = _mart_rows(engine, "P1")
    assert all(before.values()), before  # every mart has rows of P1 to go stale
    others = _outcome_rows(engine, "P2")
    assert all(others)

    if change == "deleted":
        _delete_episodes(engine, "P1")
    else:
        _move_episodes(engine, "P1", to="P2")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(episodes.c.patient_id == "P1")).scalar_one() == 0
    with engine.begin() as conn:
        assert refresh_summaries(conn, ["P1"], as_of=AS_OF) == 0  # a block without episodes

    assert _mart_rows(engine, "P1") == dict.fromkeys(before, 0)
    assert _outcome_rows(engine, "P2") == others  # not refreshed: untouched
