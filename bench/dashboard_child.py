"""The naive baseline, in a fresh process: `python -m bench.dashboard_child PARAMS_JSON RESULT_JSON`.

`pandas.read_sql` of the whole scores table, then filtering to one patient (and ordering as `patient_scores` does),
once per patient in `params["patients"]`. Each call is timed with its own peak RSS (the mark is reset before each
call, as bench.child does: it includes what was resident before, e.g. ~150 MB of interpreter and libraries).
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.child import peak_mb, reset_peak, rss_mb


def naive(params: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from warehouse.db import make_engine

    engine = make_engine(params["url"])
    calls = []
    for pid in params["patients"]:
        gc.collect()
        before = rss_mb()
        reset = reset_peak()
        t0 = time.perf_counter()
        df = pd.read_sql("SELECT * FROM scores", engine)
        t1 = time.perf_counter()
        one = df[df["patient_id"] == pid].sort_values(["measure", "recorded_at"])
        t2 = time.perf_counter()
        calls.append(
            {
                "patient_id": pid,
                "seconds": round(t2 - t0, 3),
                "read_seconds": round(t1 - t0, 3),
                "filter_seconds": round(t2 - t1, 3),
                "rows_read": len(df),
                "rows_kept": len(one),
                "peak_rss_mb": peak_mb(),
                "rss_before_mb": before,
                "peak_reset": reset,
            }
        )
        print(f"naive: {pid}: {t2 - t0:.1f} s, peak RSS {calls[-1]['peak_rss_mb']:,.0f} MB", file=sys.stderr)
        del df, one
    engine.dispose()
    return {"calls": calls}


def main(argv: list[str]) -> int:
    params_json, out_path = argv
    try:
        result = {"ok": True, **naive(json.loads(params_json))}
    except BaseException as exc:  # reported to the parent
        traceback.print_exc(file=sys.stderr)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
