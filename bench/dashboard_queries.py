"""In-process measurements of the dashboard's data layer: direct calls on the engine, no HTTP.

Patient page: the three data callbacks' bodies (`overview`, `trend_cards`, `session_outputs` from
dashboard/pages/patient.py) run as the page runs them (the trends and sessions callbacks get the date range the
overview callback returns), with every query function in `dashboard.queries.patient` / `.catalog` wrapped in a
timer. So "every data query the page's callbacks run" is exactly what the page runs, duplicates included
(`patient_episodes` and `episode_measures` run in two callbacks), not a hand-made list that could drift.

Caseload: `caseload_page` (first page, default sort) and `flag_counts` under three viewers, filters varied.

Every statement is also captured (SQLAlchemy `before_cursor_execute`), replayed with the raw sqlite3 cursor
(execute + fetchall: the database's share of the time) and explained (`EXPLAIN QUERY PLAN`).
"""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Engine, event, text

PATIENT_QUERY_MODULES = ("dashboard.queries.patient", "dashboard.queries.catalog")
PATIENT_QUERIES = (
    "patient_profile",
    "patient_episodes",
    "episode_measures",
    "patient_date_span",
    "patient_scores",
    "patient_sessions",
    "measures_catalog",
    "exercise_type_labels",
)
CASELOAD_PAGE_SIZE = 25  # the grid's cacheBlockSize: the first getRows request asks for rows 0-25


def stats(ms: list[float]) -> dict[str, Any]:
    """median / p95 / max / mean of milliseconds (numpy's linear percentile)."""
    if not ms:
        return {"n": 0}
    a = np.asarray(ms, dtype=float)
    return {
        "n": int(a.size),
        "median_ms": round(float(np.median(a)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "max_ms": round(float(a.max()), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def sample_patients(engine: Engine, n: int, seed: int) -> list[str]:
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT patient_id FROM patients ORDER BY patient_id"))]
    return random.Random(seed).sample(ids, min(n, len(ids)))


class StatementLog:
    """Collects (statement, parameters) executed on the engine while `capturing` is on, into `current`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.current: list[tuple[str, Any]] | None = None
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn, _cursor, statement, parameters, _context, _executemany) -> None:
        # only the queries: not the BEGIN that warehouse.db's engine issues itself
        if self.current is not None and statement.lstrip()[:6].upper() in ("SELECT", "WITH"):
            self.current.append((statement, parameters))

    @contextmanager
    def capturing(self) -> Iterator[list[tuple[str, Any]]]:
        outer, self.current = self.current, []
        try:
            yield self.current
        finally:
            got, self.current = self.current, outer
            if outer is not None:
                outer.extend(got)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


@contextmanager
def instrumented_queries(
    log: StatementLog, on_call: Callable[[str, float, list, float], None]
) -> Iterator[None]:
    """Wrap every patient-page query function so each call reports (name, ms, statements, CPU ms) to `on_call`."""
    import importlib

    patched: list[tuple[Any, str, Any]] = []
    for modname in PATIENT_QUERY_MODULES:
        mod = importlib.import_module(modname)
        for name in PATIENT_QUERIES:
            fn = getattr(mod, name, None)
            if fn is None:
                continue

            def wrapper(*args, __fn=fn, __name=name, **kwargs):
                with log.capturing() as stmts:
                    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
                    try:
                        return __fn(*args, **kwargs)
                    finally:
                        cpu_ms = (time.process_time_ns() - c0) / 1e6
                        on_call(__name, (time.perf_counter_ns() - t0) / 1e6, list(stmts), cpu_ms)

            patched.append((mod, name, fn))
            setattr(mod, name, wrapper)
    try:
        yield
    finally:
        for mod, name, fn in patched:
            setattr(mod, name, fn)


def app_context(engine: Engine):
    from dashboard.context import AppContext
    from dashboard.flags import FlagRules
    from dashboard.queries.catalog import measures_catalog

    rules = FlagRules.from_catalog(measures_catalog(engine).to_dict("records"))
    return AppContext(engine=engine, flag_rules=rules)


def patient_page(engine: Engine, pids: list[str], warmup: list[str], say) -> dict[str, Any]:
    """Per query function: each call's ms; per page load: the sum of its queries' ms; per callback body: ms."""
    from dashboard.pages import patient as page

    ctx = app_context(engine)
    log = StatementLog(engine)
    calls: dict[str, list[float]] = defaultdict(list)
    statements: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    page_sum: list[float] = []
    bodies: dict[str, list[float]] = defaultdict(list)
    counting = [False]
    per_page: list[float] = []
    per_page_cpu: list[float] = []
    page_sum_cpu: list[float] = []
    per_page_calls: list[int] = []
    n_calls = [0]

    def on_call(name: str, ms: float, stmts: list, cpu_ms: float) -> None:
        if counting[0]:
            calls[name].append(ms)
            per_page.append(ms)
            per_page_cpu.append(cpu_ms)
            n_calls[0] += 1
            if len(statements[name]) < 50:
                statements[name].append(stmts)

    def load(pid: str) -> None:
        per_page.clear()
        per_page_cpu.clear()
        n_calls[0] = 0
        t0 = time.perf_counter_ns()
        ov = page.overview(ctx, pid)
        t1 = time.perf_counter_ns()
        start = ov.start.isoformat() if ov.start else None
        end = ov.end.isoformat() if ov.end else None
        page.trend_cards(
            ctx, pid, start, end, ov.store(pid) if ov.found else None
        )  # as the page's store does
        t2 = time.perf_counter_ns()
        page.session_outputs(ctx, pid, start, end)
        t3 = time.perf_counter_ns()
        if counting[0]:
            bodies["overview"].append((t1 - t0) / 1e6)
            bodies["trends"].append((t2 - t1) / 1e6)
            bodies["sessions"].append((t3 - t2) / 1e6)
            bodies["all three"].append((t3 - t0) / 1e6)
            page_sum.append(sum(per_page))
            page_sum_cpu.append(sum(per_page_cpu))
            per_page_calls.append(n_calls[0])

    with instrumented_queries(log, on_call):
        for pid in warmup:
            load(pid)
        counting[0] = True
        t0 = time.perf_counter()
        for i, pid in enumerate(pids, 1):
            load(pid)
            if i % 50 == 0:
                say(f"patient page queries: {i}/{len(pids)} patients ({time.perf_counter() - t0:.1f} s)")
    log.close()
    raw = replay(engine, statements)
    return {
        "patients": len(pids),
        "warmup_patients": len(warmup),
        "queries_per_page_load": statistics.median(per_page_calls) if per_page_calls else None,
        "per_query": {
            name: stats(ms) for name, ms in sorted(calls.items(), key=lambda kv: -np.median(kv[1]))
        },
        "per_query_sql_only": raw,
        "page_load_queries_total": stats(page_sum),
        # CPU time of the same calls (this process; SQLite runs in it): what the page costs on an idle machine
        "page_load_queries_cpu": stats(page_sum_cpu),
        "callback_bodies": {name: stats(ms) for name, ms in bodies.items()},
        "plans": explain(engine, {name: s[0] for name, s in statements.items() if s}),
    }


def replay(engine: Engine, statements: dict[str, list[list[tuple[str, Any]]]]) -> dict[str, Any]:
    """Run the captured statements again with the raw DBAPI cursor (execute + fetchall): the database's share."""
    out: dict[str, Any] = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, calls in statements.items():
            ms = []
            for stmts in calls:
                t0 = time.perf_counter_ns()
                for sql, params in stmts:
                    cur.execute(sql, params)
                    cur.fetchall()
                ms.append((time.perf_counter_ns() - t0) / 1e6)
            out[name] = stats(ms)
        cur.close()
    finally:
        raw.close()
    return out


def explain(engine: Engine, statements: dict[str, list[tuple[str, Any]]]) -> dict[str, Any]:
    """EXPLAIN QUERY PLAN of each captured statement: {name: [{sql, plan: [detail, ...]}]}."""
    out: dict[str, Any] = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, stmts in statements.items():
            entries = []
            for sql, params in stmts:
                cur.execute("EXPLAIN QUERY PLAN " + sql, params)
                entries.append({"sql": " ".join(sql.split()), "plan": [r[3] for r in cur.fetchall()]})
            out[name] = entries
        cur.close()
    finally:
        raw.close()
    return out


# --- caseload -------------------------------------------------------------------------------------------------------
def caseload(engine: Engine, reps: int, seed: int, say) -> dict[str, Any]:
    """First page (default sort, 25 rows) and flag counts for three viewers, `reps` calls each, filters varied."""
    from dashboard.flags import FLAGS
    from dashboard.queries import caseload as q
    from dashboard.scope import Scope

    ctx = app_context(engine)
    rules = ctx.flag_rules
    with engine.connect() as conn:
        clinic_ids = [r[0] for r in conn.execute(text("SELECT clinic_id FROM clinics ORDER BY clinic_id"))]
        therapist_ids = [
            r[0] for r in conn.execute(text("SELECT therapist_id FROM therapists ORDER BY therapist_id"))
        ]
    rng = random.Random(seed)
    flag_choices = (None, *FLAGS)

    def viewer(kind: str) -> tuple[Scope, str]:
        if kind == "clinic_wide":
            return Scope.clinic_wide(), "all"
        if kind == "clinic":
            c = rng.choice(clinic_ids)
            return Scope.clinics([c]), c
        t = rng.choice(therapist_ids)
        return Scope.therapist(t), t

    log = StatementLog(engine)
    cases: dict[str, Any] = {}
    plans: dict[str, list] = {}
    for kind in ("clinic_wide", "clinic", "therapist"):
        for what in ("page", "flag_counts"):
            name = f"{what}:{kind}"
            ms: list[float] = []
            rows: list[int] = []
            by_flag: dict[str, list[float]] = defaultdict(list)
            for i in range(reps + 3):  # 3 warm-up calls
                scope, who = viewer(kind)
                flag = rng.choice(flag_choices) if what == "page" else None
                filters = q.CaseloadFilters(flag=flag)
                with log.capturing() as stmts:
                    t0 = time.perf_counter_ns()
                    if what == "page":
                        df = q.caseload_page(
                            engine, scope, filters, rules, offset=0, limit=CASELOAD_PAGE_SIZE
                        )
                        total = int(df["total_rows"].iloc[0]) if len(df) else 0
                    else:
                        total = q.flag_counts(engine, scope, filters, rules)["all"]
                    dt = (time.perf_counter_ns() - t0) / 1e6
                if i < 3:
                    if i == 0:
                        plans[name] = [{"viewer": who, "flag": flag, "stmts": list(stmts)}]
                    continue
                ms.append(dt)
                rows.append(total)
                by_flag[flag or "none"].append(dt)
            cases[name] = {
                **stats(ms),
                "matching_rows_median": statistics.median(rows) if rows else None,
                "by_flag_median_ms": {k: round(statistics.median(v), 2) for k, v in by_flag.items()}
                if what == "page"
                else None,
            }
            say(
                f"caseload {name}: median {cases[name]['median_ms']:.1f} ms, p95 {cases[name]['p95_ms']:.1f} ms"
                f" ({cases[name]['matching_rows_median']:,.0f} matching rows, median)"
            )
    log.close()
    explained = explain(engine, {name: p[0]["stmts"] for name, p in plans.items()})
    return {
        "reps": reps,
        "page_size": CASELOAD_PAGE_SIZE,
        "clinics": len(clinic_ids),
        "therapists": len(therapist_ids),
        "cases": cases,
        "plans": {
            name: {
                "viewer": plans[name][0]["viewer"],
                "flag": plans[name][0]["flag"],
                "statements": explained[name],
            }
            for name in plans
        },
    }
