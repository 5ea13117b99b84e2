"""Research exports as background jobs: the dashboard starts one, polls its progress, may cancel it, downloads it.

Why not inside the page request: a whole-warehouse export takes minutes, longer than a request should live (and
gunicorn's worker timeout). Why not Dash background callbacks: they need an extra package and run the callback in
another process without the Flask request, so the signed-in user and their scope would have to be captured anyway;
and every poll of theirs is the same callback as the start. Here the request that starts the job resolves the
definition under the viewer's scope and the user name, then a thread of that worker runs `export_bundle`.

Job state lives in files under one directory (`$OUTCOMES_EXPORT_JOBS_DIR`, default `<tmp>/sciatica-outcomes-exports`)
so that every gunicorn worker of the host sees it: a poll, a cancel or the download may reach another worker than
the one running the export. Each job has `state.json` (replaced atomically; its `updated` time is a heartbeat),
a `cancel` flag file, and when done the zipped bundle. A job whose heartbeat stops (worker restarted) is reported
as interrupted. Only the user who started a job can read, cancel or download it; ids are random and checked
against a pattern before they touch a path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from research.cohort import CohortDefinition, CohortError
from research.deid import ExportKey
from research.export import ExportError, export_bundle

log = logging.getLogger("research.jobs")

JOBS_ENV = "OUTCOMES_EXPORT_JOBS_DIR"
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ACTIVE = ("queued", "running", "zipping")
FINISHED = ("done", "failed", "cancelled", "interrupted")
STALE_SECONDS = 120  # no heartbeat for this long: the worker running the job is gone
KEEP_SECONDS = 3600  # finished jobs (and their zips) are removed after an hour
MAX_RUNNING = 1  # exports running at once in one worker process; others wait (queued)
_slots = threading.BoundedSemaphore(MAX_RUNNING)


class JobError(RuntimeError):
    """The job cannot be started or read (unknown id, someone else's job, one already running)."""


class Cancelled(Exception):
    """Raised from the export's progress hook when the user cancelled: the export removes its partial output."""


def jobs_dir() -> Path:
    root = Path(os.environ.get(JOBS_ENV) or Path(tempfile.gettempdir()) / "sciatica-outcomes-exports")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def _now() -> float:
    return time.time()


@dataclass
class Job:
    """One job's directory and state."""

    root: Path
    job_id: str

    @property
    def dir(self) -> Path:
        return self.root / self.job_id

    @property
    def zip_path(self) -> Path:
        return self.dir / "bundle.zip"

    def read(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write(self, **changes: Any) -> dict[str, Any]:
        state = {**self.read(), **changes, "updated": _now()}
        tmp = self.dir / f".state.{threading.get_ident()}.json"
        tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.dir / "state.json")
        return state

    @property
    def cancel_requested(self) -> bool:
        return (self.dir / "cancel").exists()


def _job(root: Path, job_id: Any) -> Job:
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise JobError("unknown export job")
    return Job(root, job_id)


def status(job_id: Any, owner: str, root: Path | None = None) -> dict[str, Any]:
    """The job's state for its owner; JobError for an unknown id or another user's job (the same message)."""
    job = _job(root or jobs_dir(), job_id)
    state = job.read()
    if not state or state.get("owner") != owner:
        raise JobError("unknown export job")
    if state["status"] in ACTIVE and _now() - state.get("updated", 0) > STALE_SECONDS:
        state = job.write(status="interrupted", message="the export stopped (the server was restarted?)")
    return state


def cancel(job_id: Any, owner: str, root: Path | None = None) -> dict[str, Any]:
    """Ask the job to stop; it does at the next block of patients and leaves nothing behind."""
    state = status(job_id, owner, root)
    if state["status"] in ACTIVE:
        (_job(root or jobs_dir(), job_id).dir / "cancel").touch()
    return state


def result_path(job_id: Any, owner: str, root: Path | None = None) -> Path:
    """The finished zip of the owner's job."""
    state = status(job_id, owner, root)
    job = _job(root or jobs_dir(), job_id)
    if state["status"] != "done" or not job.zip_path.exists():
        raise JobError("the export has no bundle to download")
    return job.zip_path


def remove(job_id: Any, owner: str, root: Path | None = None) -> None:
    status(job_id, owner, root)
    shutil.rmtree(_job(root or jobs_dir(), job_id).dir, ignore_errors=True)


def _sweep(root: Path) -> None:
    """Remove finished jobs older than KEEP_SECONDS, and stale ones."""
    for d in root.iterdir():
        if not (d.is_dir() and JOB_ID.match(d.name)):
            continue
        state = Job(root, d.name).read()
        age = _now() - state.get("updated", 0)
        if age > KEEP_SECONDS or (state.get("status") in ACTIVE and age > STALE_SECONDS + KEEP_SECONDS):
            shutil.rmtree(d, ignore_errors=True)


def _zip_dir(src: Path, top: str, dest: Path, beat: Callable[[], None]) -> None:
    """Zip the bundle 1 MB at a time, calling `beat` (heartbeat, cancel check) between chunks: a big table can
    take longer to compress than STALE_SECONDS."""
    tmp = dest.with_suffix(".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo.from_file(path, f"{top}/{path.relative_to(src).as_posix()}")
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as fh, zf.open(info, "w", force_zip64=info.file_size > 1 << 30) as out:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
                    beat()
    os.replace(tmp, dest)


def start(
    engine: Engine,
    definition: CohortDefinition,
    *,
    key: ExportKey,
    owner: str,
    filename: str,
    fmt: str = "csv",
    root: Path | None = None,
    export: Callable[..., Any] | None = None,
) -> str:
    """Start exporting `definition` (already restricted to what `owner` may see) in a background thread; return
    the job id at once. `owner` is the signed-in user: the audit row names them and only they can see the job.
    One active job per user."""
    root = root or jobs_dir()
    _sweep(root)
    for d in root.iterdir():
        if d.is_dir() and JOB_ID.match(d.name):
            other = Job(root, d.name).read()
            fresh = _now() - other.get("updated", 0) <= STALE_SECONDS
            if other.get("owner") == owner and other.get("status") in ACTIVE and fresh:
                raise JobError("an export of yours is still running: wait for it or cancel it")
    job = Job(root, secrets.token_urlsafe(18))
    job.dir.mkdir(mode=0o700)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    job.write(
        job_id=job.job_id,
        owner=owner,
        status="queued",
        done=0,
        total=None,
        message="waiting for another export to finish",
        created=created,
        filename=filename,
        demo_key=key.is_demo,
    )
    thread = threading.Thread(
        target=_run,
        args=(job, engine, definition, key, owner, filename, fmt, export or export_bundle),
        name=f"export-{job.job_id[:8]}",
        daemon=True,
    )
    thread.start()
    return job.job_id


def _run(job: Job, engine, definition, key, owner, filename, fmt, export) -> None:
    """The thread: wait for a slot (heartbeat meanwhile), export with progress, zip, and record the outcome."""
    while not _slots.acquire(timeout=5):
        if job.cancel_requested:
            job.write(status="cancelled", message="cancelled before it started")
            return
        job.write()
    try:
        if job.cancel_requested:
            job.write(status="cancelled", message="cancelled before it started")
            return
        job.write(status="running", message="selecting the cohort")

        def tick(done: int, total: int) -> None:
            if job.cancel_requested:
                raise Cancelled
            job.write(done=done, total=total, message=f"{done:,} of {total:,} patients written")

        work = job.dir / "work"
        try:
            summary = export(
                engine, work / "bundle", definition, key=key, fmt=fmt, on_progress=tick, user=owner
            )
            if job.cancel_requested:
                raise Cancelled
            job.write(status="zipping", message="zipping the bundle")
            last = [time.monotonic()]

            def beat() -> None:
                if job.cancel_requested:
                    raise Cancelled
                if time.monotonic() - last[0] > 5:
                    last[0] = time.monotonic()
                    job.write()

            _zip_dir(work / "bundle", filename.removesuffix(".zip"), job.zip_path, beat)
        except Cancelled:
            job.zip_path.with_suffix(".partial").unlink(missing_ok=True)
            job.write(status="cancelled", message="cancelled; nothing was kept")
            return
        except (
            CohortError,
            ExportError,
        ) as exc:  # the export's own messages name options, never patient data
            job.write(status="failed", message=str(exc)[:500])
            return
        except Exception as exc:  # database errors can quote parameters (patient ids): type only, as logs.py
            log.error("export job %s failed: %s", job.job_id[:8], type(exc).__name__)
            job.write(
                status="failed", message=f"unexpected {type(exc).__name__}; the server log has the job id"
            )
            return
        finally:
            shutil.rmtree(work, ignore_errors=True)
        job.write(
            status="done",
            message="bundle ready",
            rows=summary.row_counts,
            seconds=round(summary.seconds, 1),
        )
    finally:
        _slots.release()
