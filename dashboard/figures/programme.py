"""The exercise programme: what was prescribed when, and the dose done against the dose prescribed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from dashboard.figures.common import (
    PRIMARY,
    PRIMARY_LIGHT,
    SERIES,
    WEEK_MS,
    FigureSpec,
    axis,
    base_layout,
    date_range,
    dates,
    day_of,
    empty_spec,
    spec,
)

DONE = ("completed", "partial")


def programme_timeline_figure(
    sessions: pd.DataFrame,
    type_labels: Mapping[str, str] | None = None,
    *,
    x_range: tuple[Any, Any] | None = None,
    height: int | None = None,
) -> FigureSpec:
    """Each exercise on its own row, grouped by exercise type: filled markers done, open markers not done."""
    title = "Programme"
    if sessions.empty:
        return empty_spec(title, "No sessions in this date range", height=height or 260)
    type_labels = type_labels or {}
    # Plain Python over the patient's ~100 rows (a pandas groupby per type cost ~20 ms of the sessions callback).
    cols = {
        c: sessions[c].tolist() for c in ("session_date", "exercise", "exercise_type", "setting", "status")
    }
    label_of = {
        t: type_labels.get(t, str(t).replace("_", " ").capitalize()) for t in set(cols["exercise_type"])
    }
    rows = [
        (label_of[t], d, ex, setting, status)
        for d, ex, t, setting, status in zip(
            cols["session_date"],
            cols["exercise"],
            cols["exercise_type"],
            cols["setting"],
            cols["status"],
            strict=True,
        )
    ]
    order = sorted({(type_label, ex) for type_label, _, ex, _, _ in rows})
    data: list[dict[str, Any]] = []
    for i, type_label in enumerate(sorted({r[0] for r in rows})):
        colour = SERIES[i % len(SERIES)]
        part = [r for r in rows if r[0] == type_label]
        for is_done in (True, False):
            sub = [r for r in part if (r[4] in DONE) is is_done]
            if not sub:
                continue
            data.append(
                {
                    "type": "scatter",
                    "x": dates([r[1] for r in sub]),
                    "y": [r[2] for r in sub],
                    "mode": "markers",
                    "name": type_label if is_done else f"{type_label} (not done)",
                    "legendgroup": type_label,
                    "showlegend": is_done,
                    "marker": {
                        "color": colour if is_done else "white",
                        "line": {"color": colour, "width": 1.5},
                        "size": 9,
                        "symbol": ["diamond" if r[3] == "clinic" else "circle" for r in sub],
                    },
                    "customdata": [[r[3], r[4]] for r in sub],
                    "hovertemplate": "%{x|%d %b %Y}<br>%{y}<br>%{customdata[0]}, %{customdata[1]}<extra></extra>",
                }
            )
    layout = base_layout(
        title,
        height=height or max(220, 100 + 30 * len(order)),
        yaxis=axis(None, categoryorder="array", categoryarray=[ex for _, ex in order][::-1], type="category"),
        xaxis=axis("Date (◆ clinic, ● home; open = not done)", type="date", **date_range(x_range)),
    )
    return spec(data, layout)


def _number(value: Any) -> float:
    return 0.0 if value is None or value != value else float(value)


def weekly_dose(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per week: sets x reps and minutes done against prescribed (all settings).

    Plain Python over the patient's rows (a pandas groupby cost ~5 ms of the sessions callback).
    """
    if sessions.empty:
        return pd.DataFrame({"week": [], "volume": [], "volume_rx": [], "minutes": [], "minutes_rx": []})
    names = (
        "session_date",
        "sets",
        "reps",
        "prescribed_sets",
        "prescribed_reps",
        "duration_min",
        "prescribed_min",
    )
    acc: dict[dt.date, tuple[list[float], list[float], list[float], list[float]]] = {}
    for d, sets, reps, rx_sets, rx_reps, minutes, rx_min in zip(
        *(sessions[c].tolist() for c in names), strict=True
    ):
        day = day_of(d)
        week = acc.setdefault(day - dt.timedelta(days=day.weekday()), ([], [], [], []))
        week[0].append(_number(sets) * _number(reps))
        week[1].append(_number(rx_sets) * _number(rx_reps))
        week[2].append(_number(minutes))
        week[3].append(_number(rx_min))
    weeks = sorted(acc)
    columns = ("volume", "volume_rx", "minutes", "minutes_rx")
    return pd.DataFrame(
        {
            "week": pd.to_datetime(weeks),
            **{c: [math.fsum(acc[w][i]) for w in weeks] for i, c in enumerate(columns)},
        }
    )


def weekly_dose_figure(sessions: pd.DataFrame, *, height: int = 360) -> FigureSpec:
    """Two stacked panels sharing the week axis: sets x reps, and minutes; bars done, markers prescribed."""
    title = "Dose per week: done vs prescribed"
    dose = weekly_dose(sessions)
    if dose.empty:
        return empty_spec(title, "No sessions in this date range", height=height)
    weeks = dates(dose["week"])
    data = []
    for row, (done, rx, unit) in enumerate(
        (("volume", "volume_rx", "reps"), ("minutes", "minutes_rx", "min")), 1
    ):
        axes = {"xaxis": "x" if row == 1 else "x2", "yaxis": "y" if row == 1 else "y2"}
        data.append(
            {
                "type": "bar",
                **axes,
                "x": weeks,
                "y": [float(v) for v in dose[done]],
                "name": "done",
                "legendgroup": "done",
                "showlegend": row == 1,
                "marker": {"color": PRIMARY},
                "hovertemplate": f"week of %{{x|%d %b}}<br>%{{y:.0f}} {unit} done<extra></extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                **axes,
                "x": weeks,
                "y": [float(v) for v in dose[rx]],
                "name": "prescribed",
                "legendgroup": "prescribed",
                "showlegend": row == 1,
                "mode": "markers+lines",
                "line": {"color": PRIMARY_LIGHT, "dash": "dot"},
                "marker": {"symbol": "line-ew-open", "size": 18, "line": {"width": 2, "color": "#555"}},
                "hovertemplate": f"week of %{{x|%d %b}}<br>%{{y:.0f}} {unit} prescribed<extra></extra>",
            }
        )
    week_axis = {"type": "date", "tickformat": "%d %b", "dtick": WEEK_MS}
    layout = base_layout(
        title,
        height=height,
        bargap=0.3,
        xaxis=axis(None, anchor="y", matches="x2", showticklabels=False, **week_axis),
        xaxis2=axis("Week starting", anchor="y2", **week_axis),
        yaxis=axis("sets × reps", domain=[0.56, 1.0], rangemode="tozero"),
        yaxis2=axis("minutes", domain=[0.0, 0.44], rangemode="tozero"),
    )
    return spec(data, layout)
