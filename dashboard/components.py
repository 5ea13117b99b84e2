"""Small UI pieces shared by pages (dash-bootstrap-components, no hand-rolled CSS beyond the theme file)."""

from __future__ import annotations

import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from dashboard.flags import FLAG_LABELS

FLAG_COLORS = {
    "worsening": "danger",
    "not_responding": "warning",
    "low_adherence": "warning",
    "no_recent_data": "secondary",
    "missing_baseline": "info",
}


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def fmt_num(value: Any, digits: int = 1) -> str:
    if missing(value):
        return "—"
    text = f"{float(value):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_change(value: Any, digits: int = 1) -> str:
    if missing(value):
        return "—"
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return f"{sign}{fmt_num(abs(value), digits)}"


def fmt_pct(value: Any) -> str:
    return "—" if missing(value) else f"{float(value) * 100:.0f} %"


def flag_badges(flags: list[str]) -> list[Any]:
    if not flags:
        return [dbc.Badge("No flags", color="success", className="me-1 fw-normal")]
    return [
        dbc.Badge(FLAG_LABELS[f], color=FLAG_COLORS.get(f, "secondary"), className="me-1 fw-normal")
        for f in flags
    ]


def section(title: str, *children: Any, subtitle: str | None = None, class_name: str = "") -> dbc.Card:
    header = [html.H2(title, className="h5 mb-0")]
    if subtitle:
        header.append(html.Div(subtitle, className="small text-muted"))
    return dbc.Card(
        [dbc.CardHeader(header, className="bg-white"), dbc.CardBody(list(children))],
        className=f"mb-3 shadow-sm report-section {class_name}".strip(),
    )


def key_number(label: str, value: str, detail: str | None = None, color: str | None = None) -> dbc.Col:
    body = [
        html.Div(label, className="small text-muted"),
        html.Div(value, className=f"fs-4 fw-semibold text-{color}" if color else "fs-4 fw-semibold"),
    ]
    if detail:
        body.append(html.Div(detail, className="small text-muted"))
    return dbc.Col(
        dbc.Card(dbc.CardBody(body, className="py-2"), className="h-100 shadow-sm"), xs=6, md=4, lg=2
    )
