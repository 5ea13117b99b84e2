"""`python -m etl inspect`: guesses (encoding, separator, decimal, title lines, dates, headers, labels), a draft
mapping that loads the file, and a dry run that writes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from etl.cli import main
from etl.inspect import guess, report
from etl.load import load_file
from etl.mapping import load_mapping
from tests.etl.helpers import AS_OF, count
from warehouse.schema import etl_batches, etl_rejects, scores

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_guesses_a_european_emr_export():
    g = guess(SAMPLE / "mapped" / "emr_visits.csv")
    assert (g.format, g.kind, g.delimiter, g.decimal, g.skip_rows) == ("csv", "visits", ";", ",", 1)
    assert g.encoding in ("cp1252", "latin-1")
    assert g.dates == {"visit_date": "%d.%m.%Y"}
    assert g.columns["SLR left (°)"] == "slr_left" and g.columns["VAS (cm)"] == "vas_pain"
    assert "Bemerkung" not in g.columns


def test_draft_mapping_loads_the_us_export(engine, tmp_path):
    assert load_file(engine, SAMPLE / "patients.csv", as_of=AS_OF).rows_rejected == 0
    g = guess(SAMPLE / "messy" / "us_scores.csv")
    assert g.kind == "scores" and g.dates == {"recorded_at": "%m/%d/%Y %I:%M %p"}
    draft = tmp_path / "draft.toml"
    draft.write_text(g.toml(), encoding="utf-8")
    assert '"Leg pain" = "pain_leg"' in g.toml()
    r = load_file(engine, SAMPLE / "messy" / "us_scores.csv", mapping=load_mapping(draft), as_of=AS_OF)
    assert (r.rows_read, r.rows_inserted, r.rows_rejected) == (31, 31, 0)


def test_draft_for_sessions_lists_unknown_labels_and_missing_columns():
    text = guess(SAMPLE / "mapped" / "home_app_sessions.csv").toml()
    assert '"done?" = "status"' in text and 'session_date = "%m/%d/%Y"' in text
    assert '# "Didn\'t open app" = ?' in text  # a label to map by hand
    assert '# setting = "?"' in text  # required, not in the file
    assert '"target minutes" = "prescribed_min"' in text


def test_dry_run_reports_counts_and_top_reasons_and_writes_nothing(db_url, tmp_path):
    from warehouse.db import make_engine

    engine = make_engine(db_url)
    load_file(engine, SAMPLE / "patients.csv", as_of=AS_OF)
    path = SAMPLE / "dirty" / "scores.csv"
    batches = count(engine, etl_batches)
    text, code = report(path, None, db_url, AS_OF, None)
    assert code == 0 and "rolled back: nothing was written" in text
    assert "would load:" in text and "top reasons for rejects:" in text
    assert "(first on line " in text
    assert count(engine, etl_batches) == batches and count(engine, scores) == 0
    assert count(engine, etl_rejects) == 0
    # the dry run and a real load agree
    real = load_file(engine, path, as_of=AS_OF)
    assert f"{real.rows_rejected:,} rejected" in text and f"{real.rows_inserted:,} new" in text
    engine.dispose()


def test_cli_inspect_xlsx_and_fhir_without_a_warehouse(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/warehouse.sqlite does not exist here: a throwaway one is used
    before = _digest(SAMPLE / "messy" / "visits.xlsx")
    assert main(["inspect", str(SAMPLE / "messy" / "visits.xlsx"), "--as-of", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "sheet 'Visits'" in out and "header_row = 3" in out and "a new empty warehouse" in out
    assert "11 rows read" in out and "unknown patient" in out
    assert not (tmp_path / "data").exists() and _digest(SAMPLE / "messy" / "visits.xlsx") == before
    fhir = tmp_path / "obs.ndjson"
    fhir.write_text(
        '{"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1970-01-01"}\n'
        '{"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org",'
        ' "code": "72514-3"}]}, "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-09-01",'
        ' "valueQuantity": {"value": 3.74}}\n',
        encoding="utf-8",
    )
    assert main(["inspect", str(fhir), "--as-of", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "resources: Patient x1, Observation x1" in out and 'clinic_id = "CHANGE-ME"' in out
    assert "2 rows read, 2 new" in out


def test_cli_inspect_with_a_mapping_and_a_bad_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "inspect",
            str(SAMPLE / "mapped" / "home_app_sessions.csv"),
            "--mapping",
            str(ROOT / "data" / "mappings" / "example_home_app.toml"),
            "--as-of",
            "2026-11-20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "mapping: " in out and "draft mapping" not in out
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["inspect", str(empty)]) == 2
    assert "empty" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["sessions.csv", "visits.csv", "patients.csv", "scores.csv"])
def test_canonical_files_need_no_mapping(name):
    g = guess(SAMPLE / name)
    assert g.kind == name.removesuffix(".csv") and not g.dates and "[columns]" not in g.toml()
