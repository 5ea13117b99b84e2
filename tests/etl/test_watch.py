"""`python -m etl watch`: loads complete files once, leaves half-written ones, survives restarts, stops on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from etl.cli import main
from etl.mapping import Mapping
from etl.watch import Watcher, candidates
from tests.etl.helpers import AS_OF, count, patients_file, rows
from warehouse.schema import etl_batches, patients, scores

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


def test_watch_once_loads_complete_files_and_skips_partial_ones(db_url, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLE / "scores.csv", inbox / "a_scores.csv")
    shutil.copy(SAMPLE / "patients.csv", inbox / "b_patients.csv")  # loaded first all the same
    (inbox / "c_sessions.csv.part").write_text("patient_id,session_date\n")  # being written
    (inbox / ".hidden.csv").write_text("x")
    (inbox / "notes.md").write_text("not data")
    args = ["watch", str(inbox), "--db", db_url, "--once", "--interval", "0.05", "--as-of", "2026-11-20"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "b_patients.csv: patients" in out and "a_scores.csv: scores" in out
    assert out.index("b_patients.csv") < out.index("a_scores.csv")
    assert "part" not in out and "hidden" not in out and "notes" not in out
    # a restart goes over the same files: nothing loads twice
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(", unchanged:") == 2
    from warehouse.db import make_engine

    engine = make_engine(db_url)
    assert count(engine, etl_batches) == 2 and count(engine, scores) == 31
    engine.dispose()


def test_a_growing_file_waits_for_a_stable_size(sqlite_engine, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lines = []
    w = Watcher(
        sqlite_engine,
        inbox,
        Mapping(),
        as_of=AS_OF,
        log=lines.append,
    )
    path = inbox / "patients.csv"
    text = patients_file(tmp_path).read_text()
    path.write_text(text[:40])  # half written
    assert w.poll() == []  # first look: not known to be stable yet
    path.write_text(text[:80])
    assert w.poll() == []  # it grew
    path.write_text(text)
    assert w.poll() == []
    done = w.poll()  # same size and mtime twice: complete
    assert [r.status for r in done] == ["loaded"] and count(sqlite_engine, patients) == 3
    assert w.poll() == []  # loaded in this state: not again
    # a corrected re-export replaces the file: loaded again
    path.write_text(text.replace("1961", "1951"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    w.poll()
    (r,) = w.poll()
    assert r.rows_updated == 1
    assert sorted(candidates(inbox)) == [path]


def test_sigterm_stops_the_watcher_cleanly(sqlite_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLE / "patients.csv", inbox / "patients.csv")
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "watch", str(inbox), "--db", sqlite_url, "--interval", "0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        from warehouse.db import make_engine

        engine = make_engine(sqlite_url)
        while time.monotonic() < deadline and not rows(engine, select(etl_batches.c.status)):
            time.sleep(0.2)
        engine.dispose()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "watching" in out and "patients.csv: patients" in out and "stopped; 1 file(s) processed" in out
