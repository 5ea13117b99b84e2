"""FHIR R4 input: the six Synthea bundles of ../shared/fhir-samples, and small NDJSON files written here for every
path through the reader (codes from the mapping, components, periods, sessions, malformed resources)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from etl.load import EXIT_REJECTS, exit_code, load_file
from etl.mapping import load_mapping
from etl.read import FileLevelError, open_source
from tests.etl.helpers import AS_OF, count, rows
from warehouse.schema import episodes, etl_batches, etl_rejects, patients, scores, sessions

pytest.importorskip("fhir.resources", reason="FHIR input needs fhir.resources")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "fhir-samples"
LOINC = "http://loinc.org"


def _samples() -> list[Path]:
    if not (SAMPLES / "MANIFEST.json").is_file():
        pytest.skip(f"the Synthea sample bundles are not at {SAMPLES} (shared/ beside the repo)")
    return sorted(SAMPLES / f["file"] for f in json.loads((SAMPLES / "MANIFEST.json").read_text())["files"])


def _mapping(tmp_path: Path, text: str = "", name: str = "fhir.toml"):
    path = tmp_path / name
    path.write_text('[constants]\nclinic_id = "SYN"\ntherapist_id = "T-SYN"\n' + text, encoding="utf-8")
    return load_mapping(path)


# --- the Synthea bundles -------------------------------------------------------------------------------------------
def test_synthea_bundles_load_pain_as_float_scores(engine, tmp_path):
    files = _samples()
    manifest = {f["file"]: f for f in json.loads((SAMPLES / "MANIFEST.json").read_text())["files"]}
    mapping = _mapping(tmp_path)
    results = [load_file(engine, p, mapping=mapping, as_of=AS_OF) for p in files]
    for p, r in zip(files, results, strict=True):
        expected = manifest[p.name]["pain_72514_3"]
        assert (r.kind, r.status, r.rows_rejected) == ("fhir", "loaded", 0), r.message
        assert r.rows_read == r.rows_inserted == 1 + expected  # the patient and its pain observations
        # untracked codes are counted per code, not dropped silently
        untracked = manifest[p.name]["observations"] - expected
        assert f"{untracked} observations with untracked codes not loaded" in r.message
        assert re.search(r"http://loinc.org\|8302-2 x\d+", r.message)  # body height
    assert count(engine, patients) == 6 and count(engine, episodes) == 6
    pain = rows(engine, select(scores.c.patient_id, scores.c.measure, scores.c.value))
    assert len(pain) == 52 and {m for _, m, _ in pain} == {"pain_leg"}
    assert any(v != round(v) for _, _, v in pain)  # floats kept, e.g. 2.31186012545598
    assert all(0 <= v <= 10 for _, _, v in pain)
    # every score is linked to its bundle's patient (urn:uuid subjects resolved)
    linked = rows(
        engine,
        select(func.count()).select_from(scores.join(patients, patients.c.patient_id == scores.c.patient_id)),
    )
    assert linked[0][0] == 52
    per_patient = dict(rows(engine, select(scores.c.patient_id, func.count()).group_by(scores.c.patient_id)))
    assert sorted(per_patient.values()) == sorted(f["pain_72514_3"] for f in manifest.values())
    # the episode starts at the patient's first pain observation; names stay in the PHI fields
    first = rows(
        engine,
        select(episodes.c.start_date, func.min(scores.c.recorded_at))
        .join(scores, scores.c.patient_id == episodes.c.patient_id)
        .group_by(episodes.c.episode_id),
    )
    assert all(start == when.date() for start, when in first)
    names = rows(engine, select(patients.c.first_name, patients.c.last_name, patients.c.clinic_id))
    assert ("Antonio", "Carmona", "SYN") in names
    # loading again changes nothing
    again = load_file(engine, files[0], mapping=mapping, as_of=AS_OF)
    assert again.status == "unchanged" and count(engine, scores) == 52


def test_synthea_without_clinic_rejects_the_patient_with_a_clear_reason(engine, tmp_path):
    path = _samples()[0]
    bare = tmp_path / "bare.toml"
    bare.write_text("[source]\nname = 'bare'\n", encoding="utf-8")
    r = load_file(engine, path, mapping=load_mapping(bare), as_of=AS_OF)
    assert r.status == "loaded_with_rejects" and r.rows_inserted == 0
    assert exit_code([r]) == EXIT_REJECTS
    reasons = [x.reasons for x in rows(engine, select(etl_rejects.c.reasons))]
    assert any("clinic_id: the Patient names no managingOrganization" in x for x in reasons)
    assert any("unknown patient" in x for x in reasons)  # its observations cannot load without it
    raw = rows(engine, select(etl_rejects.c.raw_row).where(etl_rejects.c.source_line == 1))[0][0]
    assert json.loads(raw)["resourceType"] == "Patient"  # the resource as it came


# --- NDJSON written here -------------------------------------------------------------------------------------------
def _patient(pid: str, **extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1971-04-02",
        "name": [{"use": "official", "family": "Doe", "given": ["Jane"]}],
        **extra,
    }


def _obs(
    code: str, subject: str, when: str = "2026-09-01T10:00:00+02:00", system: str = LOINC, **value
) -> dict:
    if not value:
        value = {"valueQuantity": {"value": 6.5, "unit": "{score}"}}
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code, "display": "whatever the EMR says"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        **value,
    }


def _ndjson(path: Path, resources: list) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in resources) + "\n", encoding="utf-8"
    )
    return path


def test_ndjson_codes_components_periods_and_rejects(engine, tmp_path):
    mapping = _mapping(
        tmp_path,
        '[codes]\n"http://clinic.example/codes|SLR-L" = "slr_left"\n"http://loinc.org|38208-5" = "pain_back"\n',
    )
    resources = [
        _patient("p1"),  # 1
        _patient("p2", gender="male"),  # 2
        _obs("72514-3", "Patient/p1", valueInteger=7),  # 3
        _obs("SLR-L", "Patient/p1", system="http://clinic.example/codes", valueQuantity={"value": 55}),  # 4
        {  # 5: a panel whose score is a component (ODI), effectivePeriod
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "97908-8"}]},
            "subject": {"reference": "Patient/p2"},
            "effectivePeriod": {"start": "2026-09-02T09:00:00Z", "end": "2026-09-02T09:20:00Z"},
            "component": [{"code": {"coding": [{"system": LOINC, "code": "97909-6"}]}, "valueInteger": 42}],
        },
        _obs("38208-5", "Patient/p2", valueString="7/10"),  # 6: mapped to pain_back, "7/10" parsed
        _obs("8302-2", "Patient/p1"),  # 7: body height: untracked, counted
        "{not json",  # 8
        {
            "resourceType": "Observation",
            "code": {"coding": [{"system": LOINC, "code": "72514-3"}]},
        },  # 9: no status
        _obs("72514-3", "urn:uuid:0000-missing"),  # 10: unresolvable subject
        _obs("72514-3", "Patient/p1", valueCodeableConcept={"text": "severe"}),  # 11: no number
        _obs("72514-3", "Patient/p1", when="2026-09-03", valueQuantity={"value": 14}),  # 12: out of range
        {**_obs("72514-3", "Patient/p1"), "status": "entered-in-error"},  # 13: skipped
        "",  # blank line: not a row
    ]
    path = _ndjson(tmp_path / "export.ndjson", resources)
    r = load_file(engine, path, mapping=mapping, as_of=AS_OF)
    assert r.kind == "fhir" and r.status == "loaded_with_rejects", r.message
    got = sorted(rows(engine, select(scores.c.patient_id, scores.c.measure, scores.c.value)))
    assert got == [
        ("p1", "pain_leg", 7.0),
        ("p1", "slr_left", 55.0),
        ("p2", "odi", 42.0),
        ("p2", "pain_back", 7.0),
    ]
    rejects = {x.source_line: x for x in rows(engine, select(etl_rejects))}
    assert set(rejects) == {8, 9, 10, 11, 12}
    assert "not valid JSON" in rejects[8].reasons
    assert "invalid FHIR R4 resource" in rejects[9].reasons and "status" in rejects[9].reasons
    assert "does not resolve to a Patient" in rejects[10].reasons
    assert "no numeric value (valueCodeableConcept)" in rejects[11].reasons
    assert "outside 0-10" in rejects[12].reasons
    assert json.loads(rejects[12].raw_row)["valueQuantity"]["value"] == 14
    assert "http://loinc.org|8302-2 x1" in r.message and "entered-in-error x1 skipped" in r.message
    assert r.rows_read == r.rows_inserted + r.rows_rejected == 6 + 5
    starts = dict(rows(engine, select(episodes.c.patient_id, episodes.c.start_date)))
    assert {k: v.isoformat() for k, v in starts.items()} == {"p1": "2026-09-01", "p2": "2026-09-01"}


def test_bundle_sessions_from_procedures_and_encounters(engine, tmp_path):
    mapping = _mapping(
        tmp_path,
        '[sessions]\n"http://snomed.info/sct|91251008" = "manual_therapy"\n'
        '"http://clinic.example/visit|HEP" = "stretching"\n',
    )
    pid = "urn:uuid:11111111-1111-1111-1111-111111111111"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": pid, "resource": _patient("11111111-1111-1111-1111-111111111111")},
            {"fullUrl": "urn:uuid:o1", "resource": _obs("72514-3", pid, when="2026-09-05T08:00:00Z")},
            {
                "fullUrl": "urn:uuid:pr1",
                "resource": {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "91251008"}],
                        "text": "Soft tissue mobilisation",
                    },
                    "subject": {"reference": pid},
                    "performedPeriod": {"start": "2026-09-05T08:00:00Z", "end": "2026-09-05T08:30:00Z"},
                },
            },
            {
                "fullUrl": "urn:uuid:e1",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "cancelled",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                    "type": [
                        {
                            "coding": [{"system": "http://clinic.example/visit", "code": "HEP"}],
                            "text": "Hamstring stretch",
                        }
                    ],
                    "subject": {"reference": pid},
                    "period": {"start": "2026-09-06T18:00:00Z"},
                },
            },
            {
                "fullUrl": "urn:uuid:pr2",
                "resource": {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "428191000124101"}]},
                    "subject": {"reference": pid},
                    "performedDateTime": "2026-09-05T08:00:00Z",
                },
            },
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    r = load_file(engine, path, mapping=mapping, as_of=AS_OF)
    assert (r.status, r.rows_rejected, r.rows_inserted) == ("loaded", 0, 4), r.message
    got = sorted(
        rows(
            engine,
            select(
                sessions.c.session_date,
                sessions.c.setting,
                sessions.c.exercise,
                sessions.c.exercise_type,
                sessions.c.status,
                sessions.c.duration_min,
            ),
        )
    )
    assert [(str(d), s, e, t, st, m) for d, s, e, t, st, m in got] == [
        ("2026-09-05", "clinic", "Soft tissue mobilisation", "manual_therapy", "completed", 30.0),
        ("2026-09-06", "home", "Hamstring stretch", "stretching", "skipped", None),
    ]
    assert "Procedure x1" in r.message  # the unmapped procedure is reported
    batch = rows(engine, select(etl_batches.c.kind, etl_batches.c.rows_read))
    assert batch == [("fhir", 4)]


def test_not_fhir_json_fails_the_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": "world"}', encoding="utf-8")
    with pytest.raises(FileLevelError, match="x.json: JSON without a resourceType"):
        open_source(path, load_mapping(None))
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(FileLevelError, match="not FHIR JSON"):
        open_source(path, load_mapping(None))


def test_sample_fhir_files_with_the_example_mapping(engine):
    sample = ROOT / "data" / "sample" / "fhir"
    mapping = load_mapping(ROOT / "data" / "mappings" / "example_fhir.toml")
    r = load_file(engine, sample / "riverside_export.ndjson", mapping=mapping, as_of=AS_OF)
    assert (r.status, r.rows_read, r.rows_rejected) == ("loaded", 10, 0), r.message
    assert "http://loinc.org|8302-2 x1" in r.message
    got = sorted(rows(engine, select(scores.c.patient_id, scores.c.measure, scores.c.value)))
    assert ("F01", "slr_left", 40.0) in got and ("F01", "odi", 44.0) in got and len(got) == 6
    clinics = rows(engine, select(patients.c.patient_id, patients.c.clinic_id, patients.c.therapist_id))
    assert sorted(clinics) == [("F01", "riverside", "t01"), ("F02", "riverside", "t01")]
    assert sorted(rows(engine, select(sessions.c.patient_id, sessions.c.status))) == [
        ("F01", "completed"),
        ("F02", "skipped"),
    ]
    b = load_file(engine, sample / "bundle.json", mapping=mapping, as_of=AS_OF)
    # this mapping names patients by MRN, and the bundle's patient has none: rejected, saying so
    assert b.rows_rejected == 4 and b.rows_inserted == 0
    reasons = rows(engine, select(etl_rejects.c.reasons).where(etl_rejects.c.batch_id == b.batch_id))
    assert any("no identifier with system 'http://riverside.example/mrn'" in x for (x,) in reasons)
