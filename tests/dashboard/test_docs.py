"""docs/dashboard.md cannot drift: every CLI option and every flag is documented."""

from pathlib import Path

import pytest

from dashboard.__main__ import build_parser, parse_args
from dashboard.flags import FLAG_LABELS

DOC = Path(__file__).resolve().parents[2] / "docs" / "dashboard.md"


def _options() -> list[str]:
    return [
        opt
        for action in build_parser()._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    ]


@pytest.mark.parametrize("option", _options())
def test_cli_option_is_documented(option):
    assert f"`{option}" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("label", FLAG_LABELS.values())
def test_flag_is_documented(label):
    assert f"| {label} |" in DOC.read_text(encoding="utf-8")


def test_entry_points_are_documented():
    text = DOC.read_text(encoding="utf-8")
    for snippet in ("python -m dashboard", "outcomes-dashboard", "dashboard.wsgi:server", "OUTCOMES_DB_URL"):
        assert snippet in text
    assert parse_args([]).port == 8050 and "`8050`" in text
