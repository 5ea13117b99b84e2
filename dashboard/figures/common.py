"""The look shared by every chart: calm colours, system font, quiet grid."""

from __future__ import annotations

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

EMPTY_MESSAGE = "No data in this date range"


def styled(fig: go.Figure, *, height: int = 300, legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 56, "r": 16, "t": 40, "b": 44},
        font={"family": FONT, "size": 12, "color": "#212529"},
        title={"font": {"size": 14}, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        hoverlabel={"font": {"family": FONT}},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


def empty_figure(title: str, message: str = EMPTY_MESSAGE, *, height: int = 300) -> go.Figure:
    """A figure that says why it is empty instead of drawing blank axes."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 13, "color": MUTED},
    )
    fig.update_layout(title={"text": title})
    styled(fig, height=height, legend=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def is_empty(fig: go.Figure) -> bool:
    return not fig.data
