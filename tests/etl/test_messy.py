"""Messy clinic exports: the samples in data/sample/messy/ load to the same rows as their canonical twins; spreadsheets
(sheets, title rows, typed cells); "7/10" ratings; trailing empty columns."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from etl.load import load_file
from etl.mapping import load_mapping
from tests.etl.helpers import AS_OF, SCORES_HEADER, count, patients_file, rows
from warehouse.schema import etl_rejects, fact_revisions, scores

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
MESSY = SAMPLE / "messy"
MAPPINGS = ROOT / "data" / "mappings"
SCORE_COLS = [scores.c.patient_id, scores.c.measure, scores.c.recorded_at, scores.c.side, scores.c.value]


@pytest.fixture
def with_patients(engine: Engine) -> Engine:
    assert load_file(engine, SAMPLE / "patients.csv", as_of=AS_OF).rows_rejected == 0
    return engine


def _snapshot(engine: Engine) -> list[tuple]:
    return sorted((p, m, t, s, round(v, 9)) for p, m, t, s, v in rows(engine, select(*SCORE_COLS)))


def _assert_same_as_canonical(engine: Engine, canonical: Path) -> None:
    n = len(canonical.read_text(encoding="utf-8").splitlines()) - 1
    before = _snapshot(engine)
    twin = load_file(engine, canonical, as_of=AS_OF)
    assert (twin.rows_read, twin.rows_unchanged, twin.rows_inserted, twin.rows_updated) == (n, n, 0, 0)
    assert count(engine, fact_revisions) == 0 and _snapshot(engine) == before


def test_us_scores_export_loads_like_the_canonical_scores(with_patients):
    engine = with_patients
    r = load_file(
        engine,
        MESSY / "us_scores.csv",
        mapping=load_mapping(MAPPINGS / "example_us_scores.toml"),
        as_of=AS_OF,
    )
    assert (r.status, r.rows_rejected) == ("loaded", 0), rows(engine, select(etl_rejects))
    _assert_same_as_canonical(engine, SAMPLE / "scores.csv")


def test_xlsx_visits_load_like_the_canonical_visits(with_patients, tmp_path):
    engine = with_patients
    mapping_file = MAPPINGS / "example_xlsx_visits.toml"
    r = load_file(engine, MESSY / "visits.xlsx", mapping=load_mapping(mapping_file), as_of=AS_OF)
    assert (r.kind, r.status, r.rows_rejected) == ("visits", "loaded", 0), rows(engine, select(etl_rejects))
    _assert_same_as_canonical(engine, SAMPLE / "visits.csv")
    # without header_row the header is found below the merged title rows
    found = tmp_path / "found.toml"
    found.write_text(mapping_file.read_text(encoding="utf-8").replace("header_row = 3", ""), encoding="utf-8")
    again = load_file(engine, MESSY / "visits.xlsx", mapping=load_mapping(found), as_of=AS_OF)
    assert (again.rows_rejected, again.rows_inserted, again.rows_updated) == (0, 0, 0)


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, data in sheets.items():
        ws = wb.create_sheet(name)
        for row in data:
            ws.append(row)
    wb.save(path)
    return path


def test_xlsx_typed_cells_first_sheet_and_rejects_with_sheet_rows(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = _workbook(
        tmp_path / "scores.xlsx",
        {
            "Scores": [
                ["Scores export", None, None],  # a title row
                [],
                [*SCORES_HEADER, None, None],  # trailing empty columns
                ["P1", datetime(2026, 9, 1, 9, 30), "pain_leg", 3.74, "left"],
                ["P2", date(2026, 9, 2), "odi", 40, None],
                [],
                ["P3", "2026-09-03", "pain_leg", "7/10", "L"],
                ["P3", "2026-09-04", "odi", "7/10", None],  # "x/10" only for 0-10 measures
                ["P1", datetime(2027, 1, 1), "pain_leg", 5, None],
            ],
            "Other": [["nothing", "here"]],
        },
    )
    r = load_file(engine, path, as_of=AS_OF)
    assert (r.kind, r.rows_read, r.rows_inserted, r.rows_rejected) == ("scores", 5, 3, 2)
    got = sorted((p, m, str(t), v) for p, m, t, _, v in rows(engine, select(*SCORE_COLS)))
    assert got == [
        ("P1", "pain_leg", "2026-09-01 09:30:00", 3.74),
        ("P2", "odi", "2026-09-02 00:00:00", 40.0),
        ("P3", "pain_leg", "2026-09-03 00:00:00", 7.0),
    ]
    rejects = {x.source_line: x for x in rows(engine, select(etl_rejects))}
    assert set(rejects) == {8, 9}  # the sheet's own row numbers
    assert "not a number '7/10'" in rejects[8].reasons and rejects[8].raw_row == "P3,2026-09-04,odi,7/10,"
    assert "in the future" in rejects[9].reasons


def test_xlsx_named_sheet_decimal_comma_and_date_format(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = _workbook(
        tmp_path / "eu.xlsx",
        {
            "Info": [["see sheet Daten"]],
            "Daten": [["Patient", "Datum", "Messung", "Wert"], ["P1", date(2026, 9, 1), "pain_leg", 6.5]],
        },
    )
    mapping = tmp_path / "eu.toml"
    mapping.write_text(
        '[source]\nsheet = "Daten"\ndecimal = ","\n[columns]\nPatient = "patient_id"\nDatum = "recorded_at"\n'
        'Messung = "measure"\nWert = "value"\n[dates]\nrecorded_at = "%d.%m.%Y"\n',
        encoding="utf-8",
    )
    r = load_file(engine, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (1, 0)
    assert rows(engine, select(scores.c.value))[0][0] == 6.5
    mapping.write_text('[source]\nsheet = "Missing"\n', encoding="utf-8")
    bad = load_file(engine, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert bad.status == "failed" and "no sheet named 'Missing' (sheets: Info, Daten)" in bad.message


def test_csv_trailing_empty_columns_and_out_of_ten(engine, tmp_path):
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    path = tmp_path / "s.csv"
    path.write_bytes(
        b"\xef\xbb\xbfpatient_id,recorded_at,measure,value,side,,\r\n"
        b"P1,2026-09-01,pain_leg,7 out of 10,left,,\r\n"
        b'P2,2026-09-01,numbness,"6,5/10",,,\r\n'
        b"P3,2026-09-01,pain_back,11/10,,,\r\n"
    )
    r = load_file(engine, path, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (2, 1)
    assert sorted(v for (v,) in rows(engine, select(scores.c.value))) == [6.5, 7.0]
    assert "outside 0-10" in rows(engine, select(etl_rejects.c.reasons))[0][0]
