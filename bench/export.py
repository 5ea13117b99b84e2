"""Export benchmark: `python -m bench.export [--sizes 10000,all] [--reuse] [--patients N] [--db PATH]`.

Times `research.export.export_bundle` to Parquet at two cohort sizes on the same warehouse and reports seconds and
peak RSS for each, to show whether memory grows with the cohort (it should not: the export streams by blocks of
patients). A size N selects the first clinics (by id) until they hold at least N patients, a real cohort
definition; `all` is every patient. The warehouse is `bench/.cache/export-100k.sqlite` (a read-only copy of the 100k
warehouse) or `bench/.cache/dashboard-100k.sqlite` when that exists, else a generated warehouse of `--patients`
(default 10,000) patients in `bench/.cache/export-<N>.sqlite` (rebuilt unless `--reuse`); the report says which.
Each export runs in a fresh Python process (`python -m bench.export --child ...`) that resets its peak-RSS mark
(`/proc/self/clear_refs`) after its imports and reads VmHWM at the end, so the figure is the export's high-water
mark including the interpreter and libraries already loaded ("RSS before").

The benchmark never writes to the warehouse it reads: the export's audit-log row is skipped in the child, the
bundle goes to a temp dir that is deleted afterwards, and the key is the public demo key (synthetic data only).
Results go to stdout and `bench/results/export-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
BIGS = (CACHE / "export-100k.sqlite", CACHE / "dashboard-100k.sqlite")
RESULTS = HERE / "results"
AS_OF = date(2025, 6, 1)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_warehouse(path: Path, patients: int, seed: int = 7) -> float:
    """A generated warehouse of `patients` patients at `path` (replaced); returns the seconds it took."""
    from etl.generate import generate
    from etl.load import load_files
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade

    t0 = time.perf_counter()
    path.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-gen-"))
    try:
        files = generate(tmp, patients, seed=seed, as_of=AS_OF)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        load_files(engine, list(files.values()), as_of=AS_OF)
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.perf_counter() - t0


# --- the child: one export, measured ---------------------------------------------------------------------------
def cohort_for(db: Path, size: str) -> tuple[str | None, int]:
    """(definition JSON or None for everyone, patients in it): the first clinics holding >= size patients."""
    import sqlite3

    from research.cohort import CohortDefinition

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT clinic_id, count(*) FROM patients GROUP BY clinic_id ORDER BY clinic_id"
        ).fetchall()
    finally:
        con.close()
    total = sum(n for _c, n in rows)
    if size == "all" or int(size) >= total:
        return None, total
    chosen, n = [], 0
    for clinic, k in rows:
        if n >= int(size):
            break
        chosen.append(clinic)
        n += k
    d = CohortDefinition(name=f"first {len(chosen)} clinics", require_baseline=False, clinics=tuple(chosen))
    return d.to_json(), n


def child(db: str, out: str, fmt: str, cohort: str | None, block: int | None) -> dict:
    import research.export as rx
    from bench.child import peak_mb, reset_peak, rss_mb
    from research.cohort import CohortDefinition
    from research.deid import INSECURE_DEMO_KEY, ExportKey
    from warehouse.db import make_engine

    rx.record_export = lambda *_a, **_k: None  # never write to the benchmark's warehouse
    engine = make_engine(f"sqlite:///{db}")
    definition = CohortDefinition.from_json(Path(cohort).read_text()) if cohort else None
    extra = {"block_patients": block} if block else {}
    before = rss_mb()
    reset = reset_peak()
    t0 = time.perf_counter()
    summary = rx.export_bundle(
        engine, out, definition, key=ExportKey(INSECURE_DEMO_KEY, "insecure-demo-key"), fmt=fmt, **extra
    )
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak_mb(),
        "rss_before_mb": before,
        "peak_reset": reset,
        "row_counts": summary.row_counts,
        "bundle_mb": round(size / 1e6, 1),
    }


def run_child(db: Path, fmt: str, timeout: float, cohort: str | None, block: int | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-export-out-")) / "bundle"
    args = ["--format", fmt]
    if cohort:
        (out.parent / "cohort.json").write_text(cohort)
        args += ["--cohort", str(out.parent / "cohort.json")]
    if block:
        args += ["--block", str(block)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.export", "--child", str(db), str(out), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE.parent,
        )
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"export child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.splitlines()[0])
    p.add_argument("--reuse", action="store_true", help="reuse the generated warehouse when it exists")
    p.add_argument("--patients", type=int, default=10_000, help="size of the generated fallback warehouse")
    p.add_argument("--db", default=None, help="a SQLite warehouse file to export instead")
    p.add_argument("--format", default="parquet", choices=("csv", "parquet"))
    p.add_argument("--sizes", default="10000,all", help="cohort sizes to compare: patients or 'all'")
    p.add_argument("--block", type=int, default=None, help="patients per block (default: the export's)")
    p.add_argument("--timeout", type=float, default=3 * 3600)
    p.add_argument("--child", nargs=2, metavar=("DB", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--cohort", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.format, args.cohort, args.block)))
        return 0

    build_seconds = None
    big = next((b for b in BIGS if b.exists()), None)
    if args.db:
        db, which = Path(args.db), f"given warehouse {args.db}"
    elif big is not None:
        db, which = big, f"100k-patient warehouse {big.relative_to(HERE.parent)}"
    else:
        db = CACHE / f"export-{args.patients}.sqlite"
        which = f"generated {args.patients:,}-patient warehouse {db.relative_to(HERE.parent)} (no 100k copy)"
        if not (args.reuse and db.exists()):
            CACHE.mkdir(parents=True, exist_ok=True)
            _say(f"building {which} ...")
            build_seconds = round(build_warehouse(db, args.patients), 1)
    runs = []
    for size in [x.strip() for x in args.sizes.split(",") if x.strip()]:
        cohort, n = cohort_for(db, size)
        load_before = os.getloadavg()
        _say(
            f"exporting {n:,} patients ({size}) to {args.format} from the {which} (load {load_before[0]:.2f}) ..."
        )
        result = run_child(db, args.format, args.timeout, cohort, args.block)
        runs.append(
            {
                "size": size,
                "patients_selected": n,
                **result,
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    report = {
        "benchmark": "export_bundle",
        "warehouse": which,
        "warehouse_mb": round(db.stat().st_size / 1e6),
        "format": args.format,
        "block_patients": args.block,
        "build_seconds": build_seconds,
        "runs": runs,
        "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"warehouse:  {which} ({report['warehouse_mb']:,} MB), {args.format}")
    for r in runs:
        print(f"-- {r['patients_selected']:,} patients ({r['size']}), load average {r['load_before'][0]:.2f}")
        print(f"   rows:     {', '.join(f'{k} {v:,}' for k, v in r['row_counts'].items())}")
        print(f"   seconds:  {r['seconds']}")
        print(f"   peak RSS: {r['peak_rss_mb']} MB (RSS before the export {r['rss_before_mb']} MB)")
        print(f"   bundle:   {r['bundle_mb']} MB")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"export-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _say(f"written {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
