"""One measured case, run in a fresh process: `python -m bench.child CASE PARAMS_JSON RESULT_JSON`.

Each case does its untimed set-up, resets the process's peak-RSS mark (`/proc/self/clear_refs`), runs the timed part
and writes a JSON result. Peak RSS is the high-water mark (VmHWM) from the reset to the end of the timed part, so it
includes what was already resident (interpreter, imported libraries) but nothing from set-up peaks. Heavy imports
happen inside each case, so the raw floor does not pay for pandas.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")  # as warehouse.db.make_engine


# --- memory -------------------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float | None:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024, 1)


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def measured(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn` timed, with the peak-RSS mark reset just before it."""
    base = rss_mb()
    reset = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    seconds = time.perf_counter() - t0
    cpu = (
        time.process_time() - c0
    )  # all threads of this process; less sensitive than seconds to a busy machine
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_mb(),
        "rss_before_mb": base,
        "peak_reset": reset,
        **out,
    }


# --- cases --------------------------------------------------------------------------------------------------------
def case_ours(p: dict[str, Any]) -> dict[str, Any]:
    """etl.load.load_file of the scores file into a migrated warehouse that already holds the patients.

    Three timed loads, one after the other: the first load; the same file again (same sha256: the batch is
    recognised and skipped); a re-export with the same rows but other bytes (the header's first name quoted),
    which runs the whole read/validate/merge path and finds 0 new rows. The summary refresh inside each load is
    timed by wrapping `etl.load.refresh_summaries` (it runs inside load_file's transaction, so its time is part
    of the load's seconds).
    """
    import shutil
    from datetime import date

    import etl.load as load
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade

    as_of = date.fromisoformat(p["as_of"])
    chunk = p.get("chunk_rows")  # None: the loader's default for the file's kind
    engine = make_engine(p["url"])
    upgrade(engine)
    pat = load.load_file(engine, p["patients"], as_of=as_of, chunk_rows=chunk)
    if pat.status not in ("loaded", "loaded_with_rejects"):
        raise RuntimeError(f"patients load failed: {pat.status} {pat.message}")

    summary_seconds: list[float] = []
    original = load.refresh_summaries

    def timed_refresh(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            summary_seconds.append(time.perf_counter() - t0)

    load.refresh_summaries = timed_refresh

    def run(path: str) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            summary_seconds.clear()
            r = load.load_file(engine, path, as_of=as_of, chunk_rows=chunk)
            if r.status == "failed":
                raise RuntimeError(f"load_file failed: {r.message}")
            out = r.as_json()
            out["loader_seconds"] = out.pop("seconds")
            out["summary_seconds"] = sum(summary_seconds)
            return out

        return go

    reexport = Path(p["workdir"]) / "scores-reexport.csv"
    with open(p["scores"], "rb") as src, reexport.open("wb") as dst:
        header = src.readline()
        dst.write(b'"' + header.replace(b",", b'",', 1))  # "patient_id",...: other bytes, same rows
        shutil.copyfileobj(src, dst, 1 << 20)
    result: dict[str, Any] = {}
    for part, path in (("first", p["scores"]), ("same_file", p["scores"]), ("reexport", str(reexport))):
        try:
            result[part] = measured(run(path))
        except Exception as exc:  # keep what the other loads measured
            traceback.print_exc(file=sys.stderr)
            result[part] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            if part == "first":
                raise
    engine.dispose()
    return result


def case_naive(p: dict[str, Any]) -> dict[str, Any]:
    """pandas.read_csv(path) + DataFrame.to_sql(...) with default settings (no chunksize, no method).

    SQLite: into a `sqlite3` connection, or (via=sqlalchemy) a SQLAlchemy engine; PostgreSQL: a SQLAlchemy engine.
    """

    def go() -> dict[str, Any]:
        import pandas as pd

        df = pd.read_csv(p["scores"])
        if p["backend"] == "sqlite" and p.get("via") == "sqlalchemy":
            from sqlalchemy import create_engine, event

            engine = create_engine(f"sqlite:///{p['db']}")
            event.listen(engine, "connect", lambda dbapi, _rec: [dbapi.execute(x) for x in SQLITE_PRAGMAS])
            df.to_sql("scores_naive", engine)
            engine.dispose()
        elif p["backend"] == "sqlite":
            import sqlite3

            con = sqlite3.connect(p["db"])
            for pragma in SQLITE_PRAGMAS:
                con.execute(pragma)
            df.to_sql("scores_naive", con)
            con.commit()
            con.close()
        else:
            from sqlalchemy import create_engine

            engine = create_engine(p["url"])
            df.to_sql("scores_naive", engine)
            engine.dispose()
        return {"rows": len(df)}

    import pandas  # noqa: F401  (imported before the reset, as in the other cases)
    import sqlalchemy  # noqa: F401

    return {"first": measured(go)}


def _csv_rows(path: str):
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        next(rows)
        for pid, rec, measure, value, side in rows:
            yield pid, rec, measure, float(value) if value else None, side


def case_floor(p: dict[str, Any]) -> dict[str, Any]:
    """sqlite3 executemany of the same rows (csv module, values as float) in one transaction, no validation.

    shape 'plain': a plain rowid table with the CSV's columns, no index. shape 'pk': our scores table's shape, the
    natural key (patient_id, measure, recorded_at, side) as primary key WITHOUT ROWID, plus batch_id and
    source_line.
    """
    import sqlite3

    con = sqlite3.connect(p["db"], isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        con.execute(pragma)
    if p["shape"] == "pk":
        con.execute(
            "CREATE TABLE scores_floor (patient_id TEXT NOT NULL, measure TEXT NOT NULL, recorded_at TEXT NOT NULL,"
            " side TEXT NOT NULL DEFAULT '', value REAL, batch_id INTEGER NOT NULL, source_line INTEGER NOT NULL,"
            " PRIMARY KEY (patient_id, measure, recorded_at, side)) WITHOUT ROWID"
        )
        sql = (
            "INSERT OR IGNORE INTO scores_floor (patient_id, recorded_at, measure, value, side, batch_id, "
            "source_line) VALUES (?, ?, ?, ?, ?, 1, ?)"
        )

        def rows():
            for line, row in enumerate(_csv_rows(p["scores"]), start=2):
                yield (*row, line)
    else:
        con.execute(
            "CREATE TABLE scores_floor (patient_id TEXT, recorded_at TEXT, measure TEXT, value REAL, side TEXT)"
        )
        sql = "INSERT INTO scores_floor VALUES (?, ?, ?, ?, ?)"

        def rows():
            return _csv_rows(p["scores"])

    def go() -> dict[str, Any]:
        con.execute("BEGIN")
        con.executemany(sql, rows())
        con.execute("COMMIT")
        (n,) = con.execute("SELECT count(*) FROM scores_floor").fetchone()
        return {"rows": n}

    out = {"first": measured(go)}
    con.close()
    return out


def case_copy(p: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL COPY of the CSV file, streamed in 1 MB blocks, into a plain table (psycopg cursor.copy)."""
    import psycopg

    conn = psycopg.connect(p["dsn"])
    conn.execute(
        "CREATE TABLE scores_copy (patient_id text, recorded_at text, measure text, value double precision,"
        " side text)"
    )
    conn.commit()

    def go() -> dict[str, Any]:
        with conn.cursor() as cur:
            with (
                open(p["scores"], "rb") as fh,
                cur.copy("COPY scores_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
            n = cur.rowcount
        conn.commit()
        return {"rows": n}

    out = {"first": measured(go)}
    conn.close()
    return out


CASES = {"ours": case_ours, "naive": case_naive, "floor": case_floor, "copy": case_copy}


def main(argv: list[str]) -> int:
    case, params_json, out_path = argv
    params = json.loads(params_json)
    try:
        result = {"ok": True, **CASES[case](params)}
    except BaseException as exc:  # reported to the parent, which goes on with the next case
        traceback.print_exc(file=sys.stderr)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
