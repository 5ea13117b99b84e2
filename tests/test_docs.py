"""Docs cannot drift: every CLI command, every column of every file kind and every measure code is documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from etl.cli import build_parser
from etl.kinds import KINDS
from warehouse.catalog import exercise_type_rows, measure_rows

ROOT = Path(__file__).resolve().parents[1]
DATA_README = ROOT / "data" / "README.md"
README = ROOT / "README.md"
MAPPINGS_README = ROOT / "data" / "mappings" / "README.md"


def _subcommands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def _undocumented_commands(text: str) -> list[str]:
    """Commands not shown as `etl <command>` (python -m etl / outcomes-etl, options may come between)."""
    return [c for c in _subcommands() if not re.search(rf"\betl(?:\s+--?[\w-]+(?:\s+\S+)?)*\s+{c}\b", text)]


def _code(name: str) -> re.Pattern[str]:
    """A column or code written as code: `name` (in a table or in prose)."""
    return re.compile(rf"`{re.escape(name)}`")


def test_the_cli_has_the_commands_the_docs_describe():
    assert {"init", "generate", "load", "rejects", "status", "refresh"} <= set(_subcommands())


def test_every_cli_command_is_in_data_readme():
    assert _undocumented_commands(DATA_README.read_text(encoding="utf-8")) == []


def test_every_cli_command_is_in_readme():
    if not README.is_file():
        pytest.skip("README.md not written yet")
    assert _undocumented_commands(README.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_column_of_every_kind_is_in_data_readme(kind):
    text = DATA_README.read_text(encoding="utf-8")
    section = re.search(rf"^## {kind}\b.*?(?=^## )", text, flags=re.S | re.M)
    assert section, f"data/README.md has no '## {kind}' section"
    spec = KINDS[kind]
    for col in spec.required:
        assert re.search(rf"^\| `{col}` \| required \|", section.group(0), flags=re.M), (kind, col)
    for col in spec.optional:
        assert re.search(rf"^\| `{col}` \| optional \|", section.group(0), flags=re.M), (kind, col)


def test_kind_recognition_columns_are_in_data_readme():
    text = " ".join(DATA_README.read_text(encoding="utf-8").split())
    for kind in KINDS.values():
        assert f"`{', '.join(kind.signature)}`" in text, kind.name


def test_every_measure_code_is_in_data_readme():
    text = DATA_README.read_text(encoding="utf-8")
    missing = [m["code"] for m in measure_rows() if not _code(m["code"]).search(text)]
    assert missing == []


def test_measure_units_and_ranges_match_the_catalog():
    text = DATA_README.read_text(encoding="utf-8")
    for m in measure_rows():
        row = re.search(rf"^\| `{m['code']}` \|.*$", text, flags=re.M)
        assert row, m["code"]
        cells = [c.strip() for c in row.group(0).strip("|").split("|")]
        assert cells[2] == m["unit"], (m["code"], cells)
        assert cells[3] == f"{m['min_value']:g}-{m['max_value']:g}", (m["code"], cells)
        assert cells[4] == m["better"], (m["code"], cells)


def test_every_exercise_type_is_in_data_readme():
    text = DATA_README.read_text(encoding="utf-8")
    assert [t["code"] for t in exercise_type_rows() if not _code(t["code"]).search(text)] == []


def test_every_mapping_section_is_explained():
    text = MAPPINGS_README.read_text(encoding="utf-8")
    for section in ("source", "columns", "values.<column>", "dates", "units", "constants"):
        assert f"## `[{section}]`" in text, section
    for name in ("example_emr.toml", "example_home_app.toml"):
        assert name in text and (ROOT / "data" / "mappings" / name).is_file()
