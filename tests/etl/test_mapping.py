"""Mapping files: the two examples in data/mappings/ load their exports to the same rows as the canonical samples;
labels, dates, units and decimal commas map; a bad mapping file fails with one clear line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from etl.load import EXIT_FILE_ERROR, EXIT_OK, exit_code, load_file
from etl.mapping import MappingError, load_mapping
from tests.etl.helpers import AS_OF, count, rows, write_csv
from warehouse.schema import etl_batches, etl_rejects, fact_revisions, patients, scores, sessions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
MAPPINGS = ROOT / "data" / "mappings"
EMR = MAPPINGS / "example_emr.toml"
HOME_APP = MAPPINGS / "example_home_app.toml"
EMR_FILE = SAMPLE / "mapped" / "emr_visits.csv"
HOME_APP_FILE = SAMPLE / "mapped" / "home_app_sessions.csv"

SCORE_COLS = [scores.c.patient_id, scores.c.measure, scores.c.recorded_at, scores.c.side, scores.c.value]
SESSION_COLS = [c for c in sessions.c if c.name not in ("session_id", "batch_id", "source_line")]


@pytest.fixture
def with_patients(engine: Engine) -> Engine:
    result = load_file(engine, SAMPLE / "patients.csv", as_of=AS_OF)
    assert result.rows_rejected == 0
    return engine


def _snapshot(engine: Engine, cols) -> list[tuple]:
    return sorted(tuple(r) for r in rows(engine, select(*cols)))


def _rejects(engine: Engine, batch_id: int) -> dict[int, tuple[str, str]]:
    q = select(etl_rejects.c.source_line, etl_rejects.c.reasons, etl_rejects.c.raw_row).where(
        etl_rejects.c.batch_id == batch_id
    )
    return {r.source_line: (r.reasons, r.raw_row) for r in rows(engine, q)}


def _assert_same_as_canonical(engine: Engine, cols, canonical: Path, n: int) -> None:
    """Loading the canonical twin after the mapped file finds every row already there, value for value."""
    before = _snapshot(engine, cols)
    twin = load_file(engine, canonical, as_of=AS_OF)
    assert (twin.rows_read, twin.rows_unchanged, twin.rows_inserted, twin.rows_updated) == (n, n, 0, 0)
    assert twin.rows_rejected == 0 and count(engine, fact_revisions) == 0
    assert _snapshot(engine, cols) == before


# --- the two examples -------------------------------------------------------------------------------------------
def test_emr_export_loads_like_the_canonical_visits(with_patients):
    engine = with_patients
    result = load_file(engine, EMR_FILE, mapping=load_mapping(EMR), as_of=AS_OF)
    canonical = SAMPLE / "visits.csv"
    n = len(canonical.read_text(encoding="utf-8").splitlines()) - 1
    assert (result.kind, result.status, result.rows_read, result.rows_inserted) == ("visits", "loaded", n, n)
    assert result.message == "ignored columns (not measure codes): bemerkung"
    assert exit_code([result]) == EXIT_OK
    batch = rows(engine, select(etl_batches.c.mapping).where(etl_batches.c.batch_id == result.batch_id))
    assert batch[0].mapping.startswith("example_emr (")  # name and the mapping file's sha256 prefix
    _assert_same_as_canonical(engine, SCORE_COLS, canonical, n)


def test_home_app_export_loads_like_the_canonical_sessions(with_patients, tmp_path):
    engine = with_patients
    result = load_file(engine, HOME_APP_FILE, mapping=load_mapping(HOME_APP), as_of=AS_OF)
    with (SAMPLE / "sessions.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        twin = [r for r in reader if r[2] == "home" and r[0] in ("S03", "S04")]
    n = len(twin)
    assert (result.kind, result.status, result.rows_read, result.rows_inserted) == (
        "sessions",
        "loaded",
        n,
        n,
    )
    statuses = rows(engine, select(sessions.c.status).distinct())
    assert {s.status for s in statuses} == {"completed", "partial", "skipped", "missed"}
    _assert_same_as_canonical(engine, SESSION_COLS, write_csv(tmp_path / "home.csv", header, twin), n)


def test_emr_export_without_its_mapping_fails_one_line(with_patients):
    result = load_file(with_patients, EMR_FILE, as_of=AS_OF)
    assert result.status == "failed" and exit_code([result]) == EXIT_FILE_ERROR
    assert result.message.startswith("emr_visits.csv: not readable as utf-8") and "encoding" in result.message
    assert "\n" not in result.message
    assert count(with_patients, scores) == 0


def test_emr_rejects_name_the_line_of_their_file(with_patients, tmp_path):
    """One title line above the header (skip_rows = 1): the first data row is line 3."""
    text = EMR_FILE.read_bytes().decode("latin-1").splitlines()
    bad = text[2].replace(";6,5;5;6;", ";6,5;5;16;")  # numbness 16 on a 0-10 scale
    path = tmp_path / "emr.csv"
    path.write_bytes("\r\n".join([text[0], text[1], bad, *text[3:]]).encode("latin-1"))
    result = load_file(with_patients, path, mapping=load_mapping(EMR), as_of=AS_OF)
    assert (result.rows_read, result.rows_rejected) == (11, 1)
    rejects = _rejects(with_patients, result.batch_id)
    assert set(rejects) == {3}
    assert rejects[3][0] == "numbness: value '16' outside 0-10"
    assert rejects[3][1].startswith("S01;10.09.2026;")  # as it stood in the file, with its own separator


# --- what a mapping does, piece by piece ------------------------------------------------------------------------
def test_decimal_comma_and_european_dates(with_patients):
    load_file(with_patients, EMR_FILE, mapping=load_mapping(EMR), as_of=AS_OF)
    q = select(scores.c.recorded_at, scores.c.value).where(
        scores.c.patient_id == "S04", scores.c.measure == "pain_leg"
    )
    got = sorted((r.recorded_at.date().isoformat(), r.value) for r in rows(with_patients, q))
    assert got == [("2026-10-08", 8.5), ("2026-11-05", 7.0)]


def test_unit_conversion_to_the_catalog_unit(with_patients, tmp_path):
    engine = with_patients
    load_file(engine, EMR_FILE, mapping=load_mapping(EMR), as_of=AS_OF)
    q = select(scores.c.value).where(
        scores.c.patient_id == "S01",
        scores.c.measure == "vas_pain",
        scores.c.recorded_at == datetime(2026, 9, 10),
    )
    assert rows(engine, q)[0].value == 65.0  # "6,5" cm -> 65 mm

    mapping = tmp_path / "units.toml"
    mapping.write_text(
        '[units]\nfingertip_floor = "in"\nslr_left = "rad"\nodi = "fraction"\nvas_pain = "mm"\n'
    )
    path = write_csv(
        tmp_path / "scores.csv",
        ["patient_id", "recorded_at", "measure", "value"],
        [
            ["S02", "2026-10-01", "fingertip_floor", "10"],  # 2 -> 25.4 cm
            ["S02", "2026-10-01", "slr_left", "0.5"],  # 3 -> 28.6 degrees
            ["S02", "2026-10-01", "odi", "0.42"],  # 4 -> 42 %
            ["S02", "2026-10-01", "vas_pain", "40"],  # 5 already the catalog unit
            ["S02", "2026-10-01", "pain_leg", "6"],  # 6 no unit given: as it is
            ["S02", "2026-10-02", "fingertip_floor", "50"],  # 7 -> 127 cm: outside 0-100
        ],
    )
    result = load_file(engine, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (5, 1)
    got = dict(
        rows(engine, select(scores.c.measure, scores.c.value).where(scores.c.batch_id == result.batch_id))
    )
    assert got == pytest.approx(
        {"fingertip_floor": 25.4, "slr_left": 28.6479, "odi": 42, "vas_pain": 40, "pain_leg": 6}
    )
    assert (
        _rejects(engine, result.batch_id)[7][0] == "value: value '50' outside 0-100"
    )  # the value as in the file


LABEL_HEADER = ["patient_id", "session_date", "setting", "exercise", "exercise_type", "status"]
LABEL_ROWS = [
    ["S01", "2026-10-01", "home", "Bird dog", "core_strengthening", "Partly"],  # 2: the mapping's label
    ["S01", "2026-10-02", "home", "Bird dog", "core_strengthening", "  NOPE "],  # 3: the mapping's, any case
    ["S01", "2026-10-03", "home", "Bird dog", "core_strengthening", "Half"],  # 4: built in
    [
        "S01",
        "2026-10-04",
        "Heimprogramm",
        "Bird dog",
        "core_strengthening",
        "done",
    ],  # 5: the mapping's setting
]
LABEL_MAPPING = """
[values.status]
"partly" = "partial"
"Nope" = "skipped"
[values.setting]
"Heimprogramm" = "home"
[values.sex]
"weiblich" = "F"
"männlich" = "M"
"""


def test_labels_unknown_without_a_mapping(with_patients, tmp_path):
    result = load_file(with_patients, write_csv(tmp_path / "a.csv", LABEL_HEADER, LABEL_ROWS), as_of=AS_OF)
    rejects = _rejects(with_patients, result.batch_id)
    assert set(rejects) == {2, 3, 5} and result.rows_inserted == 1
    assert rejects[2][0] == "status: unknown value 'Partly' (completed, partial, skipped or missed)"
    assert rejects[5][0] == "setting: unknown value 'Heimprogramm' (clinic or home)"


def test_label_mapping_adds_to_the_builtin_labels(with_patients, tmp_path):
    engine = with_patients
    mapping = tmp_path / "labels.toml"
    mapping.write_text(LABEL_MAPPING, encoding="utf-8")
    m = load_mapping(mapping)
    result = load_file(
        engine, write_csv(tmp_path / "b.csv", LABEL_HEADER, LABEL_ROWS), mapping=m, as_of=AS_OF
    )
    assert (result.rows_rejected, result.rows_inserted) == (0, 4)
    q = select(sessions.c.session_date, sessions.c.setting, sessions.c.status)
    got = {r.session_date.isoformat(): (r.setting, r.status) for r in rows(engine, q)}
    assert got == {
        "2026-10-01": ("home", "partial"),
        "2026-10-02": ("home", "skipped"),
        "2026-10-03": ("home", "partial"),
        "2026-10-04": ("home", "completed"),
    }
    people = [
        ["M1", "C01", "T01", "1970", "Männlich", "2026-10-01"],
        ["M2", "C01", "T01", "1971", "WEIBLICH", "2026-10-01"],
    ]
    header = ["patient_id", "clinic_id", "therapist_id", "birth_year", "sex", "episode_start"]
    result = load_file(engine, write_csv(tmp_path / "p.csv", header, people), mapping=m, as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (2, 0)
    assert dict(
        rows(engine, select(patients.c.patient_id, patients.c.sex).where(patients.c.patient_id.like("M%")))
    ) == {
        "M1": "M",
        "M2": "F",
    }


def test_constants_fill_a_missing_required_column(with_patients, tmp_path):
    path = write_csv(
        tmp_path / "app.csv",
        ["patient_id", "session_date", "exercise", "exercise_type", "status"],
        [["S05", "2026-11-01", "Lumbar rotation", "range_of_motion", "yes"]],
    )
    missing = load_file(with_patients, path, as_of=AS_OF)
    assert missing.status == "failed" and "missing required column(s): setting" in missing.message
    mapping = tmp_path / "c.toml"
    mapping.write_text('[constants]\nsetting = "home"\n', encoding="utf-8")
    result = load_file(with_patients, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (result.status, result.rows_inserted) == ("loaded", 1)


def test_mapping_file_defaults_and_fields():
    m = load_mapping(EMR)
    assert (m.name, m.kind, m.encoding, m.delimiter, m.decimal, m.skip_rows) == (
        "example_emr",
        "visits",
        "latin-1",
        ";",
        ",",
        1,
    )
    assert m.date_format_for("visit_date") == "%d.%m.%Y" and m.units == {"vas_pain": "cm"}
    h = load_mapping(HOME_APP)
    assert h.date_format_for("session_date") == "%m/%d/%Y" and h.date_format is None
    assert h.constants == {"setting": "home"} and h.labels_for("status")["didn't open app"] == "missed"


# --- bad mapping files ------------------------------------------------------------------------------------------
def test_unknown_section_is_an_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[columns]\n"Patient ID" = "patient_id"\n[colums]\n"x" = "y"\n')
    with pytest.raises(MappingError, match=r"m\.toml: unknown section\(s\) \['colums'\]"):
        load_mapping(path)


def test_invalid_toml_is_an_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[columns]\n"Patient ID" = patient_id\n')
    with pytest.raises(MappingError, match=r"m\.toml: not valid TOML \("):
        load_mapping(path)


def test_missing_mapping_file_is_an_error(tmp_path):
    with pytest.raises(MappingError, match=r"nope\.toml: mapping file not found"):
        load_mapping(tmp_path / "nope.toml")


def test_cli_bad_mapping_exit_2_one_line(engine, tmp_path):
    env = {**os.environ, "OUTCOMES_DB_URL": engine.url.render_as_string(hide_password=False)}
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\n")
    for mapping in (bad, tmp_path / "missing.toml"):
        res = subprocess.run(
            [sys.executable, "-m", "etl", "load", str(EMR_FILE), "--mapping", str(mapping)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == EXIT_FILE_ERROR
        assert res.stderr.startswith("error: ") and mapping.name in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert count(engine, etl_batches) == 0


# --- mapping mistakes and edge cases found while writing these (fixed in etl/)
def test_exercise_type_labels_map(with_patients, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[values.exercise_type]\n"Core" = "core_strengthening"\n')
    path = write_csv(
        tmp_path / "s.csv",
        ["patient_id", "session_date", "setting", "exercise", "exercise_type", "status"],
        [["S01", "2026-10-01", "home", "Bird dog", "Core", "completed"]],
    )
    result = load_file(with_patients, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (1, 0)


def test_measure_labels_map(with_patients, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[values.measure]\n"Leg pain NPRS" = "pain_leg"\n')
    path = write_csv(
        tmp_path / "s.csv",
        ["patient_id", "recorded_at", "measure", "value"],
        [["S01", "2026-10-01", "Leg pain NPRS", "5"]],
    )
    result = load_file(with_patients, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (result.rows_inserted, result.rows_rejected) == (1, 0)


def test_label_mapped_to_a_non_canonical_value_is_caught(with_patients, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[values.status]\n"Yes" = "finished"\n')
    path = write_csv(
        tmp_path / "s.csv",
        ["patient_id", "session_date", "setting", "exercise", "exercise_type", "status"],
        [["S01", "2026-10-01", "home", "Bird dog", "core_strengthening", "Yes"]],
    )
    try:
        m = load_mapping(mapping)
    except MappingError as exc:  # acceptable fix: refuse the mapping
        assert "finished" in str(exc)
        return
    result = load_file(with_patients, path, mapping=m, as_of=AS_OF)
    # acceptable fix: reject the row with a reason naming the value
    assert result.status == "loaded_with_rejects", result.message
    assert "finished" in _rejects(with_patients, result.batch_id)[2][0]


def test_unit_without_a_conversion_is_an_error(with_patients, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[units]\nfingertip_floor = "inches"\n')
    path = write_csv(
        tmp_path / "s.csv",
        ["patient_id", "recorded_at", "measure", "value"],
        [["S01", "2026-10-01", "fingertip_floor", "10"]],
    )
    try:
        m = load_mapping(mapping)
    except MappingError as exc:
        assert "inches" in str(exc)
        return
    result = load_file(with_patients, path, mapping=m, as_of=AS_OF)
    assert count(with_patients, scores) == 0, "10 inches loaded as 10 cm"
    assert "inches" in (result.message or "") + str(_rejects(with_patients, result.batch_id))


def test_reload_with_a_corrected_mapping_loads_the_rejected_rows(with_patients, tmp_path):
    path = write_csv(tmp_path / "a.csv", LABEL_HEADER, LABEL_ROWS)
    first = load_file(with_patients, path, as_of=AS_OF)
    assert first.rows_rejected == 3
    mapping = tmp_path / "labels.toml"
    mapping.write_text(LABEL_MAPPING, encoding="utf-8")
    again = load_file(with_patients, path, mapping=load_mapping(mapping), as_of=AS_OF)
    assert (again.status, again.rows_inserted, again.rows_rejected) == ("loaded", 3, 0), again.message
    assert count(with_patients, sessions) == 4


def test_unknown_source_key_is_an_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[source]\ndelimeter = ";"\n')
    with pytest.raises(MappingError, match="delimeter"):
        load_mapping(path)
