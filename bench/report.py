"""The printed tables: per size, every case with seconds, rows/s and peak RSS; then the ratios against the targets."""

from __future__ import annotations

from typing import Any

# (label, result key inside the case) per case, in print order
SQLITE_ROWS = [
    ("sqlite.ours", "first", "ours: etl load_file, validated"),
    ("sqlite.ours", "same_file", "ours: same file again (sha256 match)"),
    ("sqlite.ours", "reexport", "ours: re-export, same rows (0 new)"),
    ("sqlite.naive", "first", "naive: read_csv + to_sql (sqlite3 conn)"),
    ("sqlite.naive_sa", "first", "naive: read_csv + to_sql (SQLAlchemy)"),
    ("sqlite.floor", "first", "raw floor: executemany, plain table"),
    ("sqlite.floor_pk", "first", "raw floor: executemany, PK WITHOUT ROWID"),
]
PG_ROWS = [
    ("pg.ours", "first", "ours: etl load_file, validated"),
    ("pg.ours", "same_file", "ours: same file again (sha256 match)"),
    ("pg.ours", "reexport", "ours: re-export, same rows (0 new)"),
    ("pg.naive", "first", "naive: read_csv + to_sql (SQLAlchemy)"),
    ("pg.copy", "first", "raw floor: COPY, plain table"),
]
# Figures the issue measured on its machine, for orientation (seconds, peak RSS MB)
ISSUE_REFERENCE = {
    # The issue's naive figures match `to_sql` through a SQLAlchemy engine here (docs/benchmarks.md), not the
    # plain sqlite3 connection, so they are printed against that row.
    (1_000_000, "sqlite.naive_sa"): "7.8 s, 1270 MB",
    (10_000_000, "sqlite.naive_sa"): "87 s, 11500 MB",
    (1_000_000, "sqlite.floor"): "1.6 s",
    (10_000_000, "sqlite.floor"): "16 s, 18 MB",
    (1_000_000, "pg.copy"): "0.66 s",
    (10_000_000, "pg.copy"): "6.7 s, 38 MB",
    (1_000_000, "pg.naive"): "13.7 s",
}
RSS_LIMIT_MB = 300


def _timing(cases: dict[str, Any], name: str, part: str = "first") -> dict[str, Any] | None:
    case = cases.get(name)
    if not case or not case.get("ok"):
        return None
    return case.get(part)


def seconds(cases: dict[str, Any], name: str, part: str = "first") -> float | None:
    t = _timing(cases, name, part)
    return None if t is None else t["seconds"]


def ratios(size: dict[str, Any]) -> list[dict[str, Any]]:
    """Each: label, value, unit ('x' or 'MB'), target text, status PASS/MISS/- ."""
    c = size["cases"]
    out: list[dict[str, Any]] = []

    def ratio(label: str, num: float | None, den: float | None, op: str | None, bound: float | None) -> None:
        if num is None or den is None or den <= 0:
            if any(n in c for n in ("sqlite.ours", "pg.ours")):
                out.append({"label": label, "value": None, "unit": "x", "target": _target(op, bound, "x")})
            return
        value = num / den
        status = "-" if op is None else ("PASS" if _holds(value, op, bound) else "MISS")
        out.append(
            {"label": label, "value": value, "unit": "x", "target": _target(op, bound, "x"), "status": status}
        )

    ours = seconds(c, "sqlite.ours")
    # The target is against `to_sql` through a SQLAlchemy engine: the project's stack, and the variant whose time
    # and memory match the issue's reference (7.8 s / 1.27 GB at 1M). The same call on a plain sqlite3 connection
    # is printed next to it, without a target (see docs/benchmarks.md, "The naive baseline").
    if "sqlite.ours" in c or "sqlite.naive_sa" in c:
        ratio(
            "SQLite: x faster than naive (SQLAlchemy / ours)",
            seconds(c, "sqlite.naive_sa"),
            ours,
            ">=",
            3,
        )
    if "sqlite.naive" in c:
        ratio("SQLite: x faster than naive via sqlite3 conn", seconds(c, "sqlite.naive"), ours, None, None)
    if "sqlite.ours" in c or "sqlite.floor" in c:
        ratio("SQLite: x the raw floor (ours / floor)", ours, seconds(c, "sqlite.floor"), "<=", 2)
    # For reading the figures only: the targets above are checked on the whole load, marts included.
    ours_facts = _without_refresh(c, "sqlite.ours")
    if ours_facts is not None and "sqlite.naive_sa" in c:
        ratio(
            "SQLite, facts only (no mart refresh): x naive",
            seconds(c, "sqlite.naive_sa"),
            ours_facts,
            None,
            None,
        )
    if ours_facts is not None and "sqlite.floor" in c:
        ratio(
            "SQLite, facts only (no mart refresh): x floor",
            ours_facts,
            seconds(c, "sqlite.floor"),
            None,
            None,
        )
    if "sqlite.floor_pk" in c:
        ratio("SQLite: x the PK floor (ours / PK floor)", ours, seconds(c, "sqlite.floor_pk"), None, None)
    t = _timing(c, "sqlite.ours")
    if t is not None:
        rss = max((_timing(c, "sqlite.ours", p) or {}).get("peak_rss_mb") or 0 for p in ("first", "reexport"))
        out.append(
            {
                "label": "SQLite: ours peak RSS (first load, re-export)",
                "value": rss,
                "unit": "MB",
                "target": f"< {RSS_LIMIT_MB} MB",
                "status": "PASS" if rss < RSS_LIMIT_MB else "MISS",
            }
        )
    if "pg.ours" in c or "pg.naive" in c:
        pg_ours = seconds(c, "pg.ours")
        ratio("PostgreSQL: x faster than naive (to_sql / ours)", seconds(c, "pg.naive"), pg_ours, ">=", 5)
        ratio("PostgreSQL: x the COPY floor (ours / COPY)", pg_ours, seconds(c, "pg.copy"), None, None)
        pg_facts = _without_refresh(c, "pg.ours")
        if pg_facts is not None:
            ratio(
                "PostgreSQL, facts only (no mart refresh): x naive",
                seconds(c, "pg.naive"),
                pg_facts,
                None,
                None,
            )
        t = _timing(c, "pg.ours")
        if t is not None:
            rss = t.get("peak_rss_mb") or 0
            out.append(
                {
                    "label": "PostgreSQL: ours client peak RSS",
                    "value": rss,
                    "unit": "MB",
                    "target": f"< {RSS_LIMIT_MB} MB",
                    "status": "PASS" if rss < RSS_LIMIT_MB else "MISS",
                }
            )
    return out


def _without_refresh(cases: dict[str, Any], name: str) -> float | None:
    """The first load's seconds less the summary refresh inside it (both measured in the same run)."""
    t = _timing(cases, name)
    if t is None or t.get("summary_seconds") is None:
        return None
    return t["seconds"] - t["summary_seconds"]


def _holds(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def _target(op: str | None, bound: float | None, unit: str) -> str:
    return "-" if op is None else f"{op} {bound:g}{unit}"


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}")


def case_lines(size: dict[str, Any], rows_spec, title: str) -> list[str]:
    n = size["rows"]
    c = size["cases"]
    names = {name for name, _, _ in rows_spec}
    if not names & set(c):
        return []
    lines = [title, f"  {'case':<42} {'seconds':>9} {'rows/s':>11} {'peak RSS':>10}  notes"]
    for name, part, label in rows_spec:
        case = c.get(name)
        if case is None or (part != "first" and not case.get("ok")):
            continue
        if not case.get("ok"):
            runs = f"{case['runs_failed']} of {case['runs_total']} runs: " if "runs_failed" in case else ""
            lines.append(f"  {label:<42} {'FAILED':>9} {'':>11} {'':>10}  {runs}{case.get('error', '')[:90]}")
            continue
        t = case.get(part)
        if t is None:
            continue
        if "error" in t:
            lines.append(f"  {label:<42} {'FAILED':>9} {'':>11} {'':>10}  {t['error'][:90]}")
            continue
        rate = n / t["seconds"] if t["seconds"] > 0 and part != "same_file" else None
        rss = t.get("peak_rss_mb")
        notes = []
        if part == "first" and len(case.get("runs", ())) > 1:
            notes.append(
                f"median of {len(case['runs'])} runs ({min(case['runs']):.2f}-{max(case['runs']):.2f} s)"
            )
        if t.get("cpu_seconds") is not None and part != "same_file":
            notes.append(f"CPU {t['cpu_seconds']:.1f} s")
        if "summary_seconds" in t and t.get("summary_seconds"):
            share = t["summary_seconds"] / t["seconds"] if t["seconds"] else 0
            notes.append(f"summary refresh {t['summary_seconds']:.2f} s ({share:.0%})")
        if "rows_inserted" in t:
            notes.append(
                f"{t['rows_inserted']:,} new, {t['rows_unchanged']:,} unchanged, {t['rows_rejected']:,} rejected"
            )
        if t.get("rss_before_mb") is not None and part == "first":
            notes.append(f"RSS before {t['rss_before_mb']:,.0f} MB")
        if part == "first" and (ref := ISSUE_REFERENCE.get((n, name))):
            notes.append(f"issue ref: {ref}")
        lines.append(
            f"  {label:<42} {_fmt_s(t['seconds']):>9} {'-' if rate is None else f'{rate:,.0f}':>11} "
            f"{'-' if rss is None else f'{rss:,.0f} MB':>10}  {'; '.join(notes)}"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        f"Load benchmark {results['date']}  ({m['cpu_count']} CPUs {m.get('cpu_model', '')}, "
        f"{m.get('mem_total_gb', '?')} GB RAM, Python {m['python']}, SQLite {m['sqlite']}"
        + (f", PostgreSQL {m['postgresql']}" if m.get("postgresql") else "")
        + ")",
        f"load average before {m['load_before']}, after {m.get('load_after', '?')}; commit {m.get('git_commit')}"
        + (" + uncommitted changes in etl/warehouse" if m.get("uncommitted_changes") else ""),
    ]
    for size in results["sizes"]:
        n = size["rows"]
        out.append("")
        out.append(
            f"== {n:,} score rows ({size.get('input_mb', 0):,.0f} MB CSV, {size.get('patients', 0):,} patients)"
        )
        out += case_lines(size, SQLITE_ROWS, "SQLite (WAL, synchronous=NORMAL)")
        pg = case_lines(size, PG_ROWS, "PostgreSQL (local throwaway server, fsync=off)")
        if pg:
            out += pg
        elif size.get("pg_skipped"):
            out.append(f"PostgreSQL: skipped ({size['pg_skipped']})")
        rs = size.get("ratios") or []
        if rs:
            out.append(f"  {'ratio / figure':<50} {'measured':>10} {'target':>10}  result")
            for r in rs:
                v = r["value"]
                shown = "-" if v is None else (f"{v:.2f}x" if r["unit"] == "x" else f"{v:,.0f} MB")
                status = r.get("status", "n/a (case failed or skipped)" if v is None else "-")
                out.append(f"  {r['label']:<50} {shown:>10} {r['target']:>10}  {status}")
    return "\n".join(out)
