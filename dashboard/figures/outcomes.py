"""Charts of the outcomes page: plain functions `DataFrame -> figure spec`, every title saying its n.

Specs are plain dicts (`common.spec`): building and validating a `go.Figure` cost ~15 ms per chart, about 0.1 s of
the filter-change callback's seven charts; the tests validate every spec by building a `go.Figure` from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.common import (
    BAD,
    BAND,
    GOOD,
    MUTED,
    PRIMARY,
    PRIMARY_LIGHT,
    WARN,
    FigureSpec,
    base_layout,
    empty_spec,
    spec,
)

NO_DATA = "No episodes match these filters"


def _err(df: pd.DataFrame, mean: str, lo: str, hi: str) -> dict[str, Any]:
    m = df[mean].astype(float)
    return {
        "type": "data",
        "symmetric": False,
        "array": (df[hi].astype(float) - m).fillna(0).tolist(),
        "arrayminus": (m - df[lo].astype(float)).fillna(0).tolist(),
        "color": MUTED,
        "thickness": 1.2,
        "width": 4,
    }


def forest(
    summary: pd.DataFrame, measures: dict[str, str], units: dict[str, str] | None = None
) -> FigureSpec:
    """Mean change with 95 % CI per exercise type, one panel per measure. `summary` is `type_summary`'s output
    (first row: all episodes)."""
    title = "Change from baseline by exercise type (mean, 95 % CI)"
    if summary.empty or int(summary["episodes"].iloc[0]) == 0:
        return empty_spec(title, NO_DATA, height=360)
    units = units or {}
    codes = list(measures)
    k = len(codes)
    gap = 0.04
    width = (1 - gap * (k - 1)) / k
    rows = summary.iloc[::-1]  # all episodes on top
    data, layout_axes = [], {}
    for i, code in enumerate(codes):
        ax = "" if i == 0 else str(i + 1)
        d = rows[rows[f"{code}_n"] > 0]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": d[f"{code}_mean"].tolist(),
                "y": d["group"].tolist(),
                "xaxis": f"x{ax}",
                "yaxis": "y",
                "marker": {"color": [MUTED if t == "" else PRIMARY for t in d["type"]], "size": 9},
                "error_x": _err(d, f"{code}_mean", f"{code}_lo", f"{code}_hi"),
                "customdata": np.column_stack([d[f"{code}_n"], d[f"{code}_lo"], d[f"{code}_hi"]]).tolist(),
                "hovertemplate": "%{y}: %{x:.2f} (95 % CI %{customdata[1]:.2f} to %{customdata[2]:.2f}), "
                "n=%{customdata[0]}<extra>" + measures[code] + "</extra>",
                "showlegend": False,
            }
        )
        lo = i * (width + gap)
        n_all = int(summary[f"{code}_n"].iloc[0])
        unit = f" ({units[code]})" if units.get(code) else ""
        layout_axes[f"xaxis{ax}"] = {
            "domain": [lo, lo + width],
            "title": {"text": f"{measures[code]}{unit}<br>n={n_all}", "font": {"size": 11}},
            "zeroline": True,
            "zerolinecolor": "#adb5bd",
            "gridcolor": "#e9ecef",
        }
    layout = base_layout(
        title + f" · n={int(summary['episodes'].iloc[0])} episodes", height=120 + 34 * len(rows), legend=False
    )
    layout.update(layout_axes)
    layout["margin"] = {"l": 150, "r": 16, "t": 46, "b": 70}
    layout["annotations"] = [
        {
            "text": "pain, numbness, ODI: lower is better · SLR: higher is better",
            "x": 1,
            "y": -0.01,
            "xref": "paper",
            "yref": "paper",
            "yanchor": "top",
            "xanchor": "right",
            "yshift": -48,
            "showarrow": False,
            "font": {"size": 10, "color": MUTED},
        }
    ]
    return spec(data, layout)


def responder_bars(summary: pd.DataFrame, measure: str = "pain_leg", label: str = "Leg pain") -> FigureSpec:
    """Responder rate per type, among all starters (ITT) and among completers, with Wilson 95 % CIs."""
    title = f"{label}: MCID reached (Wilson 95 % CI)"
    if summary.empty or int(summary[f"{measure}_itt_n"].sum()) == 0:
        return empty_spec(title, NO_DATA)
    data = []
    for kind, name, color in (
        ("itt", "All starters (ITT)", PRIMARY),
        ("completers", "Completers", PRIMARY_LIGHT),
    ):
        rate = summary[f"{measure}_{kind}_rate"] * 100
        d = pd.DataFrame(
            {
                "m": rate,
                "lo": summary[f"{measure}_{kind}_lo"] * 100,
                "hi": summary[f"{measure}_{kind}_hi"] * 100,
            }
        )
        data.append(
            {
                "type": "bar",
                "name": name,
                "x": summary["group"].tolist(),
                "y": rate.round(1).tolist(),
                "marker": {"color": color},
                "error_y": {k: v for k, v in _err(d, "m", "lo", "hi").items() if k != "width"}
                | {"type": "data"},
                "text": [f"n={int(n)}" for n in summary[f"{measure}_{kind}_n"]],
                "textposition": "outside",
                "customdata": summary[f"{measure}_{kind}_k"].tolist(),
                "hovertemplate": "%{x}: %{y:.0f} % (%{customdata} of %{text})<extra>" + name + "</extra>",
            }
        )
    ceiling = int(summary[f"{measure}_ceiling"].iloc[0])
    n_itt = int(summary[f"{measure}_itt_n"].iloc[0])
    layout = base_layout(
        f"{title} · n={n_itt} starters; {ceiling} at the ceiling counted apart",
        height=340,
        barmode="group",
        yaxis={"title": {"text": "% of episodes"}, "range": [0, 110]},
    )
    return spec(data, layout)


def adherence_scatter(points: pd.DataFrame, trend: tuple[float, float] | None, n_total: int) -> FigureSpec:
    """Home adherence vs leg-pain change, one dot per episode, with the least-squares line."""
    title = "Adherence vs leg-pain change"
    if points.empty:
        return empty_spec(title, NO_DATA)
    data = [
        {
            "type": "scattergl",
            "mode": "markers",
            "name": "Episodes",
            "x": (points["adherence"] * 100).round(1).tolist(),
            "y": points["change"].tolist(),
            "marker": {"color": PRIMARY, "opacity": 0.35, "size": 5},
            "hovertemplate": "adherence %{x:.0f} %, change %{y:.1f}<extra></extra>",
        }
    ]
    if trend is not None:
        slope, intercept = trend
        xs = [0.0, float(points["adherence"].max())]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"Trend: {slope / 10:+.2f} points per 10 % adherence",
                "x": [x * 100 for x in xs],
                "y": [intercept + slope * x for x in xs],
                "line": {"color": BAD, "width": 2},
            }
        )
    shown = f"{len(points)} shown of " if len(points) < n_total else ""
    layout = base_layout(
        f"{title} · n={shown}{n_total}",
        height=340,
        xaxis={"title": {"text": "home exercises done / scheduled (%)"}},
        yaxis={"title": {"text": "leg pain change (points, lower is better)"}},
    )
    return spec(data, layout)


def monthly(trend: pd.DataFrame, label: str = "Leg pain") -> FigureSpec:
    title = f"{label} by month of episode start"
    if trend.empty:
        return empty_spec(title, NO_DATA)
    x = [pd.Timestamp(m).strftime("%Y-%m-01") for m in trend["month"]]
    data = [
        {
            "type": "scatter",
            "x": x + x[::-1],
            "y": trend["hi"].tolist() + trend["lo"].tolist()[::-1],
            "fill": "toself",
            "fillcolor": BAND,
            "line": {"width": 0},
            "name": "95 % CI",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Mean change",
            "x": x,
            "y": trend["mean"].tolist(),
            "line": {"color": PRIMARY},
            "customdata": trend["n"].tolist(),
            "hovertemplate": "%{x|%b %Y}: %{y:.2f} (n=%{customdata})<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Responders (ITT, %)",
            "x": x,
            "y": (trend["responder_rate"] * 100).round(1).tolist(),
            "yaxis": "y2",
            "line": {"color": WARN, "dash": "dot"},
            "customdata": trend["responder_n"].tolist(),
            "hovertemplate": "%{x|%b %Y}: %{y:.0f} % of %{customdata}<extra></extra>",
        },
    ]
    layout = base_layout(
        f"{title} · n={int(trend['episodes'].sum())} episodes",
        height=320,
        yaxis={"title": {"text": "mean change (points)"}},
        yaxis2={"overlaying": "y", "side": "right", "range": [0, 100], "title": {"text": "% responders"}},
    )
    return spec(data, layout)


def dose_response(df: pd.DataFrame, label: str = "Leg pain") -> FigureSpec:
    title = f"{label} change by home adherence"
    if df.empty or int(df["n"].sum()) == 0:
        return empty_spec(title, NO_DATA)
    data = [
        {
            "type": "bar",
            "x": df["band"].tolist(),
            "y": df["mean"].tolist(),
            "marker": {"color": [GOOD if b.startswith("≥") else PRIMARY for b in df["band"]]},
            "error_y": _err(df, "mean", "lo", "hi"),
            "text": [f"n={int(n)}" for n in df["n"]],
            "textposition": "outside",
            "hovertemplate": "%{x}: %{y:.2f} (%{text})<extra></extra>",
        }
    ]
    layout = base_layout(
        f"{title} · n={int(df['n'].sum())}",
        height=320,
        legend=False,
        yaxis={"title": {"text": "mean change (points, 95 % CI)"}},
    )
    return spec(data, layout)


def adjusted_forest(df: pd.DataFrame, measure: str, label: str) -> FigureSpec:
    """Unadjusted and adjusted mean change per type for one measure."""
    title = f"{label}: unadjusted vs risk-adjusted mean change"
    d = df[df["measure"] == measure]
    if d.empty:
        return empty_spec(title, NO_DATA)
    data = []
    for prefix, name, color, shift in (
        ("unadjusted", "Unadjusted", MUTED, -0.15),
        ("adjusted", "Adjusted", PRIMARY, 0.15),
    ):
        ys = np.arange(len(d)) + shift
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": d[prefix].tolist(),
                "y": ys.tolist(),
                "marker": {"color": color, "size": 8},
                "error_x": _err(d, prefix, f"{prefix}_lo", f"{prefix}_hi"),
                "customdata": np.column_stack(
                    [d["label"], d["n"] if prefix == "unadjusted" else d["n_model"]]
                ).tolist(),
                "hovertemplate": "%{customdata[0]}: %{x:.2f} (n=%{customdata[1]})<extra>" + name + "</extra>",
            }
        )
    n = int(d["n_model"].max()) if len(d) else 0
    layout = base_layout(
        f"{title} · model n={n}",
        height=110 + 40 * len(d),
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(d))),
            "ticktext": [f"{lbl} (n={int(k)})" for lbl, k in zip(d["label"], d["n"], strict=True)],
        },
        xaxis={"title": {"text": "mean change (95 % CI)"}, "zeroline": True},
    )
    return spec(data, layout)


def dropout(df: pd.DataFrame, n_starters: int) -> FigureSpec:
    title = "Drop-out by week of last activity"
    if n_starters == 0:
        return empty_spec(title, NO_DATA)
    data = [
        {
            "type": "bar",
            "name": "Drop-outs",
            "x": df["week"].tolist(),
            "y": df["dropouts"].tolist(),
            "marker": {"color": BAD},
            "hovertemplate": "week %{x}: %{y} dropped out<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Not dropped out (%)",
            "x": df["week"].tolist(),
            "y": df["remaining_pct"].round(1).tolist(),
            "yaxis": "y2",
            "line": {"color": PRIMARY},
        },
    ]
    layout = base_layout(
        f"{title} · n={n_starters} starters, {int(df['dropouts'].sum())} dropped out",
        height=300,
        xaxis={"title": {"text": "week of episode (12 = 12 or later)"}, "dtick": 1},
        yaxis={"title": {"text": "episodes"}},
        yaxis2={"overlaying": "y", "side": "right", "range": [0, 100], "title": {"text": "%"}},
    )
    return spec(data, layout)


def recovery(bands: pd.DataFrame, label: str, band_label: str, n_episodes: int, unit: str = "") -> FigureSpec:
    title = f"Expected recovery: {label}, baseline {band_label}"
    if bands.empty:
        return empty_spec(
            f"{title} · n={n_episodes} past episodes", "Fewer than 5 past values per week in this band"
        )
    x = bands["week"].tolist()
    data = [
        {
            "type": "scatter",
            "x": x + x[::-1],
            "y": bands["p75"].tolist() + bands["p25"].tolist()[::-1],
            "fill": "toself",
            "fillcolor": BAND,
            "line": {"width": 0},
            "name": "25th-75th percentile",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Median",
            "x": x,
            "y": bands["p50"].tolist(),
            "line": {"color": PRIMARY},
            "customdata": np.column_stack([bands["p25"], bands["p75"], bands["n"]]).tolist(),
            "hovertemplate": "week %{x}: median %{y:.1f} (IQR %{customdata[0]:.1f}-%{customdata[1]:.1f}, "
            "n=%{customdata[2]})<extra></extra>",
        },
    ]
    layout = base_layout(
        f"{title} · n={n_episodes} past episodes",
        height=320,
        xaxis={"title": {"text": "weeks since episode start"}, "dtick": 2},
        yaxis={"title": {"text": f"{label}{f' ({unit})' if unit else ''}"}},
    )
    return spec(data, layout)


def titles(figs: Sequence[FigureSpec | go.Figure]) -> list[str]:
    """The title text of each figure (tests check that each says its n)."""
    return [str(f["layout"]["title"]["text"] if isinstance(f, dict) else f.layout.title.text) for f in figs]
