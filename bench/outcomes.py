"""Outcomes page latency at 100k patients: the filter-change callback against the naive pandas baseline.

```bash
.venv/bin/python -m etl init --db sqlite:///bench/.cache/outcomes-100k.sqlite   # once: upgrade + rebuild marts
.venv/bin/python -m bench.outcomes [--db PATH] [--rounds 3] [--naive-calls 2] [--clinic C046]
```

Times the bodies of the three callbacks a filter change fires, as the server runs them (`main_outputs`: sums over
the outcome packs + tables + Plotly figures; `comparison_outputs`: the OLS fits and benchmarks over the filtered
episodes' rows; `quality_missing`: patients missing a baseline or follow-up) over a fixed set of filter changes, clinic-wide (or in one clinic's scope with `--clinic`), and in the same run the naive
baseline (`bench.outcomes_naive`: whole tables read with pandas.read_sql every call, rules and filters in pandas).
It also checks that the naive baseline and the page give the same numbers on the first filter set. Prints a table
and writes everything (machine, load average before/after, git commit) to `bench/results/outcomes-<ts>.json`.
Not a test: timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.outcomes_naive import naive_tables
from dashboard.context import AppContext
from dashboard.pages import outcomes as page
from dashboard.queries import outcomes as q
from dashboard.scope import Scope
from warehouse.db import make_engine
from warehouse.migrate import current_revision, head_revision

DEFAULT_DB = Path("bench/.cache/outcomes-100k.sqlite")
TARGET_P95_MS = 300.0


def filter_changes(clinic: str, therapist: str, last_start: dt.date) -> list[q.OutcomeFilters]:
    """What a manager clicks through: settings, severity, age, sex, date ranges, one clinic, one therapist."""
    f = q.OutcomeFilters
    return [
        f(),
        f(setting="home"),
        f(setting="clinic"),
        f(severity="severe"),
        f(severity="moderate", sex="F"),
        f(age_band="60-74"),
        f(sex="M", setting="home"),
        f(start_from=last_start - dt.timedelta(days=90)),
        f(start_from=last_start - dt.timedelta(days=365), start_to=last_start - dt.timedelta(days=180)),
        f(clinic_id=clinic),
        f(clinic_id=clinic, setting="home"),
        f(therapist_id=therapist),
        f(severity="mild", age_band="40-59"),
        f(age_band="75+", sex="F"),
    ]


def _ms(fn, *args) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t) * 1000.0, out


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "n": len(values),
        "median_ms": float(np.median(arr)),
        "p95_ms": float(np.percentile(arr, 95)),
        "max_ms": float(arr.max()),
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _same_numbers(agg: q.OutcomeAggregates, naive: dict[str, pd.DataFrame]) -> tuple[bool, str]:
    """The page's tables (grouped SQL) against the naive pandas ones, to 1e-9."""
    for name in ("type_summary", "dose_response", "dose_by_type", "monthly_trend", "missing_data"):
        got, want = getattr(agg, name)(), naive[name]
        try:
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True),
                want.reset_index(drop=True),
                check_dtype=False,
                rtol=1e-9,
                atol=1e-9,
            )
        except AssertionError as exc:
            return False, f"{name}: {str(exc).splitlines()[0]}"
    return True, "type summary, dose-response, weekly dose, monthly trend and missing data agree to 1e-9"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.outcomes", description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=DEFAULT_DB, help="SQLite warehouse (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the filter changes (default 3)")
    ap.add_argument("--naive-calls", type=int, default=2, help="naive baseline calls (minutes each at 100k)")
    ap.add_argument("--clinic", help="time in this clinic's scope (a manager) instead of clinic-wide")
    ap.add_argument(
        "--skip-other",
        action="store_true",
        help="skip the once-per-visit warehouse part of the quality panel",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    if not args.db.exists():
        print(f"error: {args.db} not found (see bench/README.md)", file=sys.stderr)
        return 2
    engine = make_engine(f"sqlite:///{args.db}")
    if current_revision(engine) != head_revision():
        print(
            f"error: {args.db} is at {current_revision(engine)}, not {head_revision()}: run "
            f"`python -m etl init --db sqlite:///{args.db}` (upgrades and rebuilds the marts)",
            file=sys.stderr,
        )
        return 2
    scope = Scope.clinics([args.clinic]) if args.clinic else Scope.clinic_wide()
    ctx = AppContext(engine=engine, scope_provider=lambda: scope)
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT clinic_id, therapist_id, max(start_date), count(*) FROM episode_summary "
            "GROUP BY clinic_id, therapist_id ORDER BY count(*) DESC LIMIT 1"
        ).one()
        last = conn.exec_driver_sql("SELECT max(start_date) FROM episode_summary").scalar_one()
        sizes = {
            t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()  # noqa: S608 (our table names)
            for t in ("episode_summary", "episode_exercise_dose", "sessions", "scores")
        }
    clinic = args.clinic or row[0]
    therapist = row[1]
    changes = filter_changes(clinic, therapist, dt.date.fromisoformat(str(last)[:10]))
    load_before = os.getloadavg()
    print(f"warehouse {args.db}: {sizes}; scope {'clinic ' + args.clinic if args.clinic else 'clinic-wide'}")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)

    # A filter change fires three callbacks (Dash runs them in parallel where the server has workers): all three
    # are timed for every filter set; the target applies to each, and "all three" is their serial sum.
    callbacks = {
        "main (tables, charts)": page.main_outputs,
        "comparison (OLS, benchmarks)": page.comparison_outputs,
        "data quality (missing, filtered)": page.quality_missing,
    }
    for fn in callbacks.values():
        fn(ctx, q.OutcomeFilters())  # warm-up: imports, first connection, statement compilation
    times: dict[str, list[float]] = {name: [] for name in callbacks}
    serial: list[float] = []
    per_filter: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for f in changes:
            total = 0.0
            for name, fn in callbacks.items():
                ms, _out = _ms(fn, ctx, f)
                times[name].append(ms)
                total += ms
            serial.append(total)
            per_filter.setdefault(f.describe(), []).append(times["main (tables, charts)"][-1])
    main_ms = times["main (tables, charts)"]
    other: dict[str, dict[str, float]] = {name: _stats(v) for name, v in times.items()} | {
        "all three, one after the other": _stats(serial)
    }
    if not args.skip_other:
        other["data quality (whole warehouse, once per visit)"] = _stats(
            [_ms(page.quality_warehouse, ctx)[0] for _ in range(3)]
        )

    naive_ms: list[float] = []
    agree: tuple[bool, str] | None = None
    for i in range(args.naive_calls):
        f = changes[i % len(changes)]
        print(f"naive call {i + 1}/{args.naive_calls} ({f.describe()})...", flush=True)
        ms, tables = _ms(naive_tables, engine, f)
        naive_ms.append(ms)
        if i == 0:
            agree = _same_numbers(page.aggregates_for(ctx, f), tables)
        del tables
    load_after = os.getloadavg()

    s = _stats(main_ms)
    naive = _stats(naive_ms) if naive_ms else None
    print()
    print(f"filter-change callback (main_outputs), {len(changes)} filter sets x {args.rounds} rounds:")
    print(f"  median {s['median_ms']:,.0f} ms   p95 {s['p95_ms']:,.0f} ms   max {s['max_ms']:,.0f} ms")
    print(f"  target p95 < {TARGET_P95_MS:.0f} ms: {'met' if s['p95_ms'] < TARGET_P95_MS else 'NOT met'}")
    for name, values in per_filter.items():
        print(f"    {statistics.median(values):8,.0f} ms  {name}")
    print("every callback a filter change fires (same filter sets and rounds):")
    for name, st in other.items():
        verdict = ("met" if st["p95_ms"] < TARGET_P95_MS else "NOT met") if "once" not in name else "-"
        print(
            f"  {name:48s} median {st['median_ms']:7,.0f} ms   p95 {st['p95_ms']:7,.0f} ms   "
            f"p95 < {TARGET_P95_MS:.0f} ms: {verdict}"
        )
    if naive:
        print(f"naive pandas baseline ({naive['n']} calls): median {naive['median_ms'] / 1000:,.1f} s")
        print(f"  ratio naive / page (medians): {naive['median_ms'] / s['median_ms']:,.0f}x")
    if agree:
        print(f"same numbers as the naive baseline: {'yes' if agree[0] else 'NO'} ({agree[1]})")
    print(
        f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (2 shared CPUs: noisy)"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "db": str(args.db),
        "sizes": sizes,
        "scope": args.clinic or "clinic-wide",
        "main_outputs": s
        | {"per_filter_median_ms": {k: statistics.median(v) for k, v in per_filter.items()}},
        "target_p95_ms": TARGET_P95_MS,
        "other_callbacks": other,
        "naive": naive,
        "ratio_naive_over_page_median": (naive["median_ms"] / s["median_ms"]) if naive else None,
        "same_numbers": agree,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "load_before": load_before,
            "load_after": load_after,
        },
        "git_commit": _git_commit(),
    }
    path = args.out / f"outcomes-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
