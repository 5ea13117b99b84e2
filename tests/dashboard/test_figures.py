"""Figures are pure: DataFrame in, a plain figure spec (dict) out. Check traces, shapes and axis titles.

The page sends the specs to the browser unvalidated (validation cost ~5 ms per chart), so every spec a test builds
goes through `go.Figure(...)` here, which rejects any property plotly does not know.
"""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures import adherence as _fa
from dashboard.figures import programme as _fp
from dashboard.figures import trends as _ft
from dashboard.figures.common import TEMPLATE, is_empty


class _Validated:
    """A figures module whose figure functions return `go.Figure(spec)`: validated, and attribute access."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not callable(value) or not name.endswith("_figure"):
            return value

        def validated(*args: Any, **kwargs: Any) -> go.Figure:
            spec = value(*args, **kwargs)
            assert isinstance(spec, dict) and spec["layout"]["template"] == TEMPLATE
            return go.Figure(spec)

        return validated


fa, fp, ft = _Validated(_fa), _Validated(_fp), _Validated(_ft)

LEG = {
    "code": "pain_leg",
    "label": "Leg pain (NPRS)",
    "unit": "points",
    "better": "lower",
    "min_value": 0.0,
    "max_value": 10.0,
    "mcid_abs": 2.0,
    "mcid_pct": 30.0,
    "threshold_kind": "published_mcid",
}
SLR = {**LEG, "code": "slr_left", "label": "SLR left", "unit": "degrees", "better": "higher", "max_value": 90.0,
       "mcid_abs": 6.0, "mcid_pct": None, "threshold_kind": "detectable_change"}  # fmt: skip


def _points(*values, side=""):
    start = dt.datetime(2024, 3, 1, 10)
    return pd.DataFrame(
        {
            "recorded_at": [start + dt.timedelta(days=7 * i) for i in range(len(values))],
            "value": values,
            "side": side,
        }
    )


def _shape(fig, name):
    return next(s for s in fig.layout.shapes if s.name == name)


def test_trend_with_baseline_band_and_axes():
    fig = ft.trend_figure(_points(7.0, 5.0, 3.0), LEG, {"baseline_value": 7.0, "baseline_at": None})
    assert len(fig.data) == 1 and list(fig.data[0].y) == [7.0, 5.0, 3.0]
    assert fig.data[0].mode == "lines+markers"
    assert "%d %b %Y" in fig.data[0].hovertemplate and "points" in fig.data[0].hovertemplate
    assert _shape(fig, "baseline").y0 == 7.0
    band = _shape(fig, "mcid_band")
    assert (band.y0, band.y1) == (5.0, 9.0)  # 2 points (30 % of 7 = 2.1 is larger)
    assert fig.layout.yaxis.title.text == "points · lower is better ↓"
    assert fig.layout.xaxis.title.text == "Date"
    assert list(fig.layout.yaxis.range) == pytest.approx([-0.4, 10.4])
    assert any("MCID" in a.text for a in fig.layout.annotations)


def test_percent_threshold_wins_when_smaller():
    assert ft.effective_threshold(LEG, 5.0) == pytest.approx(1.5)
    assert ft.effective_threshold(LEG, 0.0) == 2.0
    assert ft.effective_threshold(SLR, 40.0) == 6.0
    assert ft.effective_threshold({"mcid_abs": None, "mcid_pct": None}, 5.0) is None


def test_higher_is_better_axis_and_detectable_change_wording():
    fig = ft.trend_figure(_points(40.0, 50.0), SLR, {"baseline_value": 40.0})
    assert fig.layout.yaxis.title.text == "degrees · higher is better ↑"
    assert any("detectable change" in a.text for a in fig.layout.annotations)


def test_missing_baseline_is_said_never_faked():
    fig = ft.trend_figure(_points(5.0, 4.0), LEG, {"baseline_value": None})
    assert not [s for s in fig.layout.shapes if s.name in ("baseline", "mcid_band")]
    assert any(a.text == ft.NO_BASELINE for a in fig.layout.annotations)
    assert "no baseline" in fig.layout.title.text
    assert ft.trend_figure(_points(5.0), LEG, None).layout.annotations[0].text == ft.NO_BASELINE


def test_one_score_and_no_scores():
    one = ft.trend_figure(
        _points(6.0), LEG, {"baseline_value": 6.0}, x_range=(dt.date(2024, 3, 1), dt.date(2024, 4, 1))
    )
    assert len(one.data[0].x) == 1
    assert one.layout.xaxis.range[0].startswith("2024-02-29T12") and one.layout.xaxis.range[1].startswith(
        "2024-04-01T12"
    )
    empty = ft.trend_figure(_points(), LEG, {"baseline_value": 6.0})
    assert not empty.data and "No measurements" in empty.layout.annotations[0].text


def test_sides_become_traces():
    pts = pd.concat([_points(6.0, 5.0, side="left"), _points(4.0, side="right")])
    fig = ft.trend_figure(pts, LEG, {"baseline_value": 6.0})
    assert [t.name for t in fig.data] == ["left", "right"] and fig.layout.showlegend


def _sessions(rows):
    cols = ["session_date", "setting", "exercise", "exercise_type", "status", "sets", "reps", "duration_min",
            "prescribed_sets", "prescribed_reps", "prescribed_min", "pain_during", "skip_reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


MON = dt.date(2024, 3, 4)


def _row(day, status="completed", setting="home", exercise="bird dog", pain=None, reason=None):
    done = status in ("completed", "partial")
    return [MON + dt.timedelta(days=day), setting, exercise, "core_strengthening", status,
            3 if done else None, 10 if done else None, 10.0 if done else None, 3, 10, 10.0, pain, reason]  # fmt: skip


WEEK = _sessions(
    [
        _row(0),
        _row(1, "partial"),
        _row(2, "skipped", reason="pain"),
        _row(3, "missed"),
        _row(7),
        _row(8),
        _row(9, setting="clinic", exercise="soft tissue mobilisation"),
    ]  # fmt: skip
)


def test_weekly_adherence_counts_partial_as_half_and_ignores_clinic():
    weekly = fa.weekly_adherence(WEEK)
    assert list(weekly["scheduled"]) == [4, 2]
    assert list(weekly["done"]) == [1.5, 2.0]
    assert list(weekly["pct"]) == [37.5, 100.0]
    assert list(fa.weekly_adherence(WEEK, partial_weight=1.0)["done"]) == [2.0, 2.0]


def test_weekly_adherence_figure():
    fig = fa.weekly_adherence_figure(WEEK)
    scheduled, done = fig.data
    assert scheduled.name == "scheduled" and done.name == "done"
    assert list(done.text) == ["38 %", "100 %"]
    assert done.marker.color[0] == fa.BAD and done.marker.color[1] != fa.BAD  # under 60 % stands out
    assert fig.layout.yaxis.title.text == "home exercises"
    assert not fa.weekly_adherence_figure(WEEK[WEEK["setting"] == "clinic"]).data


def test_calendar_heatmap():
    fig = fa.calendar_figure(WEEK, MON, MON + dt.timedelta(days=13))
    heat, clinic = fig.data
    assert heat.type == "heatmap" and list(heat.y) == fa.WEEKDAYS and len(heat.x) == 2
    assert heat.z[0][0] == 1.0 and heat.z[1][0] == 0.5 and heat.z[2][0] == 0.0 and heat.z[6][0] is None
    assert "1 of 1 done" in heat.text[0][0] and "nothing scheduled" in heat.text[6][0]
    assert clinic.name == "clinic visit" and list(clinic.y) == ["Wed"]


def test_skip_reasons_and_pain():
    skips = fa.skip_reasons_figure(WEEK)
    assert dict(zip(skips.data[0].y, skips.data[0].x, strict=True)) == {"pain": 1, "not given": 1}
    assert not fa.pain_during_figure(WEEK).data
    with_pain = _sessions([_row(0, pain=4.0), _row(0, exercise="glute bridge", pain=6.0), _row(1, pain=2.0)])
    fig = fa.pain_during_figure(with_pain)
    assert list(fig.data[0].y) == [5.0, 2.0] and "lower is better" in fig.layout.yaxis.title.text


def test_programme_timeline_and_dose():
    fig = fp.programme_timeline_figure(WEEK, {"core_strengthening": "Core strengthening"})
    names = [t.name for t in fig.data]
    assert names == ["Core strengthening", "Core strengthening (not done)"]
    assert set(fig.layout.yaxis.categoryarray) == {"bird dog", "soft tissue mobilisation"}
    dose = fp.weekly_dose(WEEK)
    assert list(dose["volume"]) == [60.0, 90.0] and list(dose["volume_rx"]) == [120.0, 90.0]
    assert list(dose["minutes"]) == [20.0, 30.0] and list(dose["minutes_rx"]) == [40.0, 30.0]
    fig = fp.weekly_dose_figure(WEEK)
    assert [t.type for t in fig.data] == ["bar", "scatter", "bar", "scatter"]
    assert fig.layout.yaxis.title.text == "sets × reps" and fig.layout.yaxis2.title.text == "minutes"


@pytest.mark.parametrize(
    "make",
    [
        lambda df: fa.weekly_adherence_figure(df),
        lambda df: fa.calendar_figure(df),
        lambda df: fa.skip_reasons_figure(df),
        lambda df: fa.pain_during_figure(df),
        lambda df: fp.programme_timeline_figure(df),
        lambda df: fp.weekly_dose_figure(df),
    ],
)
def test_every_session_figure_says_why_it_is_empty(make):
    fig = make(_sessions([]))
    assert not fig.data and fig.layout.annotations[0].text.startswith("No ")


def test_specs_are_plain_json_and_say_when_empty():
    from plotly.io.json import to_json_plotly

    spec = _ft.trend_figure(_points(7.0, 5.0), LEG, {"baseline_value": 7.0})
    assert not is_empty(spec) and spec["data"][0]["x"][0] == "2024-03-01T10:00:00"
    assert spec["data"][0]["y"] == [7.0, 5.0] and all(type(v) is float for v in spec["data"][0]["y"])
    assert '"2024-03-08T10:00:00"' in to_json_plotly(spec)  # what Dash sends
    empty = _ft.trend_figure(_points(), LEG, None)
    assert is_empty(empty) and is_empty(go.Figure(empty)) and not is_empty(go.Figure(spec))
