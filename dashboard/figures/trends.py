"""Outcome trends: one chart per measure with its baseline and clinically important change band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.common import BAND, MUTED, PRIMARY, SERIES, empty_figure, styled

NO_BASELINE = "No baseline recorded"
THRESHOLD_WORDS = {
    "published_mcid": "MCID",
    "detectable_change": "detectable change",
    "convention": "threshold (convention)",
}
SIDE_NAMES = {"": "", "left": "left", "right": "right", "both": "both"}


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
    height: int = 280,
) -> go.Figure:
    """Measurements of one measure over time.

    points: columns recorded_at, value and optionally side. measure: a catalog row (label, unit, better,
    min_value, max_value, mcid_abs, mcid_pct, threshold_kind). baseline: baseline_value and baseline_at from the
    episode summary, or None; a missing baseline is said in the chart and never taken from a later value.
    """
    title = str(measure["label"])
    baseline_value = (
        None
        if baseline is None or _missing(baseline.get("baseline_value"))
        else float(baseline["baseline_value"])
    )
    if points.empty:
        message = "No measurements in this date range"
        if baseline_value is None:
            message += f" · {NO_BASELINE.lower()}"
        return empty_figure(title, message, height=height)

    fig = go.Figure()
    unit = str(measure["unit"])
    sides = (
        points["side"].fillna("") if "side" in points else pd.Series([""] * len(points), index=points.index)
    )
    for i, side in enumerate(sorted(sides.unique())):
        part = points[sides == side]
        name = SIDE_NAMES.get(side, side) or "value"
        fig.add_trace(
            go.Scatter(
                x=part["recorded_at"],
                y=part["value"],
                mode="lines+markers",
                name=name,
                line={"color": SERIES[i % len(SERIES)] if side else PRIMARY, "width": 1.5},
                marker={"size": 8},
                hovertemplate=f"%{{x|%d %b %Y}}<br>%{{y:.1f}} {unit}<extra>{name}</extra>",
            )
        )

    threshold = effective_threshold(measure, baseline_value)
    if baseline_value is not None:
        if threshold is not None:
            word = THRESHOLD_WORDS.get(str(measure.get("threshold_kind")), "threshold")
            fig.add_hrect(
                y0=baseline_value - threshold,
                y1=baseline_value + threshold,
                fillcolor=BAND,
                line_width=0,
                layer="below",
                name="mcid_band",
            )
            fig.add_annotation(
                text=f"± {_fmt(threshold)} {unit} {word}",
                xref="paper",
                x=1,
                xanchor="right",
                y=baseline_value + threshold,
                yanchor="bottom",
                showarrow=False,
                font={"size": 10, "color": MUTED},
            )
        fig.add_hline(
            y=baseline_value,
            line={"color": MUTED, "dash": "dash", "width": 1},
            name="baseline",
        )
        fig.add_annotation(
            text=f"baseline {_fmt(baseline_value)}",
            xref="paper",
            x=0,
            xanchor="left",
            y=baseline_value,
            yanchor="bottom",
            showarrow=False,
            font={"size": 10, "color": MUTED},
        )
    else:
        fig.add_annotation(
            text=NO_BASELINE,
            xref="paper",
            yref="paper",
            x=0,
            y=1,
            xanchor="left",
            yanchor="top",
            showarrow=False,
            font={"size": 11, "color": "#8a5a00"},
            bgcolor="#fff3cd",
            name="no_baseline",
        )
        title += " · no baseline"

    fig.update_layout(title={"text": title})
    styled(fig, height=height, legend=bool(sides.ne("").any()))
    pad = (float(measure["max_value"]) - float(measure["min_value"])) * 0.04
    fig.update_yaxes(
        title={"text": y_axis_title(measure)},
        range=[float(measure["min_value"]) - pad, float(measure["max_value"]) + pad],
    )
    fig.update_xaxes(title={"text": "Date"}, type="date")
    return fig
