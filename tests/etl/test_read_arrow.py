"""The Arrow reader (plain prefix) hands out exactly what the pandas reader does: same cells, same line numbers,
same file-level errors, whatever irregular line comes where (the pandas reader takes over from it)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl import read_arrow
from etl.mapping import Mapping
from etl.read import FileLevelError, _pandas_chunks, iter_chunks, read_header

cell = st.text(alphabet=st.sampled_from(list("abcXYZ019 .-_/:é")), max_size=6)
plain = st.lists(cell, min_size=4, max_size=4).map(",".join)
odd = st.sampled_from(["", "a,b", "a,b,c,d,e", "x,y,z,\xff\xfe", "  ", "a,b,c,"])
line = st.one_of(plain, plain, plain, plain, odd)


def _read(fn) -> tuple[list[list[str]], list[int]] | str:
    """Every row's cells and line number, in order (chunk boundaries may differ after a hand-over)."""
    cells: list[list[str]] = []
    lines: list[int] = []
    try:
        for c in fn():
            cells += c.frame.to_numpy().tolist()
            lines += c.lines.tolist()
    except FileLevelError as exc:
        return f"error: {exc}"
    return cells, lines


def _both(path, mapping=None):
    mapping = mapping or Mapping()
    try:
        source, canonical = read_header(path, mapping)
    except FileLevelError as exc:  # before either reader (the first 64 KB are checked as text)
        return str(exc), str(exc)
    arrow = _read(lambda: iter_chunks(path, mapping, source, canonical, 3))
    pandas = _read(lambda: _pandas_chunks(path, mapping, source, canonical, 3, 2, False))
    return arrow, pandas


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(line, min_size=0, max_size=14),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_same_chunks_as_pandas(tmp_path_factory, lines, newline, bom, final_newline):
    path = tmp_path_factory.mktemp("arrow") / "scores.csv"
    text = newline.join(["patient_id,recorded_at,measure,value", *lines]) + (newline if final_newline else "")
    data = ("\ufeff" if bom else "").encode() + text.encode("utf-8", "surrogateescape")
    path.write_bytes(data.replace("\xff\xfe".encode(), b"\xff\xfe"))
    arrow, pandas = _both(path)
    assert arrow == pandas


def test_plain_file_is_read_by_arrow_to_the_end(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    path.write_text("patient_id,recorded_at,measure,value\n" + "P1,2026-01-01,odi,10\n" * 7)
    ends = []
    original = read_arrow.ArrowPrefix.__iter__

    def spy(self):
        yield from original(self)
        ends.append((self.complete, self.next_line))

    monkeypatch.setattr(read_arrow.ArrowPrefix, "__iter__", spy)
    arrow, pandas = _both(path)
    assert arrow == pandas and ends == [(True, 9)]


@pytest.mark.parametrize(
    ("mapping", "quoted", "applies"),
    [
        (Mapping(), False, True),
        (Mapping(), True, False),
        (Mapping(encoding="latin-1"), False, False),
        (Mapping(delimiter=";"), False, True),
        (Mapping(skip_rows=2), False, False),
    ],
)
def test_when_arrow_reads(mapping, quoted, applies):
    assert read_arrow.applies(mapping, quoted) is applies


def test_blank_line_hands_over_with_the_right_line_numbers(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("patient_id,recorded_at,measure,value\nP1,a,b,1\nP1,a,b,2\n\nP1,a,b,3\nP1,a,b\n")
    arrow, pandas = _both(path)
    assert arrow == pandas
    assert arrow[1] == [2, 3, 5, 6]  # line 4 is blank; 6 lacks a field (pandas keeps it, the value empty)


def test_bytes_that_are_not_utf8_after_the_first_block(tmp_path):
    path = tmp_path / "scores.csv"
    body = "P1,2026-01-01,odi,10\n" * 20_000  # past the 64 KB the header check reads, past one Arrow block
    path.write_bytes(
        b"patient_id,recorded_at,measure,value\n" + body.encode() + b"P1,x,\xff,1\n" + body.encode()
    )
    arrow, pandas = _both(path)
    assert arrow == pandas
    assert arrow.startswith("error: scores.csv: not readable as utf-8")
