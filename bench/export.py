"""Export benchmark: `python -m bench.export [--reuse] [--patients N] [--db PATH]`.

Times `research.export.export_bundle` of every patient to Parquet and reports seconds and peak RSS. It runs on
`bench/.cache/dashboard-100k.sqlite` (built by `python -m bench.dashboard`) when that exists, else on a generated
warehouse of `--patients` (default 10,000) patients in `bench/.cache/export-<N>.sqlite` (rebuilt unless `--reuse`);
the report says which. The export runs in a fresh Python process (`python -m bench.export --child ...`) that resets
its peak-RSS mark (`/proc/self/clear_refs`) after its imports and reads VmHWM at the end, so the figure is the
export's high-water mark including the interpreter and libraries already loaded ("RSS before").

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
BIG = CACHE / "dashboard-100k.sqlite"
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
def child(db: str, out: str, fmt: str) -> dict:
    import research.export as rx
    from bench.child import peak_mb, reset_peak, rss_mb
    from research.deid import INSECURE_DEMO_KEY, ExportKey
    from warehouse.db import make_engine

    rx.record_export = lambda *_a, **_k: None  # never write to the benchmark's warehouse
    engine = make_engine(f"sqlite:///{db}")
    before = rss_mb()
    reset = reset_peak()
    t0 = time.perf_counter()
    summary = rx.export_bundle(
        engine, out, None, key=ExportKey(INSECURE_DEMO_KEY, "insecure-demo-key"), fmt=fmt
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


def run_child(db: Path, fmt: str, timeout: float) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-export-out-")) / "bundle"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.export", "--child", str(db), str(out), "--format", fmt],
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
    p.add_argument("--timeout", type=float, default=3 * 3600)
    p.add_argument("--child", nargs=2, metavar=("DB", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.format)))
        return 0

    build_seconds = None
    if args.db:
        db, which = Path(args.db), f"given warehouse {args.db}"
    elif BIG.exists():
        db, which = BIG, f"100k-patient warehouse {BIG.relative_to(HERE.parent)}"
    else:
        db = CACHE / f"export-{args.patients}.sqlite"
        which = f"generated {args.patients:,}-patient warehouse {db.relative_to(HERE.parent)} (no {BIG.name})"
        if not (args.reuse and db.exists()):
            CACHE.mkdir(parents=True, exist_ok=True)
            _say(f"building {which} ...")
            build_seconds = round(build_warehouse(db, args.patients), 1)
    load_before = os.getloadavg()
    _say(f"exporting every patient to {args.format} from the {which} (load average {load_before[0]:.2f}) ...")
    result = run_child(db, args.format, args.timeout)
    report = {
        "benchmark": "export_bundle",
        "warehouse": which,
        "warehouse_mb": round(db.stat().st_size / 1e6),
        "format": args.format,
        "build_seconds": build_seconds,
        **result,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"warehouse:  {which} ({report['warehouse_mb']:,} MB)")
    print(f"rows:       {', '.join(f'{k} {v:,}' for k, v in result['row_counts'].items())}")
    print(f"seconds:    {result['seconds']}")
    print(f"peak RSS:   {result['peak_rss_mb']} MB (RSS before the export {result['rss_before_mb']} MB)")
    print(f"bundle:     {result['bundle_mb']} MB {args.format}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"export-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _say(f"written {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
