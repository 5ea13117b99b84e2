"""Outcome trends: one chart per measure with its baseline and clinically important change band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dashboard.figures.common import (
    BAND,
    MUTED,
    PRIMARY,
    SERIES,
    FigureSpec,
    axis,
    base_layout,
    date_range,
    dates,
    empty_spec,
    numbers,
    spec,
)

NO_BASELINE = "No baseline recorded"
THRESHOLD_WORDS = {
    "published_mcid": "MCID",
    "detectable_change": "detectable change",
    "convention": "threshold (convention)",
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def effective_threshold(measure: Mapping[str, Any], baseline: float | None) -> float | None:
    """The change that matters from this baseline: the absolute MCID, or the percent of baseline if smaller."""
    mcid_abs = None if _missing(measure.get("mcid_abs")) else float(measure["mcid_abs"])
    mcid_pct = None if _missing(measure.get("mcid_pct")) else float(measure["mcid_pct"])
    candidates = []
    if mcid_abs is not None:
        candidates.append(mcid_abs)
    if mcid_pct is not None and baseline is not None and baseline > 0:
        candidates.append(abs(baseline) * mcid_pct / 100)
    return min(candidates) if candidates else None


def better_text(measure: Mapping[str, Any]) -> str:
    return "lower is better ↓" if measure["better"] == "lower" else "higher is better ↑"


def y_axis_title(measure: Mapping[str, Any]) -> str:
    return f"{measure['unit']} · {better_text(measure)}"


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def trend_figure(
    points: pd.DataFrame,
    measure: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    *,
    x_range: tuple[Any, Any] | None = None,
    height: int = 280,
) -> FigureSpec:
    """Measurements of one measure over time.

    points: columns recorded_at, value and optionally side. measure: a catalog row (label, unit, better,
    min_value, max_value, mcid_abs, mcid_pct, threshold_kind). baseline: baseline_value and baseline_at from the
    episode summary, or None; a missing baseline is said in the chart and never taken from a later value.
    x_range: the page's date range, so every chart of the page shares one time axis.
    """
    title = str(measure["label"])
    base_value = baseline.get("baseline_value") if baseline is not None else None
    baseline_value = None if _missing(base_value) else float(base_value)
    if points.empty:
        message = "No measurements in this date range"
        if baseline_value is None:
            message += f" · {NO_BASELINE.lower()}"
        return empty_spec(title, message, height=height)

    unit = str(measure["unit"])
    sides = points["side"].fillna("") if "side" in points else pd.Series("", index=points.index)
    data = []
    for i, side in enumerate(sorted(sides.unique())):
        part = points[sides == side]
        name = side or "side not given"
        data.append(
            {
                "type": "scatter",
                "x": dates(part["recorded_at"]),
                "y": numbers(part["value"]),
                "mode": "lines+markers",
                "name": name,
                "line": {"color": SERIES[i % len(SERIES)] if side else PRIMARY, "width": 1.5},
                "marker": {"size": 8},
                "hovertemplate": f"%{{x|%d %b %Y}}<br>%{{y:.1f}} {unit}<extra>{name}</extra>",
            }
        )

    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    note = {"xref": "paper", "showarrow": False, "font": {"size": 10, "color": MUTED}}
    threshold = effective_threshold(measure, baseline_value)
    if baseline_value is not None:
        if threshold is not None:
            word = THRESHOLD_WORDS.get(str(measure.get("threshold_kind")), "threshold")
            shapes.append(
                {
                    "type": "rect",
                    "name": "mcid_band",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": baseline_value - threshold,
                    "y1": baseline_value + threshold,
                    "fillcolor": BAND,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
            annotations.append(
                {
                    **note,
                    "text": f"± {_fmt(threshold)} {unit} {word}",
                    "x": 1,
                    "xanchor": "right",
                    "y": baseline_value + threshold,
                    "yanchor": "bottom",
                }
            )
        shapes.append(
            {
                "type": "line",
                "name": "baseline",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": baseline_value,
                "y1": baseline_value,
                "line": {"color": MUTED, "dash": "dash", "width": 1},
            }
        )
        annotations.append(
            {
                **note,
                "text": f"baseline {_fmt(baseline_value)}",
                "x": 0,
                "xanchor": "left",
                "y": baseline_value,
                "yanchor": "bottom",
            }
        )
    else:
        annotations.append(
            {
                "name": "no_baseline",
                "text": NO_BASELINE,
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1,
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": 11, "color": "#8a5a00"},
                "bgcolor": "#fff3cd",
            }
        )
        title += " · no baseline"

    lo, hi = float(measure["min_value"]), float(measure["max_value"])
    pad = (hi - lo) * 0.04
    layout = base_layout(
        title,
        height=height,
        legend=bool(sides.ne("").any()),
        shapes=shapes,
        annotations=annotations,
        xaxis=axis("Date", type="date", **date_range(x_range)),
        yaxis=axis(y_axis_title(measure), range=[lo - pad, hi + pad]),
    )
    return spec(data, layout)
