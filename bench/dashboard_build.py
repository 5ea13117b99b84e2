"""The dashboard benchmark's warehouse: `etl.generate` + `etl.load` of N patients into one SQLite file, built once.

`bench/.cache/dashboard-100k.sqlite` (git-ignored with the rest of bench/.cache) plus a sidecar JSON with what the
build found (row counts, seconds). The build writes to a temporary name and renames it on success, so a killed
build never leaves a warehouse that `--reuse` would trust. The generated CSV files are deleted after the load.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

#: The warehouse's "today" (as bench.data.AS_OF): fixed, so that the build is a pure function of (patients, seed).
AS_OF = date(2025, 6, 1)
SEED = 7
#: The issue's size: 10,000,000 score rows at 100,000 patients.
SCORES_PER_PATIENT_TARGET = 100
FORMAT_VERSION = 1
LOAD_ORDER = ("patients", "sessions", "scores", "visits")
COUNTED = ("patients", "episodes", "scores", "sessions", "episode_summary", "episode_measure_summary")

Say = Callable[[str], None]


def stem(n_patients: int) -> str:
    return f"dashboard-{n_patients // 1000}k" if n_patients % 1000 == 0 else f"dashboard-{n_patients}"


def paths(cache_dir: Path, n_patients: int) -> tuple[Path, Path]:
    """(warehouse file, sidecar JSON)."""
    s = stem(n_patients)
    return cache_dir / f"{s}.sqlite", cache_dir / f"{s}.json"


def url(db: Path) -> str:
    return f"sqlite:///{db}"


def read_meta(cache_dir: Path, n_patients: int) -> dict[str, Any] | None:
    db, meta = paths(cache_dir, n_patients)
    if not (db.is_file() and meta.is_file()):
        return None
    info = json.loads(meta.read_text())
    if info.get("format_version") != FORMAT_VERSION or info.get("patients_requested") != n_patients:
        return None
    return info


def counts(engine) -> dict[str, int]:
    from warehouse.schema import metadata

    with engine.connect() as conn:
        return {
            t: int(conn.execute(select(func.count()).select_from(metadata.tables[t])).scalar_one())
            for t in COUNTED
        }


def build(cache_dir: Path, n_patients: int, say: Say, *, seed: int = SEED) -> dict[str, Any]:
    """Generate and load the warehouse; return the sidecar's content. Replaces an existing warehouse."""
    from etl.generate import generate
    from etl.load import load_file
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade

    db, meta = paths(cache_dir, n_patients)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(db.name + ".building")
    csv_dir = cache_dir / f"{stem(n_patients)}-csv"
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    last = [0.0]

    def progress(msg: str) -> None:  # the loader reports often: one line every 15 s at most
        now = time.perf_counter()
        if now - last[0] >= 15:
            last[0] = now
            say(f"build {now - t0:6.0f} s | {msg.strip()}")

    say(f"build: generating {n_patients:,} patients (seed {seed}, as of {AS_OF}) into {csv_dir}")
    files = generate(csv_dir, n_patients, seed=seed, as_of=AS_OF, progress=progress)
    gen_seconds = time.perf_counter() - t0
    say(f"build: generated in {gen_seconds:.0f} s: " + ", ".join(f"{k} {_mb(p)}" for k, p in files.items()))

    engine = make_engine(url(tmp))
    upgrade(engine)
    loads = []
    for kind in LOAD_ORDER:
        t1 = time.perf_counter()
        say(f"build: loading {files[kind].name}")
        r = load_file(engine, files[kind], as_of=AS_OF, progress=progress)
        if r.status == "failed":
            raise RuntimeError(f"load of {files[kind].name} failed: {r.message}")
        loads.append(
            {
                "file": files[kind].name,
                "status": r.status,
                "rows_read": r.rows_read,
                "rows_inserted": r.rows_inserted,
                "rows_rejected": r.rows_rejected,
                "seconds": round(time.perf_counter() - t1, 1),
            }
        )
        say(
            f"build: {files[kind].name}: {r.rows_inserted:,} rows in, {r.rows_rejected:,} rejected, "
            f"{time.perf_counter() - t1:.0f} s"
        )
    raw = engine.raw_connection()  # autocommit at the driver: no BEGIN around ANALYZE and the checkpoint
    try:
        cur = raw.cursor()
        cur.execute("ANALYZE")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cur.close()
    finally:
        raw.close()
    found = counts(engine)
    engine.dispose()
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    tmp.replace(db)
    Path(f"{tmp}-wal").unlink(missing_ok=True)
    Path(f"{tmp}-shm").unlink(missing_ok=True)
    shutil.rmtree(csv_dir, ignore_errors=True)
    info = {
        "format_version": FORMAT_VERSION,
        "patients_requested": n_patients,
        "seed": seed,
        "as_of": AS_OF.isoformat(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "generate_seconds": round(gen_seconds, 1),
        "build_seconds": round(time.perf_counter() - t0, 1),
        "loads": loads,
        "counts": found,
        "file_mb": round(db.stat().st_size / 1e6),
    }
    meta.write_text(json.dumps(info, indent=2) + "\n")
    say(f"build: done in {info['build_seconds']:.0f} s, {info['file_mb']:,} MB: {_counts_text(found)}")
    return info


def upgrade_schema(db_url: str, say: Say, as_of: date | None = None) -> dict[str, Any]:
    """Migrate a reused warehouse to the code's head (as `etl init` does: the marts are rebuilt after an upgrade).

    The marts are rebuilt as of the warehouse's own date (`as_of`, from the sidecar), not today: the generated data
    ends there, and a later date would flag every patient "no data" and empty the 14-day adherence.
    """
    from etl.summary import refresh_all
    from warehouse.db import make_engine
    from warehouse.migrate import current_revision, upgrade

    engine = make_engine(db_url)
    try:
        before = current_revision(engine)
        after = upgrade(engine)
        if before != after:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                n = refresh_all(conn, as_of=as_of)
            say(
                f"schema upgraded {before} -> {after}: summaries rebuilt for {n:,} episodes in "
                f"{time.perf_counter() - t0:.0f} s"
            )
    finally:
        engine.dispose()
    return {"before": before, "revision": after}


def check_size(info: dict[str, Any], say: Say) -> dict[str, Any]:
    """Does the warehouse have the issue's size (>= ~100 score rows per patient)? Reported, never silently off."""
    n = info["counts"]["patients"]
    got = info["counts"]["scores"]
    want = SCORES_PER_PATIENT_TARGET * n
    ok = got >= 0.95 * want
    say(
        f"size: {n:,} patients, {got:,} score rows ({got / max(n, 1):.0f} per patient; issue: {want:,})"
        + ("" if ok else " -- BELOW the issue's size")
    )
    return {"patients": n, "scores": got, "scores_target": want, "ok": ok}


def _mb(p: Path) -> str:
    return f"{p.stat().st_size / 1e6:,.0f} MB"


def _counts_text(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in c.items())
