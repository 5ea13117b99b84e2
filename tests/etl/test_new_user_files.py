"""Exports nobody on the team wrote, as a new clinic sends them: every row loads or is rejected with its reason, a file
that cannot be read fails with one line, a bad mapping fails the mapping (not the load), and `inspect` drafts a
mapping that fits. Each test is a case that crashed, loaded a wrong value or misled before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from etl.inspect import guess, report
from etl.load import EXIT_FILE_ERROR, exit_code, load_file
from etl.mapping import MappingError, load_mapping
from tests.etl.helpers import AS_OF, count, patients_file, rows
from warehouse.db import make_engine
from warehouse.schema import etl_rejects, patients, scores

SCORES = "patient_id,recorded_at,measure,value,side\n"


@pytest.fixture
def known(sqlite_engine: Engine, tmp_path: Path) -> Engine:
    assert load_file(sqlite_engine, patients_file(tmp_path), as_of=AS_OF).rows_rejected == 0
    return sqlite_engine


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _rejects(engine: Engine) -> dict[int, str]:
    return dict(rows(engine, select(etl_rejects.c.source_line, etl_rejects.c.reasons)))


def _mapping(tmp_path: Path, text: str):
    return load_mapping(_write(tmp_path / "m.toml", text))


def test_utc_offsets_that_differ_load_at_their_wall_clock_time(known, tmp_path):
    # ISO 8601 allows an hour-only offset (+01); two offsets in one file made pandas refuse the column: a traceback
    path = _write(
        tmp_path / "s.csv",
        SCORES
        + "P1,2026-10-24T08:00:00+02,pain_leg,5,\nP1,2026-10-26T08:00:00+01,pain_leg,4,\n"
        + "P1,2026-10-27T08:00:00,pain_leg,3,\n",
    )
    r = load_file(known, path, as_of=AS_OF)
    assert (r.status, r.rows_inserted, r.rows_rejected) == ("loaded", 3, 0)
    times = sorted(str(t)[:19] for (t,) in rows(known, select(scores.c.recorded_at)))
    assert times == ["2026-10-24 08:00:00", "2026-10-26 08:00:00", "2026-10-27 08:00:00"]


def test_mapping_date_format_with_offsets_across_a_dst_change(known, tmp_path):
    m = _mapping(tmp_path, '[dates]\nrecorded_at = "%d.%m.%Y %H:%M %z"\n')
    path = _write(
        tmp_path / "s.csv",
        SCORES
        + "P1,24.10.2026 08:00 +0200,pain_leg,5,\nP1,26.10.2026 08:00 +0100,pain_leg,4,\nP1,junk,odi,3,\n"
        + "P1,27.10.2026,odi,2,\n",
    )
    r = load_file(known, path, mapping=m, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (3, 1)
    assert _rejects(known) == {4: "recorded_at: not a valid date 'junk'"}
    times = sorted(str(t)[:19] for (t,) in rows(known, select(scores.c.recorded_at)))
    assert times == ["2026-10-24 08:00:00", "2026-10-26 08:00:00", "2026-10-27 00:00:00"]


@pytest.mark.parametrize("when", ["2026-10", "2026", "2026-10Z"])
def test_a_timestamp_without_its_day_is_rejected(known, tmp_path, when):
    # ISO 8601 reduced precision: pandas read '2026-10' as 2026-10-01 00:00 and loaded it silently
    path = _write(tmp_path / "s.csv", SCORES + f"P1,{when},pain_leg,5,\nP1,20261028,pain_leg,4,\n")
    r = load_file(known, path, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (1, 1)
    assert _rejects(known) == {2: f"recorded_at: not a valid date '{when}'"}


def test_a_date_alone_in_a_date_time_format_column_is_midnight(known, tmp_path):
    # "a date alone means 00:00" held only without a [dates] format: with one, the date-only rows were rejected
    m = _mapping(tmp_path, '[dates]\nrecorded_at = "%d.%m.%Y %H:%M"\n')
    path = _write(tmp_path / "s.csv", SCORES + "P1,05.10.2026 08:30,pain_leg,5,\nP1,06.10.2026,pain_leg,4,\n")
    r = load_file(known, path, mapping=m, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (2, 0)
    times = sorted(str(t)[:19] for (t,) in rows(known, select(scores.c.recorded_at)))
    assert times == ["2026-10-05 08:30:00", "2026-10-06 00:00:00"]


def test_a_fractional_birth_year_is_rejected_not_truncated(sqlite_engine, tmp_path):
    path = _write(
        tmp_path / "p.csv",
        "patient_id,clinic_id,therapist_id,birth_year,sex,episode_start\n"
        "P1,C1,T1,1970.5,F,2026-09-01\nP2,C1,T1,1970.0,F,2026-09-01\n",
    )
    r = load_file(sqlite_engine, path, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (1, 1)
    assert _rejects(sqlite_engine) == {2: "birth_year: not a year '1970.5'"}
    assert rows(sqlite_engine, select(patients.c.patient_id, patients.c.birth_year)) == [("P2", 1970)]


def test_decimal_comma_file_does_not_read_a_point_as_thousands_in_6_5(known, tmp_path):
    # with decimal = "," the VAS value 6.5 (mm) was read as 65 and passed the 0-100 range check
    m = _mapping(tmp_path, '[source]\ndecimal = ","\ndelimiter = ";"\n')
    path = _write(
        tmp_path / "s.csv",
        "patient_id;recorded_at;measure;value\nP1;2026-10-05;vas_pain;6.5\nP1;2026-10-05;odi;42,5\n"
        "P1;2026-10-06;odi;1.234\nP1;2026-10-07;vas_pain;6,5\n",
    )
    r = load_file(known, path, mapping=m, as_of=AS_OF)
    assert (r.rows_inserted, r.rows_rejected) == (2, 2)
    assert _rejects(known) == {
        2: "value: not a number '6.5'",
        4: "value: value '1.234' outside 0-100",  # a thousands separator, as documented
    }
    assert sorted(v for (v,) in rows(known, select(scores.c.value))) == [6.5, 42.5]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_export_names_the_encoding_and_loads_with_it(known, tmp_path, encoding):
    # Excel's "Unicode Text": tab-separated UTF-16. It failed as "binary content", even with encoding = "utf-16"
    path = _write(tmp_path / "s.txt", SCORES.replace(",", "\t") + "P1\t2026-10-05\tpain_leg\t5\t\n", encoding)
    r = load_file(known, path, as_of=AS_OF)
    assert r.status == "failed" and exit_code([r]) == EXIT_FILE_ERROR
    assert r.message.startswith("s.txt: the file is UTF-16") and f'encoding = "{encoding}"' in r.message
    m = _mapping(tmp_path, f'[source]\nencoding = "{encoding}"\ndelimiter = "\\t"\n')
    r = load_file(known, path, mapping=m, as_of=AS_OF)
    assert (r.status, r.rows_inserted) == ("loaded", 1)


def test_inspect_drafts_a_mapping_for_a_utf16_export(known, tmp_path):
    # the draft said cp1252 and held NUL characters; the dry run then failed on its own temporary TOML file
    path = _write(tmp_path / "s.txt", SCORES.replace(",", "\t") + "P1\t2026-10-05\tpain_leg\t5\t\n", "utf-16")
    g = guess(path)
    assert (g.encoding, g.delimiter, g.kind) == ("utf-16", "\t", "scores")
    draft = _write(tmp_path / "draft.toml", g.toml())
    assert load_file(known, path, mapping=load_mapping(draft), as_of=AS_OF).rows_inserted == 1


def test_inspect_knows_every_catalog_measure(tmp_path):
    # schober, sbi, fingertip_floor, promis_*: loaded by name, but the draft called them "not recognised"
    path = _write(
        tmp_path / "v.csv",
        "Patient;Termin;Schober;SBI;Finger-Boden-Abstand\nP1;05.10.2026;3,5;12;20\n",
        "cp1252",
    )
    g = guess(path)
    assert g.kind == "visits"
    assert {g.columns[h] for h in ("Schober", "SBI", "Finger-Boden-Abstand")} == {
        "schober",
        "sbi",
        "fingertip_floor",
    }
    long = _write(tmp_path / "s.csv", SCORES + "P1,2026-10-05,schober,3,\nP1,2026-10-05,promis_pf,40,\n")
    assert "measure" not in guess(long).unknown_labels


def test_inspect_maps_mixed_date_and_date_time_cells_and_empty_date_columns(tmp_path):
    path = _write(
        tmp_path / "p.csv",
        "Patienten-ID;Praxis;Therapeut;Geburtsjahr;Geschlecht;Behandlungsbeginn;Behandlungsende\n"
        "P1;C1;T1;1970;F;01.10.2026;\n",
    )
    g = guess(path)
    assert g.kind == "patients"
    assert g.columns["Behandlungsbeginn"] == "episode_start" and g.columns["Behandlungsende"] == "episode_end"
    # the discharge column is empty in this export, the next one will have dates written the same way
    assert g.dates == {"episode_start": "%d.%m.%Y", "episode_end": "%d.%m.%Y"}
    scores_file = _write(
        tmp_path / "s.csv", "Patient;Datum;Messung;Wert\nP1;05.10.2026 08:00;odi;3\nP1;06.10.2026;odi;4\n"
    )
    g = guess(scores_file)
    assert g.columns["Datum"] == "recorded_at" and g.dates == {"recorded_at": "%d.%m.%Y %H:%M"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[source]\nskip_rows = "x"\n', "skip_rows"),
        ("[source]\nskip_rows = -1\n", "skip_rows"),
        ('[source]\ndelimiter = ";;"\n', "delimiter"),
        ('[source]\ndelimiter = ""\n', "delimiter"),
        ('[source]\ndecimal = ";"\n', "decimal"),
        ('[dates]\nformat = "%Q"\n', "bad directive"),
        ('[dates]\nrecorded_at = "dd.mm.yyyy"\n', "not a date format"),
        ('[units]\nvas = "cm"\n', "'vas' is not a measure code"),
    ],
)
def test_a_bad_mapping_value_fails_the_mapping_with_one_line(tmp_path, text, expected):
    # skip_rows = "x" and %Q were tracebacks; -1 shifted every reject's line number; ";;" and a [units] typo were
    # accepted silently
    with pytest.raises(MappingError) as err:
        _mapping(tmp_path, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "m.toml")) and expected in message and "\n" not in message


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ('[{"patient_id": "P1", "value": 3}]\n', "looks like JSON"),
        ("<html><body>Session expired</body></html>\n", "looks like HTML"),
    ],
)
def test_not_a_csv_under_a_csv_name_says_what_it_is(known, tmp_path, body, hint):
    r = load_file(known, _write(tmp_path / "export.csv", body), as_of=AS_OF)
    assert r.status == "failed" and r.message.startswith("export.csv: ") and hint in r.message
    assert "\n" not in r.message and count(known, scores) == 0


def test_comma_file_with_a_tab_mapping_gets_the_separator_hint(known, tmp_path):
    m = _mapping(tmp_path, '[source]\ndelimiter = "\\t"\n')
    r = load_file(
        known, _write(tmp_path / "s.csv", SCORES + "P1,2026-10-05,odi,3,\n"), mapping=m, as_of=AS_OF
    )
    assert r.status == "failed" and "looks comma-separated" in r.message and 'delimiter = ","' in r.message


def test_inspect_report_on_a_utf16_file_is_not_a_toml_error(tmp_path):
    path = _write(tmp_path / "s.txt", SCORES.replace(",", "\t") + "P1\t2026-10-05\tpain_leg\t5\t\n", "utf-16")
    text, code = report(path, None, None, AS_OF, None)
    assert "not valid TOML" not in text and 'encoding = "utf-16"' in text and code == 0


def test_rejects_cuts_a_very_long_row_on_screen(sqlite_url, tmp_path, capsys):
    # one runaway cell of 2 MB printed 2 MB to the terminal
    from etl.cli import main

    engine = make_engine(sqlite_url)
    load_file(engine, patients_file(tmp_path), as_of=AS_OF)
    engine.dispose()
    path = _write(tmp_path / "s.csv", SCORES + "P1,2026-10-05,pain_leg,5," + "x" * 200_000 + "\n")
    assert main(["load", str(path), "--db", sqlite_url, "--as-of", AS_OF.isoformat()]) == 3
    capsys.readouterr()
    assert main(["rejects", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert len(out) < 3_000 and "200,025 characters in all; --json shows the whole row" in out


def test_a_folder_is_not_called_a_missing_file(known, tmp_path):
    (tmp_path / "inbox").mkdir()
    r = load_file(known, tmp_path / "inbox", as_of=AS_OF)
    assert r.status == "failed" and r.message == "inbox: is a folder; pass its files (e.g. inbox/*.csv)"


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n\r\n"])
def test_a_file_with_only_a_byte_order_mark_is_empty(known, tmp_path, content):
    path = tmp_path / "s.csv"
    path.write_bytes(content)
    r = load_file(known, path, as_of=AS_OF)
    assert r.status == "failed" and r.message == "s.csv: the file is empty"
