"""`python -m bench.dashboard [--patients 100000] [--reuse]`: the dashboard's latency benchmark (issue 3).

On a warehouse of 100,000 patients (~10M+ score rows, built once with etl.generate + etl.load into
bench/.cache/dashboard-100k.sqlite):
1. the patient page's data queries, direct calls on the engine, over 200 random patients (fixed seed);
2. the caseload's first page and flag counts for a clinic-wide viewer, one clinic, one therapist;
3. the naive baseline in the same run: pandas.read_sql of the whole scores table, then filtering (fresh process);
4. the patient page's callbacks over HTTP, posted as the browser posts them, to the app served by gunicorn;
   the server's RSS afterwards;
5. headless Chromium: navigation to all charts drawn, median of 20 patients.
A table with targets goes to stdout, progress to stderr, everything to bench/results/dashboard-<time>.json, and the
figures to docs/benchmarks-dashboard.md. See docs/benchmarks-dashboard.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bench import dashboard_build as build
from bench.cli import machine_info

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks-dashboard.md"
STEPS = ("queries", "caseload", "naive", "http", "browser")
TARGETS = {"query_ms": 10.0, "http_ms": 100.0, "caseload_ms": 100.0, "rss_mb": 400.0}
FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"


def say(msg: str) -> None:
    print(f"[bench.dashboard {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--patients", type=int, default=100_000, help="warehouse size in patients (default 100,000)"
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the cached warehouse if there is one (without it the warehouse is rebuilt: minutes)",
    )
    ap.add_argument(
        "--sample", type=int, default=200, help="random patients per latency figure (default 200)"
    )
    ap.add_argument("--reps", type=int, default=200, help="caseload calls per case (default 200)")
    ap.add_argument(
        "--browser-patients", type=int, default=20, help="patients opened in Chromium (default 20)"
    )
    ap.add_argument("--naive-calls", type=int, default=3, help="naive read_sql calls (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the patient sample (default 1)")
    ap.add_argument(
        "--only", default=",".join(STEPS), help=f"comma-separated steps (default all): {', '.join(STEPS)}"
    )
    ap.add_argument("--server", choices=("gunicorn", "werkzeug"), default="gunicorn")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    ap.add_argument("--doc", type=Path, default=DOC, help="the Markdown report to write")
    ap.add_argument("--no-doc", action="store_true", help="do not write the Markdown report")
    args = ap.parse_args(argv)
    args.steps = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in args.steps if s not in STEPS]
    if bad:
        ap.error(f"--only: unknown step(s) {', '.join(bad)}; use {', '.join(STEPS)}")
    return args


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- steps -------------------------------------------------------------------------------------------------------
def warehouse(args: argparse.Namespace) -> dict[str, Any]:
    info = build.read_meta(args.cache_dir, args.patients) if args.reuse else None
    if info is not None:
        say(f"warehouse: reusing {build.paths(args.cache_dir, args.patients)[0]} (built {info['built_at']})")
        info = {**info, "reused": True}
    else:
        info = {**build.build(args.cache_dir, args.patients, say), "reused": False}
    info["path"] = str(build.paths(args.cache_dir, args.patients)[0])
    as_of = date.fromisoformat(info["as_of"]) if info.get("as_of") else None
    info["schema"] = build.upgrade_schema(build.url(Path(info["path"])), say, as_of)
    info["size_check"] = build.check_size(info, say)
    return info


def naive(db_url: str, pids: list[str]) -> dict[str, Any]:
    """The naive baseline in a fresh interpreter (its memory is not ours)."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-naive-") as tmp:
        out = Path(tmp) / "result.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.dashboard_child",
                json.dumps({"url": db_url, "patients": pids}),
                str(out),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=3600,
        )
        result = (
            json.loads(out.read_text())
            if out.is_file()
            else {"ok": False, "error": f"exit {proc.returncode}"}
        )
        if not result.get("ok"):
            result["stderr_tail"] = proc.stderr.strip().splitlines()[-15:]
        result["process_seconds"] = round(time.perf_counter() - t0, 1)
    return result


# --- report ------------------------------------------------------------------------------------------------------
def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary table: label, median, p95, target, status."""
    out: list[dict[str, Any]] = []

    def add(
        label: str, s: dict[str, Any] | None, target: float | None, unit: str = "ms", key: str = "p95_ms"
    ):
        if not s or not s.get("n"):
            return
        status = "-" if target is None else ("PASS" if s[key] < target else "MISS")
        out.append(
            {
                "label": label,
                "median": s.get("median_ms"),
                "p95": s.get("p95_ms"),
                "target": f"p95 < {target:g} {unit}" if target is not None else "-",
                "status": status,
            }
        )

    q = results.get("patient_queries")
    if q:
        for name, s in q["per_query"].items():
            add(f"patient query: {name}", s, TARGETS["query_ms"])
        n = q.get("queries_per_page_load")
        add(
            f"patient page: all {n:g} queries of a page load",
            q["page_load_queries_total"],
            TARGETS["query_ms"],
        )
        add(f"patient page: all {n:g} queries, CPU time (info)", q.get("page_load_queries_cpu"), None)
    c = results.get("caseload")
    if c:
        for name, s in c["cases"].items():
            what, who = name.split(":")
            label = {"page": "caseload first page", "flag_counts": "caseload flag counts"}[what]
            add(f"{label}: {who.replace('_', '-')} viewer", s, TARGETS["caseload_ms"])
    h = results.get("http")
    if h:
        for name, s in h["per_callback"].items():
            target = (
                TARGETS["http_ms"] if name in ("overview", "trends", "sessions") or "data" in name else None
            )
            add(f"HTTP: {name}", s, target)
        cpu = h.get("server_cpu_ms_per_page_load")
        if cpu is not None:
            out.append(
                {
                    "label": "HTTP: server CPU per page load, all callbacks (info)",
                    "median": cpu,
                    "p95": None,
                    "target": "- (mean)",
                    "status": "-",
                }
            )
    b = results.get("browser")
    if b:
        add("browser: navigation -> all charts drawn", b["navigation_to_all_drawn"], None)
    n = results.get("naive")
    if n and n.get("ok"):
        ms = [c["seconds"] * 1000 for c in n["calls"]]
        out.append(
            {
                "label": f"naive: read_sql(whole scores) + filter, {len(ms)} calls",
                "median": statistics.median(ms),
                "p95": max(ms),
                "target": "- (p95 col = max)",
                "status": "-",
            }
        )
    mem = results.get("server_memory_after_http")
    if mem and mem.get("max_worker_rss_mb") is not None:
        v = mem["max_worker_rss_mb"]
        out.append(
            {
                "label": "dashboard process RSS after the HTTP run (largest worker)",
                "median": v,
                "p95": None,
                "target": f"< {TARGETS['rss_mb']:g} MB",
                "status": "PASS" if v < TARGETS["rss_mb"] else "MISS",
                "unit": "MB",
            }
        )
    return out


def _num(v: float | None, unit: str = "ms") -> str:
    if v is None:
        return "-"
    if unit == "MB":
        return f"{v:,.0f} MB"
    return f"{v:,.0f}" if v >= 1000 else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def render_table(table: list[dict[str, Any]]) -> str:
    lines = [f"  {'figure':<62} {'median':>9} {'p95':>9}  {'target':<18} result"]
    for r in table:
        unit = r.get("unit", "ms")
        lines.append(
            f"  {r['label']:<62} {_num(r['median'], unit):>9} {_num(r['p95'], unit):>9}  {r['target']:<18} {r['status']}"
        )
    return "\n".join(lines)


def header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    w = results.get("warehouse", {})
    c = w.get("counts", {})
    return [
        f"Dashboard benchmark {results['date']} ({m['cpu_count']} CPUs {m.get('cpu_model', '')}, "
        f"{m.get('mem_total_gb', '?')} GB RAM, Python {m['python']}, SQLite {m['sqlite']})",
        f"load average before {m['load_before']}, during {results.get('load_during')}, after {m.get('load_after')};"
        f" commit {m.get('git_commit')}",
        f"warehouse {c.get('patients', 0):,} patients, {c.get('scores', 0):,} score rows, "
        f"{c.get('sessions', 0):,} sessions, {w.get('file_mb', 0):,} MB"
        + (f" (built in {w['build_seconds']:.0f} s)" if w.get("build_seconds") else ""),
    ]


def render(results: dict[str, Any]) -> str:
    return "\n".join([*header(results), "", render_table(results["table"])])


# --- Markdown ------------------------------------------------------------------------------------------------------
def _md_table(table: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | median | p95 | target | result |", "| --- | ---: | ---: | --- | --- |"]
    for r in table:
        unit = r.get("unit", "ms")
        lines.append(
            f"| {r['label']} | {_num(r['median'], unit)} | {_num(r['p95'], unit)} | {r['target']} | {r['status']} |"
        )
    return lines


def _stats_md(title: str, items: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"| {title} | n | median ms | p95 ms | max ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, s in items.items():
        if s.get("n"):
            lines.append(
                f"| {name} | {s['n']} | {_num(s['median_ms'])} | {_num(s['p95_ms'])} | {_num(s['max_ms'])} |"
            )
    return lines


def render_markdown(results: dict[str, Any], findings: str) -> str:
    m = results["machine"]
    w = results.get("warehouse", {})
    c = w.get("counts", {})
    out = [
        "# Dashboard benchmark",
        "",
        "`python -m bench.dashboard [--patients 100000] [--reuse]` (code: `bench/dashboard*.py`). This page is written",
        "by the benchmark from its last run, except the findings section, which it keeps.",
        "",
        "```bash",
        ".venv/bin/python -m bench.dashboard                  # builds the 100k warehouse (minutes), then measures",
        ".venv/bin/python -m bench.dashboard --reuse          # reuses bench/.cache/dashboard-100k.sqlite",
        ".venv/bin/python -m bench.dashboard --reuse --only queries,caseload   # steps: " + ", ".join(STEPS),
        "```",
        "",
        "## Last run",
        "",
        f"- date: {results['date']}; commit {m.get('git_commit')}"
        + (" (with uncommitted changes in etl/warehouse)" if m.get("uncommitted_changes") else "")
        + (
            f" (working tree: {', '.join(m['uncommitted_dashboard'])})"
            if m.get("uncommitted_dashboard")
            else ""
        ),
        f"- machine: {m['cpu_count']} CPUs ({m.get('cpu_model', '?')}), {m.get('mem_total_gb', '?')} GB RAM, "
        f"Python {m['python']}, SQLite {m['sqlite']}, pandas {m.get('pandas')}, SQLAlchemy {m.get('sqlalchemy')}"
        + (f", Chromium {results['browser']['chromium']}" if results.get("browser") else ""),
        f"- load average (1, 5, 15 min) before {m['load_before']}, between steps {results.get('load_during')}, "
        f"after {m.get('load_after')}: the machine is shared with other engineers' work (2 CPUs), so figures move "
        "with their load.",
        f"- warehouse: {c.get('patients', 0):,} patients, {c.get('episodes', 0):,} episodes, "
        f"**{c.get('scores', 0):,} score rows** ({c.get('scores', 0) / max(c.get('patients', 1), 1):.0f} per "
        f"patient: ~100 home-app readings + the clinic visits' 7 measures), {c.get('sessions', 0):,} sessions; "
        f"{w.get('file_mb', 0):,} MB SQLite file, built by `etl.generate` (seed {w.get('seed')}, as of "
        f"{w.get('as_of')}) + `etl.load.load_file` per file"
        + (
            f" in {w['build_seconds']:.0f} s ({w['generate_seconds']:.0f} s generating)"
            if w.get("build_seconds")
            else ""
        )
        + ".",
        f"- samples: {results['args']['sample']} random patients (seed {results['args']['seed']}) for the query and "
        f"HTTP figures, {results['args']['reps']} calls per caseload case, the first "
        f"{results['args']['browser_patients']} of the sample in Chromium; warm-up loads before each (not counted).",
        "",
        *_md_table(results["table"]),
        "",
        "## Findings",
        "",
        FINDINGS_START,
        findings.strip() or "_(to be written after a run)_",
        FINDINGS_END,
        "",
    ]
    q = results.get("patient_queries")
    if q:
        out += [
            "## Patient page: queries (direct calls)",
            "",
            "The bodies of the page's three data callbacks (`overview`, `trend_cards`, `session_outputs` in",
            "`dashboard/pages/patient.py`) run as the page runs them, with every function of `dashboard.queries.patient`",
            "and `.catalog` wrapped in a timer: a page load runs "
            f"{q['queries_per_page_load']:g} query calls (trends gets the overview's baselines from the page "
            "store, as the page does; the catalogs are cached per process, so after the warm-up they are no "
            "query). The CPU-time row sums the same calls' `time.process_time` (SQLite runs in this process). "
            '"SQL only" replays the same statements on the raw sqlite3 cursor (execute + fetchall) for 50 patients:',
            "the rest of a query's time is SQLAlchemy and building the DataFrame.",
            "",
            *_stats_md("query (each call)", q["per_query"]),
            "",
            *_stats_md("SQL only (sqlite3 cursor)", q["per_query_sql_only"]),
            "",
            *_stats_md("callback body (queries + figures, in process)", q["callback_bodies"]),
            "",
        ]
    cl = results.get("caseload")
    if cl:
        out += [
            "## Caseload (direct calls)",
            "",
            f"`caseload_page` (offset 0, {cl['page_size']} rows: the grid's first block, default sort: flags, then last",
            "activity) and `flag_counts`, for a clinic-wide viewer, a clinic scope (`Scope.clinics`, one of "
            f"{cl['clinics']} clinics at random each call) and a therapist scope (one of {cl['therapists']} at random);",
            "the page calls vary the flag filter (none or one of the five).",
            "",
            "| case | n | median ms | p95 ms | max ms | matching rows (median) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in cl["cases"].items():
            out.append(
                f"| {name} | {s['n']} | {_num(s['median_ms'])} | {_num(s['p95_ms'])} | {_num(s['max_ms'])} | "
                f"{s['matching_rows_median']:,.0f} |"
            )
        out.append("")
    h = results.get("http")
    if h:
        mem = results.get("server_memory_after_http") or {}
        mem2 = results.get("server_memory_after_browser") or {}
        cmp_ = (results.get("browser") or {}).get("request_check")
        out += [
            "## Over HTTP",
            "",
            f"`create_app(engine)` served by {results['args']['server']}"
            + (
                f" ({results['args']['workers']} sync workers, `dashboard.wsgi:create_server()`)"
                if results["args"]["server"] == "gunicorn"
                else ""
            )
            + " on 127.0.0.1; the client posts each page load's callbacks to `/_dash-update-component` as the",
            "renderer does: the shell's viewer callback and the pages router in parallel, then the overview, then trends",
            "and sessions in parallel with the dates the overview returned. Bodies are built from `/_dash-dependencies`",
            "with the page's `endId` token"
            + (
                "; Chromium's own bodies for the same patient (performance log) are "
                + (
                    "**identical**"
                    if cmp_.get("all_identical")
                    else f"not all identical: {cmp_['callbacks']}"
                )
                if cmp_
                else ""
            )
            + ".",
            "",
            *_stats_md("callback request", h["per_callback"]),
            "",
            f"Response sizes (median KB): {', '.join(f'{k} {v}' for k, v in h['response_kb_median'].items())}.",
            "",
            f"Server memory after the HTTP run: largest worker {mem.get('max_worker_rss_mb')} MB RSS "
            f"(peak {mem.get('max_worker_hwm_mb')} MB), all processes {mem.get('total_rss_mb')} MB"
            + (
                f"; after the browser run: largest worker {mem2.get('max_worker_rss_mb')} MB"
                if mem2.get("max_worker_rss_mb")
                else ""
            )
            + ".",
            "",
        ]
    b = results.get("browser")
    if b:
        out += [
            "## Real browser",
            "",
            f"Headless Chromium {b['chromium']} (selenium, Debian's chromium and chromedriver), 1280x900: each patient",
            "is a full navigation to `/patients/<id>`; a script installed before the page loads records the time, from",
            "the start of the navigation, at which the overview is rendered, the trend cards exist, no Dash callback is",
            "queued or running, and every `dcc.Graph` holds a drawn Plotly chart (`.main-svg`), plus one animation",
            f"frame. {b['graphs_per_page_median']:g} charts per page (median), "
            f"{b['callback_requests_per_page_median']:g} callback requests; console errors: {len(b['console_errors'])}.",
            "",
            *_stats_md("navigation to", {"all charts drawn": b["navigation_to_all_drawn"]}),
            "",
            "Median time of each phase from the start of the navigation (ms):",
            "",
            "| phase | ms |",
            "| --- | ---: |",
            *(f"| {k} | {v:,.0f} |" for k, v in b["phases_median_ms"].items()),
            "",
        ]
    n = results.get("naive")
    if n and n.get("ok"):
        out += [
            "## Naive baseline",
            "",
            '`pandas.read_sql("SELECT * FROM scores", engine)` then `df[df.patient_id == pid]` sorted like',
            "`patient_scores`, in a fresh process; peak RSS per call (reset before each call; it includes the",
            "~150 MB of interpreter and libraries).",
            "",
            "| patient | seconds | read_sql s | filter s | rows read | rows kept | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *(
                f"| {x['patient_id']} | {x['seconds']:.1f} | {x['read_seconds']:.1f} | {x['filter_seconds']:.2f} | "
                f"{x['rows_read']:,} | {x['rows_kept']} | {x['peak_rss_mb']:,.0f} MB |"
                for x in n["calls"]
            ),
            "",
        ]
        if q and "patient_scores" in q["per_query"]:
            ours = q["per_query"]["patient_scores"]["median_ms"]
            naive_ms = statistics.median(x["seconds"] * 1000 for x in n["calls"])
            out += [
                f"`patient_scores` (median {ours:.2f} ms) is {naive_ms / ours:,.0f}x faster than the naive read.",
                "",
            ]
    plans = []
    if q:
        for name, entries in q["plans"].items():
            plans.append((f"patient: {name}", entries))
    if cl:
        for name, p in cl["plans"].items():
            plans.append((f"caseload {name} (viewer {p['viewer']}, flag {p['flag']})", p["statements"]))
    if plans:
        out += ["## Query plans (EXPLAIN QUERY PLAN)", ""]
        for title, entries in plans:
            for e in entries:
                out += [f"- {title}: " + "; ".join(f"`{d}`" for d in e["plan"])]
        out.append("")
    return "\n".join(out)


def existing_findings(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError:
        return ""
    if FINDINGS_START in text and FINDINGS_END in text:
        return text.split(FINDINGS_START, 1)[1].split(FINDINGS_END, 1)[0]
    return ""


# --- main ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench import dashboard_queries as dq

    started = datetime.now().astimezone()
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": {
            "patients": args.patients,
            "sample": args.sample,
            "reps": args.reps,
            "browser_patients": args.browser_patients,
            "naive_calls": args.naive_calls,
            "seed": args.seed,
            "steps": args.steps,
            "server": args.server,
            "workers": args.workers,
        },
        "targets": TARGETS,
        "load_during": [],
    }
    # the code measured is the working tree's: record where dashboard/ differs from the commit
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        results["machine"]["uncommitted_dashboard"] = subprocess.run(
            ["git", "status", "--porcelain", "--", "dashboard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    say(f"load average {results['machine']['load_before']}; steps {', '.join(args.steps)}")
    failed: list[str] = []
    t_start = time.perf_counter()
    results["warehouse"] = warehouse(args)
    db_url = build.url(Path(results["warehouse"]["path"]))

    from warehouse.db import make_engine

    engine = make_engine(db_url)
    sample = dq.sample_patients(engine, args.sample + 10, args.seed)
    pids, warmup = sample[: args.sample], sample[args.sample :]
    results["sample_first"] = pids[:5]

    def step(name: str, fn):
        if name not in args.steps:
            return
        say(f"== {name} (load average {loadavg()})")
        results["load_during"].append(loadavg()[0])
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - report it, go on with the other steps
            import traceback

            traceback.print_exc(file=sys.stderr)
            results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]
            failed.append(name)
        say(f"{name}: {time.perf_counter() - t0:.1f} s")

    def queries():
        results["patient_queries"] = dq.patient_page(engine, pids, warmup[:5], say)

    def caseload():
        results["caseload"] = dq.caseload(engine, args.reps, args.seed, say)

    def naive_step():
        results["naive"] = naive(db_url, pids[: args.naive_calls])
        if not results["naive"].get("ok"):
            raise RuntimeError(f"naive baseline failed: {results['naive'].get('error')}")

    step("queries", queries)
    step("caseload", caseload)
    engine.dispose()
    step("naive", naive_step)

    server = None
    if {"http", "browser"} & set(args.steps):
        from bench import dashboard_http as dh

        engine = make_engine(db_url)
        login = dh.ensure_user(engine)
        engine.dispose()
        log = Path(tempfile.gettempdir()) / f"bench-dashboard-server-{os.getpid()}.log"
        server = dh.Server(db_url, args.server, args.workers, log_path=log)
        say(f"server: {' '.join(server.command())} (log {log}); signed in as {login[0]}")
        server.start()
        signin = dh.SignIn(server.base, *login)
        results["server_memory_at_start"] = server.memory()
    try:

        def http():
            results["http"] = dh.run(signin, pids, warmup[:5], say, server)
            results["server_memory_after_http"] = server.memory()

        def browser():
            from bench import dashboard_browser as db

            captured = db.capture_requests(server.base, login, warmup[5])
            client = dh.PatientPageClient(signin, dh.end_id(signin, f"/patients/{warmup[5]}"))
            try:
                ov = next(b for b in captured if b["output"] == client.overview["output"])
                trends = next((b for b in captured if b["output"] == client.trends["output"]), None)
                dates = tuple(i["value"] for i in trends["inputs"]) if trends else None
                # the trends body carries the overview's store: take it from the server's overview response
                _, ov_resp, _ = client.post(client.bodies(warmup[5])["overview"])
                store = ov_resp["response"].get("patient-default-dates", {}).get("data")
                check = db.compare(captured, client.bodies(warmup[5], dates, store))
                check["overview_seen"] = ov is not None
            finally:
                client.close()
            res = db.run(server.base, login, pids[: args.browser_patients], warmup[6:8], say)
            res["request_check"] = check
            say(f"browser: request bodies vs Chromium's: {check['callbacks']}")
            results["browser"] = res
            results["server_memory_after_browser"] = server.memory()

        step("http", http)
        step("browser", browser)
    finally:
        if server is not None:
            server.stop()
    results["machine"]["load_after"] = loadavg()
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    results["table"] = rows(results)

    print(render(results))
    if failed:
        print(f"\nfailed steps: {', '.join(failed)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"dashboard-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"results written to {path}")
    if not args.no_doc:
        args.doc.write_text(render_markdown(results, existing_findings(args.doc)))
        say(f"report written to {args.doc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
