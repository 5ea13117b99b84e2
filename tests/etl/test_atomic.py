"""One file = one transaction: a load killed midway leaves nothing; running it again completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from tests.etl.helpers import patients_file
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.schema import episode_summary, etl_batches, etl_rejects, scores

ROOT = Path(__file__).resolve().parents[2]
ROWS = 400_000


def _big_scores(path: Path) -> None:
    k = np.arange(ROWS)
    ts = np.datetime64("2026-01-01T00:00:00") + (k // 3).astype("timedelta64[m]")
    pd.DataFrame(
        {
            "patient_id": np.where(k % 3 == 0, "P1", np.where(k % 3 == 1, "P2", "P3")),
            "recorded_at": np.datetime_as_string(ts, unit="s"),
            "measure": "pain_leg",
            "value": (k % 11).astype(float),
            "side": "",
        }
    ).to_csv(path, index=False)


def _counts(engine):
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (scores, etl_batches, etl_rejects, episode_summary)
        )


def test_killed_load_leaves_nothing_and_rerun_completes(tmp_path):
    db = f"sqlite:///{tmp_path}/w.sqlite"
    engine = make_engine(db)
    upgrade(engine)
    env = {**os.environ, "OUTCOMES_DB_URL": db}
    cmd = [sys.executable, "-m", "etl", "load", "--as-of", "2026-11-20", "--quiet"]
    subprocess.run([*cmd, str(patients_file(tmp_path))], cwd=ROOT, env=env, check=True, timeout=60)
    before = _counts(engine)
    big = tmp_path / "big_scores.csv"
    _big_scores(big)

    proc = subprocess.Popen([*cmd, "--chunk-rows", "20000", str(big)], cwd=ROOT, env=env)
    wal = tmp_path / "w.sqlite-wal"
    start = wal.stat().st_size if wal.exists() else 0
    deadline = time.monotonic() + 60
    # Kill once the load has visibly written into the open transaction (the WAL grows).
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > start + 2_000_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the load finished before it could be killed: make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    engine.dispose()
    engine = make_engine(db)
    assert _counts(engine) == before  # no partial batch, no rows, no rejects

    rerun = subprocess.run([*cmd, str(big)], cwd=ROOT, env=env, timeout=300)
    assert rerun.returncode == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scores)).scalar_one() == ROWS
        statuses = conn.execute(select(etl_batches.c.status)).scalars().all()
    assert statuses.count("loaded") == 2
