# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise-type comparison
#
# Change in the primary outcome and the responder rate (reached the measure's MCID), with 95 % confidence
# intervals, for the episodes that received each exercise type. Reads only an export bundle
# (`python -m etl export --out BUNDLE`): run it as `python notebooks/exercise_type_comparison.py BUNDLE [MEASURE]`,
# or in Jupyter (jupytext) with `OUTCOMES_BUNDLE=BUNDLE`.
#
# Caveats: episodes receive several types, so the groups overlap; this is an observational comparison (no
# adjustment for baseline severity or adherence).

# %%
import json
import math
import os
import sys
from pathlib import Path

import pandas as pd


def bundle_path() -> Path:
    args = [a for a in sys.argv[1:] if not a.startswith("-") and not a.endswith(".json")]
    path = args[0] if args else os.environ.get("OUTCOMES_BUNDLE")
    if not path:
        raise SystemExit("usage: exercise_type_comparison.py BUNDLE [MEASURE]  (or set OUTCOMES_BUNDLE)")
    return Path(path)


def read_table(bundle: Path, name: str) -> pd.DataFrame:
    fmt = json.loads((bundle / "manifest.json").read_text())["format"]
    path = bundle / "data" / f"{name}.{fmt}"
    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


BUNDLE = bundle_path()
_extra = [a for a in sys.argv[2:] if not a.startswith("-") and not a.endswith(".json")]
MEASURE = _extra[0] if _extra else os.environ.get("OUTCOMES_MEASURE", "pain_leg")
manifest = json.loads((BUNDLE / "manifest.json").read_text())
print(f"bundle: {BUNDLE} (cohort {manifest['cohort']['name']!r}, dates {manifest['deidentification']['dates']})")

# %% [markdown]
# ## Exercise types received per episode (completed or partial sessions)

# %%
sessions = read_table(BUNDLE, "sessions")
received = (
    sessions[sessions["status"].isin(["completed", "partial"])][["episode_id", "exercise_type"]]
    .drop_duplicates()
    .sort_values(["exercise_type", "episode_id"])
)
outcome = read_table(BUNDLE, "episode_measure_summary")
outcome = outcome[(outcome["measure"] == MEASURE) & outcome["change"].notna()]
data = received.merge(outcome[["episode_id", "change", "improvement", "mcid_reached"]], on="episode_id")
print(f"{outcome['episode_id'].nunique()} episodes with a {MEASURE} baseline and follow-up")

# %% [markdown]
# ## Mean change (t interval) and responder rate (Wilson interval)

# %%
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}  # fmt: skip


def t_quantile(df: int) -> float:
    """97.5th percentile of Student's t (table, conservative between rows); normal beyond 120."""
    if df > 120:
        return 1.96
    return T975[min(k for k in T975 if k >= df)]


def mean_ci(x: pd.Series) -> tuple[float, float, float]:
    x = x.dropna()
    n = len(x)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    if n == 1:
        return (float(x.iloc[0]), math.nan, math.nan)
    half = t_quantile(n - 1) * x.std(ddof=1) / math.sqrt(n)
    return (float(x.mean()), float(x.mean() - half), float(x.mean() + half))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    if n == 0:
        return (math.nan, math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (p, centre - half, centre + half)


rows = []
for exercise_type, g in data.groupby("exercise_type", sort=True):
    mean, lo, hi = mean_ci(g["change"])
    known = g["mcid_reached"].dropna().astype(bool)
    rate, rlo, rhi = wilson(int(known.sum()), len(known))
    rows.append(
        {
            "exercise_type": exercise_type,
            "episodes": len(g),
            "mean_change": round(mean, 2),
            "change_ci95": f"{lo:.2f} to {hi:.2f}",
            "responders": int(known.sum()),
            "responder_rate": round(rate, 3),
            "responder_ci95": f"{rlo:.3f} to {rhi:.3f}",
        }
    )
comparison = pd.DataFrame(rows)
with pd.option_context("display.width", 160, "display.max_columns", 20):
    print(f"\n{MEASURE}: change (latest - baseline) and responders by exercise type received")
    print(comparison.to_string(index=False))

# %%
assert not comparison.empty, "no episode with follow-up in this bundle"
