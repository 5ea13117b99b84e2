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
# # Dose-response: improvement by home-exercise adherence
#
# Improvement (positive = better) in the primary outcome by adherence band, with 95 % confidence intervals, and
# the slope of improvement on adherence. Bands follow the project's conventions: below 60 % "low", 60-80 %
# "medium", at least 80 % "adherent" (configurable below). Reads only an export bundle: run it as
# `python notebooks/dose_response.py BUNDLE [MEASURE]`, or in Jupyter with `OUTCOMES_BUNDLE=BUNDLE`.
#
# Caveat: adherence is not randomised; people who improve may also keep exercising (reverse causation).

# %%
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

LOW, ADHERENT = 0.60, 0.80


def bundle_path() -> Path:
    args = [a for a in sys.argv[1:] if not a.startswith("-") and not a.endswith(".json")]
    path = args[0] if args else os.environ.get("OUTCOMES_BUNDLE")
    if not path:
        raise SystemExit("usage: dose_response.py BUNDLE [MEASURE]  (or set OUTCOMES_BUNDLE)")
    return Path(path)


def read_table(bundle: Path, name: str) -> pd.DataFrame:
    fmt = json.loads((bundle / "manifest.json").read_text())["format"]
    path = bundle / "data" / f"{name}.{fmt}"
    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


BUNDLE = bundle_path()
_extra = [a for a in sys.argv[2:] if not a.startswith("-") and not a.endswith(".json")]
MEASURE = _extra[0] if _extra else os.environ.get("OUTCOMES_MEASURE", "pain_leg")

# %% [markdown]
# ## One row per episode: adherence and improvement

# %%
summary = read_table(BUNDLE, "episode_summary")[["episode_id", "adherence"]]
outcome = read_table(BUNDLE, "episode_measure_summary")
outcome = outcome[(outcome["measure"] == MEASURE) & outcome["improvement"].notna()]
data = summary.merge(outcome[["episode_id", "improvement", "mcid_reached"]], on="episode_id").dropna(
    subset=["adherence"]
)
data["band"] = pd.cut(
    data["adherence"],
    bins=[-np.inf, LOW, ADHERENT, np.inf],
    right=False,
    labels=[f"low (<{LOW:.0%})", f"medium ({LOW:.0%}-{ADHERENT:.0%})", f"adherent (>={ADHERENT:.0%})"],
)
print(f"{len(data)} episodes with adherence and {MEASURE} follow-up")

# %% [markdown]
# ## Improvement by adherence band (normal-approximation 95 % CI)

# %%
rows = []
for band, g in data.groupby("band", observed=False):
    n = len(g)
    mean = g["improvement"].mean() if n else math.nan
    half = 1.96 * g["improvement"].std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    known = g["mcid_reached"].dropna().astype(bool)
    rows.append(
        {
            "adherence_band": str(band),
            "episodes": n,
            "median_adherence": round(g["adherence"].median(), 3) if n else math.nan,
            "mean_improvement": round(mean, 2),
            "ci95": f"{mean - half:.2f} to {mean + half:.2f}",
            "responder_rate": round(known.mean(), 3) if len(known) else math.nan,
        }
    )
bands = pd.DataFrame(rows)
with pd.option_context("display.width", 160, "display.max_columns", 20):
    print(bands.to_string(index=False))

# %% [markdown]
# ## Slope: improvement per 10 percentage points of adherence (OLS, 95 % CI)

# %%
x, y = data["adherence"].to_numpy(float), data["improvement"].to_numpy(float)
if len(data) >= 3 and np.ptp(x) > 0:
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = math.sqrt((resid @ resid) / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean())))
    print(
        f"{MEASURE}: {slope / 10:+.2f} points per 10 percentage points of adherence "
        f"(95 % CI {(slope - 1.96 * se) / 10:+.2f} to {(slope + 1.96 * se) / 10:+.2f}; n = {len(x)})"
    )
else:
    print("too few episodes for a slope")

# %%
assert bands["episodes"].sum() == len(data)
