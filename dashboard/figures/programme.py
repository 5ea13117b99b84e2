"""The exercise programme: what was prescribed when, and the dose done against the dose prescribed."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.common import PRIMARY, PRIMARY_LIGHT, SERIES, empty_figure, styled

DONE = ("completed", "partial")


def programme_timeline_figure(
    sessions: pd.DataFrame, type_labels: Mapping[str, str] | None = None, *, height: int | None = None
) -> go.Figure:
    """Each exercise on its own row, grouped by exercise type: filled markers done, open markers not done."""
    title = "Programme"
    if sessions.empty:
        return empty_figure(title, "No sessions in this date range", height=height or 260)
    type_labels = type_labels or {}
    df = sessions.copy()
    df["type_label"] = df["exercise_type"].map(
        lambda t: type_labels.get(t, str(t).replace("_", " ").capitalize())
    )
    order = df[["type_label", "exercise"]].drop_duplicates().sort_values(["type_label", "exercise"])
    fig = go.Figure()
    for i, (type_label, part) in enumerate(df.groupby("type_label", sort=True)):
        colour = SERIES[i % len(SERIES)]
        done = part["status"].isin(DONE)
        for is_done, sub in ((True, part[done]), (False, part[~done])):
            if sub.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=sub["session_date"],
                    y=sub["exercise"],
                    mode="markers",
                    name=type_label if is_done else f"{type_label} (not done)",
                    legendgroup=type_label,
                    showlegend=is_done,
                    marker={
                        "color": colour if is_done else "white",
                        "line": {"color": colour, "width": 1.5},
                        "size": 9,
                        "symbol": [("diamond" if s == "clinic" else "circle") for s in sub["setting"]],
                    },
                    customdata=sub[["setting", "status"]].to_numpy(),
                    hovertemplate="%{x|%d %b %Y}<br>%{y}<br>%{customdata[0]}, %{customdata[1]}<extra></extra>",
                )
            )
    rows = len(order)
    fig.update_layout(title={"text": title})
    styled(fig, height=height or max(220, 90 + 34 * rows))
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(order["exercise"])[::-1],
        title={"text": ""},
        automargin=True,
    )
    fig.update_xaxes(title={"text": "Date (◆ clinic, ● home; open = not done)"}, type="date")
    return fig


def weekly_dose(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per week: sets x reps and minutes done against prescribed (all settings)."""
    if sessions.empty:
        return pd.DataFrame({"week": [], "volume": [], "volume_rx": [], "minutes": [], "minutes_rx": []})
    df = sessions.copy()
    day = pd.to_datetime(df["session_date"])
    df["week"] = day - pd.to_timedelta(day.dt.weekday, unit="D")
    df["volume"] = df["sets"].fillna(0) * df["reps"].fillna(0)
    df["volume_rx"] = df["prescribed_sets"].fillna(0) * df["prescribed_reps"].fillna(0)
    df["minutes"] = df["duration_min"].fillna(0)
    df["minutes_rx"] = df["prescribed_min"].fillna(0)
    return df.groupby("week", as_index=False)[["volume", "volume_rx", "minutes", "minutes_rx"]].sum()


def weekly_dose_figure(sessions: pd.DataFrame, *, height: int = 360) -> go.Figure:
    title = "Dose per week: done vs prescribed"
    dose = weekly_dose(sessions)
    if dose.empty:
        return empty_figure(title, "No sessions in this date range", height=height)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=("Sets × reps", "Minutes")
    )
    for row, (done, rx, unit) in enumerate(
        (("volume", "volume_rx", "reps"), ("minutes", "minutes_rx", "min")), start=1
    ):
        fig.add_trace(
            go.Bar(
                x=dose["week"],
                y=dose[done],
                name="done",
                legendgroup="done",
                showlegend=row == 1,
                marker={"color": PRIMARY},
                hovertemplate=f"week of %{{x|%d %b}}<br>%{{y:.0f}} {unit} done<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=dose["week"],
                y=dose[rx],
                name="prescribed",
                legendgroup="prescribed",
                showlegend=row == 1,
                mode="markers+lines",
                line={"color": PRIMARY_LIGHT, "dash": "dot"},
                marker={"symbol": "line-ew-open", "size": 18, "line": {"width": 2, "color": "#555"}},
                hovertemplate=f"week of %{{x|%d %b}}<br>%{{y:.0f}} {unit} prescribed<extra></extra>",
            ),
            row=row,
            col=1,
        )
    fig.update_layout(title={"text": title}, bargap=0.3)
    styled(fig, height=height)
    fig.update_yaxes(title={"text": "sets × reps"}, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title={"text": "minutes"}, rangemode="tozero", row=2, col=1)
    fig.update_xaxes(type="date", tickformat="%d %b", dtick=7 * 24 * 3600 * 1000)
    fig.update_xaxes(title={"text": "Week starting"}, row=2, col=1)
    return fig
