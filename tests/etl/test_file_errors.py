"""A file that cannot be read at all fails with one line naming the file and the problem, and loads nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from etl.load import EXIT_FILE_ERROR, exit_code, load_file
from tests.etl.helpers import AS_OF, SCORES_HEADER, count, patients_file, rows, write_csv
from warehouse.schema import etl_batches, scores


def _bad_files(tmp_path):
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02PK garbage" * 10)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin1.csv").write_bytes(
        "patient_id,recorded_at,measure,value,side\nP1,2026-09-01,pain_leg,7,gauche \xe9\n".encode("latin-1")
    )
    write_csv(
        tmp_path / "missing_cols.csv", ["patient_id", "recorded_at", "measure"], [["P1", "2026-09-01", "odi"]]
    )
    write_csv(tmp_path / "unknown_kind.csv", ["foo", "bar"], [["1", "2"]])
    (tmp_path / "ragged.csv").write_text(
        "patient_id,recorded_at,measure,value,side\nP1,2026-09-01,pain_leg,7,\nP1,2026-09-02,pain_leg,7,,,extra\n"
    )
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04" + b"\x14" * 100)
    (tmp_path / "semicolons.csv").write_text("patient_id;recorded_at;measure;value\nP1;2026-09-01;odi;30\n")
    return {
        "binary.csv": "binary",
        "empty.csv": "empty",
        "latin1.csv": "not readable as utf-8",
        "missing_cols.csv": "missing required column(s): value",
        "unknown_kind.csv": "cannot tell the file kind",
        "ragged.csv": "cannot be parsed as CSV",
        "sheet.xlsx": "spreadsheet",
        "nope.csv": "no such file",
        "semicolons.csv": 'looks semicolon-separated: load it with a mapping whose [source] has delimiter = ";"',
    }


@pytest.mark.parametrize(
    "name",
    [
        "binary.csv",
        "empty.csv",
        "latin1.csv",
        "missing_cols.csv",
        "unknown_kind.csv",
        "ragged.csv",
        "sheet.xlsx",
        "nope.csv",
        "semicolons.csv",
    ],
)
def test_unreadable_file_fails_whole(engine, tmp_path, name):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    expected = _bad_files(tmp_path)[name]
    result = load_file(engine, tmp_path / name, as_of=AS_OF)
    assert result.status == "failed"
    assert result.message.startswith(name) and expected in result.message
    assert "\n" not in result.message
    assert exit_code([result]) == EXIT_FILE_ERROR
    assert count(engine, scores) == 0
    failed = rows(engine, select(etl_batches).where(etl_batches.c.status == "failed"))
    assert len(failed) == 1 and failed[0].message == result.message


def test_forced_kind(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = write_csv(tmp_path / "s.csv", SCORES_HEADER, [["P1", "2026-09-01", "pain_leg", "7", ""]])
    assert load_file(engine, path, kind="sessions", as_of=AS_OF).status == "failed"
    assert load_file(engine, path, kind="scores", as_of=AS_OF).rows_inserted == 1
