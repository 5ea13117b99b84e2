"""docs/research.md cannot drift: every export option and every cohort field is documented."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from etl.cli import build_parser
from research.cohort import CohortDefinition

DOC = (Path(__file__).resolve().parents[2] / "docs" / "research.md").read_text(encoding="utf-8")


def _export_options() -> list[str]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [
        o
        for a in sub.choices["export"]._actions
        for o in a.option_strings
        if o.startswith("--") and o != "--help"
    ]


@pytest.mark.parametrize("option", _export_options())
def test_export_option_is_documented(option):
    assert f"`{option}" in DOC


def _fields(doc: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in doc.items():
        if key in ("schema_version",):
            continue
        if isinstance(value, dict) and key in ("filters", "outcome"):
            out += _fields(value, f"{key}.")
        else:
            out.append(prefix + key)
    return out


@pytest.mark.parametrize("field", _fields(CohortDefinition().to_dict()))
def test_cohort_field_is_documented(field):
    assert f"`{field}`" in DOC, field
