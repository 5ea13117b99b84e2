"""Export jobs across worker processes: the state is in files, so another process (another gunicorn worker) can
read a job's progress and cancel it; ids that are not job ids never reach a path."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from research import jobs
from research.export import export_bundle
from tests.research.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


def other_worker(root: Path, *calls: str) -> list[dict]:
    """Run jobs.<call>(job_id, owner, root) in a separate Python process, as another worker would."""
    code = (
        "import json, sys; from pathlib import Path; from research import jobs\n"
        "root = Path(sys.argv[1]); out = []\n"
        "for call in sys.argv[2:]:\n"
        "    name, job, owner = call.split(':')\n"
        "    try: out.append(getattr(jobs, name)(job, owner, root))\n"
        "    except jobs.JobError as e: out.append({'error': str(e)})\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(root), *calls], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_another_process_sees_progress_and_cancels(shared: Engine, tmp_path: Path):
    gate = threading.Event()

    def held(engine, out, definition, **kw):
        tick = kw["on_progress"]

        def slow(done, total):
            tick(done, total)
            gate.wait(30)

        return export_bundle(engine, out, definition, **{**kw, "on_progress": slow, "block_patients": 5})

    job = jobs.start(shared, None, key=TEST_KEY, owner="rae", filename="x.zip", root=tmp_path, export=held)
    for _ in range(400):
        if jobs.status(job, "rae", tmp_path).get("total"):
            break
        time.sleep(0.05)
    seen, denied, cancel = other_worker(
        tmp_path, f"status:{job}:rae", f"status:{job}:ben", f"cancel:{job}:rae"
    )
    assert seen["status"] == "running" and seen["total"] > 5 and seen["owner"] == "rae"
    assert denied == {"error": "unknown export job"}
    assert cancel["status"] == "running"
    gate.set()
    for _ in range(400):
        st = jobs.status(job, "rae", tmp_path)
        if st["status"] not in jobs.ACTIVE:
            break
        time.sleep(0.05)
    assert st["status"] == "cancelled"
    assert not (tmp_path / job / "work").exists() and not (tmp_path / job / "bundle.zip").exists()


@pytest.mark.parametrize("bad", ["../etc", "", None, 7, "a/b" * 10, "..", "x" * 200])
def test_bad_job_ids_are_refused_before_touching_a_path(tmp_path: Path, bad):
    with pytest.raises(jobs.JobError, match="unknown export job"):
        jobs.status(bad, "rae", tmp_path)
