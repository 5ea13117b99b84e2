"""`python -m bench`: load benchmarks, each case in a fresh subprocess; a table on stdout, JSON in bench/results/."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import data, pg, report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = 1_000_000
LARGE_ROWS = 10_000_000
CASE_GROUPS = {
    "load": {"ours", "naive", "floor", "pg"},
    "ours": {"ours"},
    "naive": {"naive"},
    "floor": {"floor"},
    "pg": {"pg"},
}


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load benchmarks: our validated loader against the naive pandas baseline and the raw floor.",
    )
    ap.add_argument("--large", action="store_true", help=f"also run {LARGE_ROWS:,} rows")
    ap.add_argument(
        "--rows", type=int, nargs="+", metavar="N", help=f"sizes in score rows (default {DEFAULT_ROWS:,})"
    )
    ap.add_argument(
        "--only",
        default="load",
        help="comma-separated case groups: load (all, default), ours, naive, floor, pg",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache", help="generated input files")
    ap.add_argument("--tmp-dir", type=Path, default=None, help="where the throwaway warehouses go")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-rows", type=int, default=None, help="chunk size for load_file (its default)")
    ap.add_argument(
        "--skip-naive-large",
        action="store_true",
        help=f"skip the naive case at >= {LARGE_ROWS:,} rows (~12 GB)",
    )
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    ap.add_argument(
        "--pg-max-rows", type=int, default=DEFAULT_ROWS, help="run PostgreSQL cases at sizes up to this"
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per case before it is killed")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every case N times, interleaved, and report each case's median run (a noisy machine)",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat: at least 1")
    groups: set[str] = set()
    for g in args.only.split(","):
        g = g.strip()
        if g not in CASE_GROUPS:
            ap.error(f"--only: unknown group {g!r}; use {', '.join(CASE_GROUPS)}")
        groups |= CASE_GROUPS[g]
    args.groups = groups
    sizes = list(args.rows or [DEFAULT_ROWS])
    if args.large and LARGE_ROWS not in sizes:
        sizes.append(LARGE_ROWS)
    if any(n < 1 for n in sizes):
        ap.error("--rows: sizes must be positive")
    args.sizes = sizes
    return args


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_before": _loadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_total_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    for mod in ("pandas", "sqlalchemy", "numpy", "psycopg"):
        with contextlib.suppress(ImportError):
            info[mod] = __import__(mod).__version__
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        # the loader measured is the working tree's: record where it differs from that commit
        info["uncommitted_changes"] = subprocess.run(
            ["git", "status", "--porcelain", "--", "etl", "warehouse"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_case(name: str, case: str, params: dict[str, Any], tmp_root: Path | None, timeout: float) -> dict:
    """Run one case in a fresh interpreter with its own temp dir; never raises."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name.replace('.', '-')}-", dir=tmp_root))
    params = {**params, "workdir": str(workdir)}
    for key in ("db",):
        if key in params:
            params[key] = str(workdir / params[key])
    if "url" in params and params["url"].startswith("sqlite:///"):
        params["url"] = f"sqlite:///{workdir / params['url'].removeprefix('sqlite:///')}"
    out = workdir / "result.json"
    log = workdir / "child.log"
    say(f"{name}: start")
    t0 = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    try:
        with log.open("w") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.child", case, json.dumps(params), str(out)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if out.is_file():
            result = json.loads(out.read_text())
        else:
            result = {"ok": False, "error": f"child exited with {proc.returncode} without a result"}
        if not result.get("ok"):
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            result.setdefault("log_tail", tail)
    except subprocess.TimeoutExpired:
        result = {"ok": False, "error": f"timed out after {timeout:g} s"}
    except Exception as exc:  # noqa: BLE001 - a failing case must not stop the run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["process_seconds"] = round(time.perf_counter() - t0, 2)
    if result.get("ok"):
        first = result.get("first", {})
        rss = first.get("peak_rss_mb")
        say(
            f"{name}: done, {first.get('seconds', 0):.2f} s timed, peak RSS {rss} MB ({result['process_seconds']} s)"
        )
    else:
        say(f"{name}: FAILED: {result.get('error')}")
        for line in result.get("log_tail", []):
            print(f"    | {line}", file=sys.stderr)
    return result


def _case(name: str, case: str, params: dict[str, Any], args: argparse.Namespace) -> Callable[[], dict]:
    return lambda: run_case(name, case, params, args.tmp_dir, args.timeout)


def _pg_case(
    server: pg.PgServer, name: str, case: str, common: dict[str, Any], args: argparse.Namespace
) -> Callable[[], dict]:
    """One run of a PostgreSQL case, in a database of its own, created before and dropped after."""

    def run() -> dict:
        try:
            db = server.create_database(name.replace(".", "_"))
        except Exception as exc:  # noqa: BLE001
            say(f"{name}: FAILED: {exc}")
            return {"ok": False, "error": f"create database: {exc}"}
        params = {
            **common,
            "backend": "postgresql",
            "url": server.url(db),
            "dsn": server.dsn(db),
            "chunk_rows": args.chunk_rows,
        }
        try:
            return run_case(name, case, params, args.tmp_dir, args.timeout)
        finally:
            try:
                server.drop_database(db)
            except Exception as exc:  # noqa: BLE001
                say(f"{name}: could not drop database {db}: {exc}")

    return run


def median_run(results: list[dict]) -> dict:
    """One case's runs as one result: the run whose first load took the median time (the lower middle one for an
    even count), with every run's seconds in `runs`, and as peak RSS of each timed part the highest of the runs
    (a memory bound must hold in every run). A failed run makes the case failed: it is not averaged away."""
    if len(results) == 1:
        return results[0]
    failed = [r for r in results if not r.get("ok")]
    if failed:
        return {**failed[0], "runs_failed": len(failed), "runs_total": len(results)}
    ordered = sorted(results, key=lambda r: r["first"]["seconds"])
    chosen = ordered[(len(ordered) - 1) // 2]
    out = {**chosen, "runs": [r["first"]["seconds"] for r in results]}
    for part, timing in chosen.items():
        if isinstance(timing, dict) and "peak_rss_mb" in timing:
            peaks = [
                r[part]["peak_rss_mb"] for r in results if r.get(part, {}).get("peak_rss_mb") is not None
            ]
            out[part] = {**timing, "peak_rss_mb": max(peaks)}
    return out


def run_size(args: argparse.Namespace, n: int, server: pg.PgServer | None, pg_skip: str | None) -> dict:
    size: dict[str, Any] = {"rows": n, "patients": data.n_patients(n), "cases": {}}
    try:
        scores, patients = data.ensure_input(args.cache_dir, n, args.seed, say)
    except Exception as exc:  # noqa: BLE001
        say(f"input for {n:,} rows: FAILED: {exc}")
        size["error"] = f"input generation failed: {exc}"
        return size
    size["input"] = str(scores)
    size["input_mb"] = round(scores.stat().st_size / 1e6, 1)
    common = {"scores": str(scores), "patients": str(patients), "as_of": data.AS_OF.isoformat()}
    g = args.groups
    say(f"== {n:,} rows ==")
    plan: list[tuple[str, Callable[[], dict]]] = []
    if "ours" in g:
        params = {**common, "url": "sqlite:///warehouse.sqlite", "chunk_rows": args.chunk_rows}
        plan.append(("sqlite.ours", _case("sqlite.ours", "ours", params, args)))
    if "naive" in g:
        if args.skip_naive_large and n >= LARGE_ROWS:
            say(f"sqlite.naive: skipped at {n:,} rows (--skip-naive-large)")
            size["naive_skipped"] = "--skip-naive-large"
        else:
            params = {**common, "backend": "sqlite", "db": "naive.sqlite"}
            plan.append(("sqlite.naive", _case("sqlite.naive", "naive", params, args)))
            params = {**params, "via": "sqlalchemy"}
            plan.append(("sqlite.naive_sa", _case("sqlite.naive_sa", "naive", params, args)))
    if "floor" in g:
        for shape, name in (("plain", "sqlite.floor"), ("pk", "sqlite.floor_pk")):
            params = {**common, "db": "floor.sqlite", "shape": shape}
            plan.append((name, _case(name, "floor", params, args)))
    if "pg" in g:
        if pg_skip:
            size["pg_skipped"] = pg_skip
        elif n > args.pg_max_rows:
            size["pg_skipped"] = f"size above --pg-max-rows {args.pg_max_rows:,}"
        elif server is not None:
            pg_cases = [("pg.ours", "ours"), ("pg.naive", "naive"), ("pg.copy", "copy")]
            if args.skip_naive_large and n >= LARGE_ROWS:
                pg_cases.remove(("pg.naive", "naive"))
            for name, case in pg_cases:
                plan.append((name, _pg_case(server, name, case, common, args)))
    runs: dict[str, list[dict]] = {name: [] for name, _ in plan}
    for r in range(args.repeat):
        if args.repeat > 1:
            say(f"-- run {r + 1} of {args.repeat}")
        for name, run in plan:  # interleaved: a slower spell of the machine hits every case alike
            runs[name].append(run())
    size["cases"] = {name: median_run(results) for name, results in runs.items()}
    size["ratios"] = report.ratios(size)
    return size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now().astimezone()
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": {
            "sizes": args.sizes,
            "only": sorted(args.groups),
            "seed": args.seed,
            "chunk_rows": args.chunk_rows,
            "skip_naive_large": args.skip_naive_large,
            "repeat": args.repeat,
            "as_of": data.AS_OF.isoformat(),
        },
        "sizes": [],
    }
    if args.tmp_dir:
        args.tmp_dir.mkdir(parents=True, exist_ok=True)
    say(f"sizes {', '.join(f'{n:,}' for n in args.sizes)}; cases {', '.join(sorted(args.groups))}")

    server: pg.PgServer | None = None
    pg_skip: str | None = None
    if "pg" in args.groups:
        if args.no_pg:
            pg_skip = "--no-pg"
        elif not any(n <= args.pg_max_rows for n in args.sizes):
            pg_skip = f"no size up to --pg-max-rows {args.pg_max_rows:,}"
        else:
            pg_skip = pg.unavailable_reason()
        if pg_skip is None:
            say("PostgreSQL: starting a throwaway server")
            server = pg.PgServer()
            try:
                server.start()
                results["machine"]["postgresql"] = server.version
                say(f"PostgreSQL {server.version}: up on port {server.port}")
            except Exception as exc:  # noqa: BLE001
                pg_skip = f"could not start the throwaway server: {exc}"
                server.close()
                server = None
        if pg_skip:
            say(f"PostgreSQL: skipped ({pg_skip})")
    t0 = time.perf_counter()
    try:
        for n in args.sizes:
            results["sizes"].append(run_size(args, n, server, pg_skip))
    except KeyboardInterrupt:
        say("interrupted: reporting what was measured")
    finally:
        if server is not None:
            server.close()
            say("PostgreSQL: stopped")
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    results["machine"]["load_after"] = _loadavg()

    print(report.render(results))
    print(f"\ntotal {results['total_seconds']:.0f} s")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"load-{started:%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        say(f"results written to {path}")
    except OSError as exc:
        say(f"could not write the JSON results: {exc}")
    failed = [
        f"{s['rows']:,} {name}" for s in results["sizes"] for name, c in s["cases"].items() if not c.get("ok")
    ]
    if failed:
        say(f"failed cases: {', '.join(failed)}")
    return 1 if failed else 0
