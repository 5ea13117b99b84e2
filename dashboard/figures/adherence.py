"""Home-exercise adherence: weekly bars, a calendar of days, skip reasons and pain during exercise."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from dashboard.figures.common import (
    BAD,
    MUTED,
    PRIMARY,
    PRIMARY_LIGHT,
    WEEK_MS,
    FigureSpec,
    axis,
    base_layout,
    date_range,
    dates,
    day_of,
    empty_spec,
    iso_day,
    numbers,
    spec,
)

DONE_WEIGHT = {"completed": 1.0, "partial": 0.5, "skipped": 0.0, "missed": 0.0}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


_day = day_of
_iso_day = iso_day


def _home(sessions: pd.DataFrame, partial_weight: float) -> pd.DataFrame:
    home = sessions[sessions["setting"] == "home"].copy()
    weights = {**DONE_WEIGHT, "partial": partial_weight}
    home["done"] = home["status"].map(weights).fillna(0.0).astype(float)
    home["day"] = pd.to_datetime(home["session_date"])
    return home


def weekly_adherence(sessions: pd.DataFrame, partial_weight: float = 0.5) -> pd.DataFrame:
    """Per week (Monday start): home exercises scheduled, done (partial counts `partial_weight`) and percent.

    Counts exercises (rows) as the summary mart does, so the weeks add up to the episode's adherence.
    """
    weights = {**DONE_WEIGHT, "partial": partial_weight}
    acc: dict[dt.date, list[float]] = {}  # plain Python: ~100 rows per patient, a pandas groupby cost ~10 ms
    for day, setting, status in zip(
        sessions["session_date"].tolist(),
        sessions["setting"].tolist(),
        sessions["status"].tolist(),
        strict=True,
    ):
        if setting != "home":
            continue
        d = _day(day)
        week = acc.setdefault(d - dt.timedelta(days=d.weekday()), [0, 0.0])
        week[0] += 1
        week[1] += weights.get(status, 0.0)
    weeks = sorted(acc)
    scheduled = [acc[w][0] for w in weeks]
    done = [float(acc[w][1]) for w in weeks]
    return pd.DataFrame(
        {
            "week": pd.to_datetime(weeks) if weeks else [],
            "scheduled": scheduled,
            "done": done,
            "pct": [d / s * 100 for d, s in zip(done, scheduled, strict=True)],
        }
    )


def weekly_adherence_figure(
    sessions: pd.DataFrame, *, partial_weight: float = 0.5, low: float = 0.60, height: int = 280
) -> FigureSpec:
    """Scheduled (light) and done (dark; red below `low`) home exercises per week, the percent above each bar."""
    title = "Home exercises per week"
    weekly = weekly_adherence(sessions, partial_weight)
    if weekly.empty:
        return empty_spec(title, "No home exercises scheduled in this date range", height=height)
    weeks = dates(weekly["week"])
    data = [
        {
            "type": "bar",
            "x": weeks,
            "y": numbers(weekly["scheduled"]),
            "name": "scheduled",
            "marker": {"color": PRIMARY_LIGHT},
            "hovertemplate": "week of %{x|%d %b}<br>%{y} scheduled<extra></extra>",
        },
        {
            "type": "bar",
            "x": weeks,
            "y": numbers(weekly["done"]),
            "name": "done",
            "marker": {"color": [BAD if p < low * 100 else PRIMARY for p in weekly["pct"]]},
            "text": [f"{p:.0f} %" for p in weekly["pct"]],
            "textposition": "outside",
            "cliponaxis": False,
            "customdata": numbers(weekly["pct"]),
            "hovertemplate": "week of %{x|%d %b}<br>%{y:.1f} done (%{customdata:.0f} %)<extra></extra>",
        },
    ]
    layout = base_layout(
        title,
        height=height,
        barmode="overlay",
        bargap=0.25,
        yaxis=axis("home exercises", rangemode="tozero"),
        xaxis=axis("Week starting", type="date", dtick=WEEK_MS, tickformat="%d %b"),
    )
    return spec(data, layout)


def calendar_figure(
    sessions: pd.DataFrame,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    partial_weight: float = 0.5,
    height: int = 240,
) -> FigureSpec:
    """Days as a calendar (weeks across, weekdays down): share of the day's home exercises done; clinic visits marked."""
    title = "Calendar"
    if sessions.empty:
        return empty_spec(title, "No sessions in this date range", height=height)
    # Plain Python over the patient's ~100 rows: the pandas version (groupby, reindex, a loop of Timestamps)
    # took ~20 ms of the sessions callback.
    weights = {**DONE_WEIGHT, "partial": partial_weight}
    days = [_day(d) for d in sessions["session_date"].tolist()]
    settings = sessions["setting"].tolist()
    daily: dict[dt.date, list[float]] = {}
    for day, setting, status in zip(days, settings, sessions["status"].tolist(), strict=True):
        if setting == "home":
            acc = daily.setdefault(day, [0.0, 0])
            acc[0] += weights.get(status, 0.0)
            acc[1] += 1
    first = _day(start) if start else min(days)
    last = _day(end) if end else max(days)
    first = first - dt.timedelta(days=first.weekday())
    n_days = (last - first).days + 1
    n_weeks = (n_days - 1) // 7 + 1 if n_days > 0 else 0
    z: list[list[float | None]] = [[None] * n_weeks for _ in range(7)]
    text: list[list[str]] = [[""] * n_weeks for _ in range(7)]
    for i in range(max(n_days, 0)):
        day = first + dt.timedelta(days=i)
        w, wd = i // 7, day.weekday()
        label = day.strftime("%a %d %b")
        acc = daily.get(day)
        if acc is None:
            text[wd][w] = f"{label}: nothing scheduled"
        else:
            done, scheduled = acc
            z[wd][w] = float(done / scheduled)
            text[wd][w] = f"{label}: {done:g} of {int(scheduled)} done"
    data: list[dict] = [
        {
            "type": "heatmap",
            "x": [_iso_day(first + dt.timedelta(days=7 * k)) for k in range(n_weeks)],
            "y": WEEKDAYS,
            "z": z,
            "text": text,
            "hovertemplate": "%{text}<extra></extra>",
            "zmin": 0,
            "zmax": 1,
            "colorscale": [[0, "#f1b5ae"], [0.5, "#f7e1a1"], [1, "#7fbf95"]],
            "xgap": 3,
            "ygap": 3,
            "name": "home",
            "colorbar": {
                "title": {"text": "done"},
                "tickvals": [0, 0.5, 1],
                "ticktext": ["0 %", "50 %", "100 %"],
            },
        }
    ]
    cdays = list(dict.fromkeys(d for d, setting in zip(days, settings, strict=True) if setting == "clinic"))
    if cdays:
        data.append(
            {
                "type": "scatter",
                "x": [_iso_day(d - dt.timedelta(days=d.weekday())) for d in cdays],
                "y": [WEEKDAYS[d.weekday()] for d in cdays],
                "mode": "markers",
                "marker": {
                    "symbol": "diamond",
                    "size": 9,
                    "color": PRIMARY,
                    "line": {"color": "white", "width": 1},
                },
                "name": "clinic visit",
                "customdata": [d.strftime("%a %d %b") for d in cdays],
                "hovertemplate": "%{customdata}: clinic visit<extra></extra>",
            }
        )
    layout = base_layout(
        title,
        height=height,
        yaxis=axis(None, autorange="reversed", showgrid=False),
        xaxis=axis("Week starting", showgrid=False, type="date", tickformat="%d %b"),
    )
    return spec(data, layout)


def skip_reasons_figure(sessions: pd.DataFrame, *, height: int = 240) -> FigureSpec:
    title = "Why exercises were not done"
    missed = sessions[sessions["status"].isin(["skipped", "missed"])]
    if missed.empty:
        return empty_spec(title, "No skipped or missed exercises in this date range", height=height)
    reasons = missed["skip_reason"].fillna("not given").replace("", "not given")
    counts = reasons.value_counts().sort_values()
    data = [
        {
            "type": "bar",
            "x": [int(v) for v in counts.values],
            "y": list(counts.index),
            "orientation": "h",
            "marker": {"color": MUTED},
            "text": [int(v) for v in counts.values],
            "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": "%{y}: %{x}<extra></extra>",
        }
    ]
    layout = base_layout(
        title, height=height, legend=False, xaxis=axis("exercises skipped or missed", rangemode="tozero")
    )
    return spec(data, layout)


def pain_during_figure(
    sessions: pd.DataFrame, *, x_range: tuple[Any, Any] | None = None, height: int = 260
) -> FigureSpec:
    title = "Pain during exercise (0-10)"
    logged = sessions.dropna(subset=["pain_during"])
    if logged.empty:
        return empty_spec(title, "No pain during exercise logged in this date range", height=height)
    daily = logged.groupby("session_date", as_index=False)["pain_during"].mean()
    data = [
        {
            "type": "scatter",
            "x": dates(daily["session_date"]),
            "y": numbers(daily["pain_during"]),
            "mode": "lines+markers",
            "line": {"color": BAD, "width": 1.2},
            "marker": {"size": 6},
            "name": "pain during",
            "hovertemplate": "%{x|%d %b %Y}<br>%{y:.1f} points<extra></extra>",
        }
    ]
    layout = base_layout(
        title,
        height=height,
        legend=False,
        yaxis=axis("points · lower is better ↓", range=[-0.4, 10.4]),
        xaxis=axis("Date", type="date", **date_range(x_range)),
    )
    return spec(data, layout)
