"""The look shared by every chart, and the one place figures are built.

Figures are assembled as plain plotly specs (dicts). The patient page sends them to the browser as they are
(`spec`, `empty_spec`): `go.Figure` validation (~5 ms per chart) and the full default template it attaches (~10 KB
of JSON per chart) made up most of the patient page's callback time, 13 charts per page load. plotly.js validates
the spec when it draws; the tests validate every spec by building a `go.Figure` from it. `figure` and
`empty_figure` still build a `go.Figure` once (the outcomes page uses them): plotly's incremental `update_*` calls
validate every property path and cost 20-40 ms per chart, the one-shot constructor about 5 ms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

PRIMARY = "#1f6f8b"
PRIMARY_LIGHT = "#a9cfdc"
GOOD = "#2e7d4f"
BAD = "#b03a2e"
WARN = "#c98a0b"
MUTED = "#6c757d"
GRID = "#e9ecef"
BAND = "rgba(108, 117, 125, 0.13)"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
#: Colours for series that need several (exercise types, sides), in a fixed order.
SERIES = ["#1f6f8b", "#c98a0b", "#6a4c93", "#2e7d4f", "#b03a2e", "#3d5a80", "#8d6e63"]
WEEK_MS = 7 * 24 * 3600 * 1000

EMPTY_MESSAGE = "No data in this date range"


def axis(title: str | None = None, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "gridcolor": GRID,
        "zeroline": False,
        "linecolor": "#ced4da",
        "ticks": "outside",
        "tickcolor": "#ced4da",
        "automargin": True,
    }
    if title is not None:
        spec["title"] = {"text": title}
    spec.update(kw)
    return spec


def date_range(x_range: tuple[Any, Any] | None) -> dict[str, Any]:
    """Axis settings that show exactly the page's date range (half a day of margin each side)."""
    if not x_range or x_range[0] is None or x_range[1] is None:
        return {}
    start, end = (pd.Timestamp(v) for v in x_range)
    half = pd.Timedelta(hours=12)
    return {"range": [(start - half).isoformat(), (end + half).isoformat()]}


def base_layout(title: str, *, height: int = 300, legend: bool = True, **kw: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {
            "text": title,
            "font": {"size": 14},
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 6},
        },
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 46, "b": 44},
        "font": {"family": FONT, "size": 12, "color": "#212529"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": SERIES,
        "hoverlabel": {"font": {"family": FONT}},
        "showlegend": legend,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        "xaxis": axis(),
        "yaxis": axis(),
    }
    for key, value in kw.items():
        if key.startswith(("xaxis", "yaxis")) and key in layout:
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


#: A plain figure spec: {"data": [...], "layout": {...}}, what `dcc.Graph(figure=...)` takes.
FigureSpec = dict[str, Any]

#: The few settings of plotly.py's default template that `base_layout` does not already set and the look relies
#: on; a dict spec gets no template from plotly.py, and plotly.js's own defaults differ on these.
TEMPLATE: dict[str, Any] = {
    "layout": {
        "hovermode": "closest",
        "autotypenumbers": "strict",
        "hoverlabel": {"align": "left"},
        "xaxis": {"title": {"standoff": 15}},
        "yaxis": {"title": {"standoff": 15}},
    }
}


def day_of(value: Any) -> dt.date:
    """A session date as `datetime.date`, whatever the driver or a test frame holds (date, Timestamp, ISO text)."""
    if isinstance(value, dt.datetime):  # pd.Timestamp too
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def iso_day(day: dt.date) -> str:
    """A day as `dates` writes it."""
    return f"{day.isoformat()}T00:00:00"


def dates(values: Any) -> list[str | None]:
    """Dates or timestamps as ISO text for a spec: JSON-ready, instead of one encoder call per pd.Timestamp.

    Vectorised (`np.datetime_as_string`): `Series.dt.strftime` formats element by element in Python.
    """
    if isinstance(values, pd.Series | pd.DatetimeIndex) and values.dtype.kind == "M":
        arr = values.to_numpy(dtype="datetime64[s]")
    else:
        arr = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601")).to_numpy(dtype="datetime64[s]")
    return [None if t == "NaT" else t for t in np.datetime_as_string(arr, unit="s").tolist()]


def numbers(values: Any) -> list[float | None]:
    """Numbers as plain floats (missing as None) for a spec."""
    arr = np.asarray(values, dtype=float)
    return [None if v != v else v for v in arr.tolist()]


def spec(data: list[dict[str, Any]], layout: dict[str, Any]) -> FigureSpec:
    """A figure as a plain spec for the browser (no `go.Figure` validation or default template)."""
    return {"data": data, "layout": {"template": TEMPLATE, **layout}}


def figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """The one `go.Figure` construction (validated once)."""
    return go.Figure({"data": data, "layout": layout})


def _empty_layout(title: str, message: str, height: int) -> dict[str, Any]:
    return base_layout(
        title,
        height=height,
        legend=False,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
                "font": {"size": 13, "color": MUTED},
            }
        ],
    )


def empty_figure(title: str, message: str = EMPTY_MESSAGE, *, height: int = 300) -> go.Figure:
    """A figure that says why it is empty instead of drawing blank axes."""
    return figure([], _empty_layout(title, message, height))


def empty_spec(title: str, message: str = EMPTY_MESSAGE, *, height: int = 300) -> FigureSpec:
    """`empty_figure` as a plain spec."""
    return spec([], _empty_layout(title, message, height))


def is_empty(fig: go.Figure | FigureSpec) -> bool:
    return not (fig.get("data") if isinstance(fig, dict) else fig.data)
