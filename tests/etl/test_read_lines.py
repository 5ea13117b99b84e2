"""Source line numbers stay right whether or not the reader searches cells for embedded newlines: it skips the
search only when no quote follows the header, and a quoted cell spanning lines moves every later line down."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.mapping import Mapping
from etl.read import _has_quotes_after_header, open_source

HEADER = "patient_id,recorded_at,measure,value,side\n"


def _lines(path: Path, mapping: Mapping) -> list[int]:
    source = open_source(path, mapping)
    return [int(n) for _, chunks in source.segments(2) for c in chunks for n in c.lines]


@pytest.mark.parametrize(
    ("body", "quoted", "lines"),
    [
        ("P1,2026-01-01,odi,10,\nP1,2026-01-02,odi,12,\nP1,2026-01-03,odi,14,\n", False, [2, 3, 4]),
        ('P1,2026-01-01,odi,10,"a\nb"\nP1,2026-01-02,odi,12,\nP1,2026-01-03,odi,14,\n', True, [2, 4, 5]),
        ('P1,2026-01-01,odi,10,\nP1,2026-01-02,odi,12,""\n', True, [2, 3]),
    ],
)
def test_line_numbers_with_and_without_quotes(tmp_path, body, quoted, lines):
    path = tmp_path / "scores.csv"
    path.write_bytes(('"patient_id",recorded_at,measure,value,side\n' + body).encode())
    mapping = Mapping()
    assert _has_quotes_after_header(path, mapping, HEADER.strip().split(",")) is quoted
    assert _lines(path, mapping) == lines


def test_quote_scan_answers_yes_when_unsure(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_bytes((HEADER + "P1,2026-01-01,odi,10,\n").encode())
    header = HEADER.strip().split(",")
    assert _has_quotes_after_header(path, Mapping(), header) is False
    assert _has_quotes_after_header(path, Mapping(skip_rows=1), header) is True
    assert _has_quotes_after_header(path, Mapping(encoding="utf-16"), header) is True
    assert _has_quotes_after_header(path, Mapping(), [*header[:-1], "si\nde"]) is True
    path.write_bytes((HEADER.replace("\n", "\r") + "P1,2026-01-01,odi,10,\r").encode())
    assert _has_quotes_after_header(path, Mapping(), header) is True
