"""Property: a messy export (encoding, separator, decimal comma, line ends, date style, value spellings, units,
title row, trailing empty columns, its own headers) loads to the same warehouse content as the canonical file of the
same data, given the mapping that describes it."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from etl.load import load_file
from etl.mapping import load_mapping
from tests.etl.helpers import AS_OF, SCORES_HEADER, patients_file, rows
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.schema import scores, sessions

PATIENTS = ["P1", "P2", "P3"]
EXERCISES = {  # non-ASCII names, so that the encoding matters
    "Ischias-Gleiten für Anfänger": "nerve_mobilization",
    "Brücke": "glute_strengthening",
    "Bird dog": "core_strengthening",
    "Étirement piriforme": "stretching",
}
START = datetime(2026, 9, 1, 8, 0)
SCORE_COLS = [scores.c.patient_id, scores.c.measure, scores.c.recorded_at, scores.c.side, scores.c.value]
SESSION_COLS = [c for c in sessions.c if c.name not in ("session_id", "batch_id", "source_line")]

half_points = st.integers(0, 20).map(lambda n: n / 2)
score_row = st.tuples(
    st.sampled_from(PATIENTS),
    st.integers(0, 60 * 24 * 60).map(lambda m: START + timedelta(minutes=m)),
    st.sampled_from(["pain_leg", "pain_back", "numbness", "odi", "fingertip_floor"]),
    st.integers(0, 200),
    st.sampled_from(["", "left", "right", "both"]),
)
session_row = st.tuples(
    st.sampled_from(PATIENTS),
    st.integers(0, 70).map(lambda d: (START + timedelta(days=d)).date()),
    st.sampled_from(["clinic", "home"]),
    st.sampled_from(sorted(EXERCISES)),
    st.sampled_from(["completed", "partial", "skipped"]),
    st.integers(1, 5),
    st.one_of(st.none(), half_points.map(lambda v: v * 2)),  # duration_min, maybe .5 / empty
    st.one_of(st.none(), half_points),  # pain_during
    st.sampled_from(["", "tired", "back hurt; stopped, sorry", "line one\nline two"]),
)
style = st.fixed_dictionaries(
    {
        "encoding": st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252"]),
        "delimiter": st.sampled_from([",", ";", "\t"]),
        "decimal": st.sampled_from([".", ","]),
        "newline": st.sampled_from(["\n", "\r\n"]),
        "dates": st.sampled_from(["iso", "us", "eu"]),
        "ratings": st.sampled_from(["plain", "slash", "out_of"]),
        "status": st.sampled_from(["words", "marks", "yes_no"]),
        "inches": st.booleans(),
        "title": st.booleans(),
        "trailing": st.booleans(),
        "renamed": st.booleans(),
    }
)
DATE_FORMATS = {
    "iso": (None, None),
    "us": ("%m/%d/%Y %I:%M %p", "%m/%d/%Y"),
    "eu": ("%d.%m.%Y %H:%M", "%d.%m.%Y"),
}
STATUS = {
    "words": {"completed": "Done", "partial": "Half", "skipped": "Skipped"},
    "marks": {"completed": "x", "partial": "partially", "skipped": "0"},
    "yes_no": {"completed": "Yes", "partial": "Partial", "skipped": "No"},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One migrated warehouse with P1-P3, copied for every example (migrating each time would be slow)."""
    tmp = tmp_path_factory.mktemp("messy-template")
    engine = make_engine(f"sqlite:///{tmp}/w.sqlite")
    upgrade(engine)
    load_file(engine, patients_file(tmp), as_of=AS_OF)
    engine.dispose()
    return tmp / "w.sqlite"


def _write(path: Path, header: list[str], data: list[list[str]], s: dict, canonical: bool) -> Path:
    buf = io.StringIO()
    delimiter = "," if canonical else s["delimiter"]
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n" if canonical else s["newline"])
    if s["title"] and not canonical:
        w.writerow(["Export from ClinicTool", "20.11.2026"])
    extra = ["", ""] if s["trailing"] and not canonical else []
    w.writerow(header + extra)
    for r in data:
        w.writerow(r + extra)
    encoding = "utf-8" if canonical else s["encoding"]
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def _num(v: float, s: dict, canonical: bool) -> str:
    text = f"{v:g}"
    return text if canonical or s["decimal"] == "." else text.replace(".", ",")


def _mapping(path: Path, s: dict, kind: str, renames: dict[str, str]) -> Path:
    lines = [
        "[source]",
        f'kind = "{kind}"',
        f'encoding = "{s["encoding"]}"',
        'delimiter = "{}"'.format("\\t" if s["delimiter"] == "\t" else s["delimiter"]),
        f'decimal = "{s["decimal"]}"',
        f"skip_rows = {int(s['title'])}",
    ]
    if s["renamed"]:
        lines.append("[columns]")
        lines += [f'"{theirs}" = "{ours}"' for ours, theirs in renames.items()]
    with_time, day = DATE_FORMATS[s["dates"]]
    if with_time:
        lines += ["[dates]", f'recorded_at = "{with_time}"', f'session_date = "{day}"']
    if s["inches"]:
        lines += ["[units]", 'fingertip_floor = "in"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _load_both(template: Path, tmp: Path, canonical: Path, messy: Path, mapping: Path) -> tuple:
    out = []
    for name, path, m in (("canonical", canonical, None), ("messy", messy, load_mapping(mapping))):
        db = tmp / f"{name}.sqlite"
        shutil.copy(template, db)
        engine = make_engine(f"sqlite:///{db}")
        result = load_file(engine, path, mapping=m, as_of=AS_OF, chunk_rows=7)
        out.append((engine, result))
    return tuple(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(score_row, min_size=1, max_size=25, unique_by=lambda r: (r[0], r[1], r[2], r[4])),
    s=style,
)
def test_messy_scores_load_like_canonical(template, tmp_path_factory, data, s):
    tmp = tmp_path_factory.mktemp("messy-scores")
    with_time, _ = DATE_FORMATS[s["dates"]]
    canonical_rows, messy_rows = [], []
    for pid, when, measure, n, side in data:
        if measure == "odi":
            value = float(n // 2)
        elif measure == "fingertip_floor":
            value = n / 4  # cm, 0-50
        else:
            value = (n % 21) / 2
        messy_value = value
        if measure == "fingertip_floor" and s["inches"]:
            inches = (n % 80) / 4
            messy_value, value = inches, inches * 2.54
        text = _num(messy_value, s, False)
        if measure in ("pain_leg", "pain_back", "numbness") and s["ratings"] != "plain":
            text += "/10" if s["ratings"] == "slash" else " out of 10"
        canonical_rows.append([pid, when.isoformat(), measure, repr(value), side])
        messy_rows.append(
            [pid, when.strftime(with_time) if with_time else when.isoformat(), measure, text, side]
        )
    renames = {
        "patient_id": "Patient",
        "recorded_at": "Date",
        "measure": "Test",
        "value": "Result",
        "side": "Side",
    }
    header = [renames[c] for c in SCORES_HEADER] if s["renamed"] else SCORES_HEADER
    canonical = _write(tmp / "scores.csv", SCORES_HEADER, canonical_rows, s, True)
    messy = _write(tmp / "messy.csv", header, messy_rows, s, False)
    (ce, cr), (me, mr) = _load_both(
        template, tmp, canonical, messy, _mapping(tmp / "m.toml", s, "scores", renames)
    )
    assert cr.rows_rejected == 0 and (mr.status, mr.rows_rejected) == (cr.status, 0), mr.message
    snap = [
        sorted((p, m, t, sd, round(v, 9)) for p, m, t, sd, v in rows(e, select(*SCORE_COLS)))
        for e in (ce, me)
    ]
    assert snap[0] == snap[1] and len(snap[0]) == len(data)
    ce.dispose()
    me.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(session_row, min_size=1, max_size=25, unique_by=lambda r: (r[0], r[1], r[2], r[3])),
    s=style,
)
def test_messy_sessions_load_like_canonical(template, tmp_path_factory, data, s):
    tmp = tmp_path_factory.mktemp("messy-sessions")
    _, day = DATE_FORMATS[s["dates"]]
    header = ["patient_id", "session_date", "setting", "exercise", "exercise_type", "status", "sets",
              "duration_min", "pain_during", "skip_reason"]  # fmt: skip
    canonical_rows, messy_rows = [], []
    for pid, when, setting, exercise, status, sets, minutes, pain, reason in data:
        etype = EXERCISES[exercise]
        c_min = "" if minutes is None else f"{minutes:g}"
        c_pain = "" if pain is None else f"{pain:g}"
        canonical_rows.append(
            [pid, when.isoformat(), setting, exercise, etype, status, str(sets), c_min, c_pain, reason]
        )
        m_pain = "" if pain is None else _num(pain, s, False)
        if m_pain and s["ratings"] != "plain":
            m_pain += "/10" if s["ratings"] == "slash" else " out of 10"
        messy_rows.append(
            [
                pid,
                when.strftime(day) if day else when.isoformat(),
                {"clinic": "In clinic", "home": "HEP"}[setting],
                exercise,
                etype.replace("_", " ").capitalize(),
                STATUS[s["status"]][status],
                str(sets),
                "" if minutes is None else _num(minutes, s, False),
                m_pain,
                reason,
            ]
        )
    renames = {c: c.replace("_", " ").title() for c in header}
    messy_header = [renames[c] for c in header] if s["renamed"] else header
    canonical = _write(tmp / "sessions.csv", header, canonical_rows, s, True)
    messy = _write(tmp / "messy.csv", messy_header, messy_rows, s, False)
    mapping = _mapping(tmp / "m.toml", s, "sessions", renames)
    (ce, cr), (me, mr) = _load_both(template, tmp, canonical, messy, mapping)
    assert cr.rows_rejected == 0 and (mr.status, mr.rows_rejected) == (cr.status, 0), mr.message
    snap = [sorted(tuple(r) for r in rows(e, select(*SESSION_COLS))) for e in (ce, me)]
    assert snap[0] == snap[1] and len(snap[0]) == len(data)
    ce.dispose()
    me.dispose()
