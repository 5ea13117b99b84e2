"""Export bundles: nothing identifying survives, the same definition gives the same files, small cells are
protected as the manifest says, and every column is documented."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from research import dictionary
from research.cohort import CohortDefinition, DateRange, Range, select_cohort
from research.deid import QUASI_IDENTIFIERS, Pseudonymizer
from research.export import ExportError, export_bundle, sha256_file
from tests.research.conftest import FREE_TEXT, TEST_KEY

TABLES = list(dictionary.TABLES)
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
STUDY = CohortDefinition(
    name="study",
    episode_start=DateRange(date(2026, 2, 1), date(2026, 11, 30)),
    clinics=("C01", "C02"),
    baseline_pain_leg=Range(1, None),
)


def read(bundle: Path, table: str) -> pd.DataFrame:
    fmt = json.loads((bundle / "manifest.json").read_text())["format"]
    path = bundle / "data" / f"{table}.{fmt}"
    return pq.read_table(path).to_pandas() if fmt == "parquet" else pd.read_csv(path, keep_default_na=False)


def texts(bundle: Path) -> dict[str, str]:
    """Every file of the bundle as text (Parquet: its values as CSV plus its raw bytes)."""
    out = {}
    for p in sorted(bundle.rglob("*")):
        if p.is_file():
            name = p.relative_to(bundle).as_posix()
            if p.suffix == ".parquet":
                out[name] = pq.read_table(p).to_pandas().to_csv(index=False) + p.read_bytes().decode(
                    "latin-1"
                )
            else:
                out[name] = p.read_text(encoding="utf-8")
    return out


def identifiers(engine: Engine) -> tuple[set[str], set[str]]:
    """(tokens, dates): names, original ids and free text; every original date in the warehouse."""
    with engine.connect() as conn:
        pt = pd.read_sql_table("patients", conn)
        ep = pd.read_sql_table("episodes", conn)
        se = pd.read_sql_table("sessions", conn)
        sc = pd.read_sql_table("scores", conn)
    tokens = set(pt["first_name"]) | set(pt["last_name"]) | set(pt["patient_id"]) | set(pt["clinic_id"])
    tokens |= set(pt["therapist_id"]) | set(se["therapist_id"].dropna()) | {FREE_TEXT, "Mockford"}
    dates = {"2026-09-14"}
    for s in (ep["start_date"], ep["end_date"], ep["symptom_onset"], se["session_date"], sc["recorded_at"]):
        dates |= set(pd.to_datetime(s).dropna().dt.strftime("%Y-%m-%d"))
    return {t for t in tokens if t}, dates


def assert_no_identifiers(bundle: Path, engine: Engine, allowed_dates: set[str] = frozenset()) -> None:
    tokens, dates = identifiers(engine)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name, text in texts(bundle).items():
        if name == "manifest.json":
            text = text.replace(manifest["created_at"], "")
        words = set(re.findall(r"\w+", text))
        single = {t for t in tokens if re.fullmatch(r"\w+", t)}
        assert not words & single, (name, sorted(words & single)[:5])
        for phrase in tokens - single:
            assert phrase not in text, (name, phrase)
        found = set(DATE.findall(text))
        assert not (found & dates) - allowed_dates, (name, sorted(found & dates)[:5])
        assert TEST_KEY.secret.decode() not in text, name


def data_hashes(bundle: Path) -> dict[str, str]:
    return {
        p.relative_to(bundle).as_posix(): sha256_file(p)
        for p in sorted(bundle.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


# --- on both backends ---------------------------------------------------------------------------------------------
def test_no_identifier_survives(warehouse: Engine, tmp_path: Path):
    export_bundle(warehouse, tmp_path / "csv", STUDY, key=TEST_KEY)
    export_bundle(warehouse, tmp_path / "pq", key=TEST_KEY, fmt="parquet", skip_reasons="drop")
    assert_no_identifiers(tmp_path / "csv", warehouse, allowed_dates={"2026-02-01", "2026-11-30"})
    assert_no_identifiers(tmp_path / "pq", warehouse)
    assert not DATE.search("".join(t for n, t in texts(tmp_path / "csv").items() if n.startswith("data/")))
    sessions = read(tmp_path / "csv", "sessions")
    assert set(sessions["skip_reason"]) <= {
        "",
        "pain",
        "no_time",
        "forgot",
        "felt_better",
        "illness",
        "other",
    }
    assert read(tmp_path / "pq", "sessions")["skip_reason"].isna().all()


def test_same_definition_gives_identical_files(warehouse: Engine, tmp_path: Path):
    for fmt in ("csv", "parquet"):
        a = export_bundle(warehouse, tmp_path / f"{fmt}-a", STUDY, key=TEST_KEY, fmt=fmt, block_patients=7)
        b = export_bundle(warehouse, tmp_path / f"{fmt}-b", STUDY, key=TEST_KEY, fmt=fmt)
        assert a.row_counts == b.row_counts and a.row_counts["episodes"] > 0
        assert data_hashes(tmp_path / f"{fmt}-a") == data_hashes(tmp_path / f"{fmt}-b") == a.files, fmt
        manifest = json.loads((tmp_path / f"{fmt}-a" / "manifest.json").read_text())
        assert manifest["files"] == a.files
        for table, entry in manifest["tables"].items():
            assert entry["rows"] == len(read(tmp_path / f"{fmt}-a", table)), (fmt, table)


def test_cohort_json_in_the_bundle_rebuilds_the_same_bundle(warehouse: Engine, tmp_path: Path):
    export_bundle(warehouse, tmp_path / "a", STUDY, key=TEST_KEY)
    saved = json.loads((tmp_path / "a" / "cohort.json").read_text())
    assert all(c.startswith("c_") for c in saved["filters"]["clinics"])  # ids pseudonymised in the bundle
    again = CohortDefinition.from_json((tmp_path / "a" / "cohort.json").read_text())
    export_bundle(warehouse, tmp_path / "b", again, key=TEST_KEY)
    assert data_hashes(tmp_path / "a") == data_hashes(tmp_path / "b")
    n = len(select_cohort(warehouse, STUDY))
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["cohort_flow"][-1]["episodes"] == n


# --- on the shared SQLite warehouse ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "dates"), [(5, "relative"), (45, "shifted")])
def test_k_anonymity_holds_and_the_manifest_counts_match(shared: Engine, tmp_path: Path, k: int, dates: str):
    # shifted start years spread over two years, so a large k has to suppress someone
    export_bundle(shared, tmp_path / "b", key=TEST_KEY, k=k, dates=dates)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    deid = manifest["deidentification"]
    pts = read(tmp_path / "b", "patients")
    assert pts.groupby(list(QUASI_IDENTIFIERS)).size().min() >= k
    assert deid["k"] == k
    assert deid["patients_considered"] == manifest["cohort_flow"][-1]["patients"]
    assert deid["patients_released_unchanged"] + deid["patients_generalised"] == len(pts)
    assert deid["patients_considered"] - deid["patients_suppressed"] == len(pts)
    assert deid["patients_generalised"] > 0
    by_level = pts["deid_level"].value_counts().to_dict()
    assert [by_level.get(r["level"], 0) for r in deid["released_by_level"]] == [
        r["patients"] for r in deid["released_by_level"]
    ]
    if k == 45:  # 80 patients in two start years: one year has fewer than 45
        assert deid["patients_suppressed"] > 0
    # a suppressed patient is gone from every table
    for table in TABLES[1:]:
        assert set(read(tmp_path / "b", table)["patient_id"]) <= set(pts["patient_id"]), table
    withheld = pts[pts["clinic_id"] == "*"]
    assert (withheld["therapist_id"] == "*").all()
    sessions = read(tmp_path / "b", "sessions")
    ids = set(withheld["patient_id"])
    assert set(sessions.loc[sessions["patient_id"].isin(ids), "therapist_id"]) <= {"*", ""}


def test_every_column_is_documented(bundle: Path):
    doc = json.loads((bundle / "data_dictionary.json").read_text())
    md = (bundle / "data_dictionary.md").read_text()
    for table in TABLES:
        header = (bundle / "data" / f"{table}.csv").read_text().split("\n", 1)[0].split(",")
        documented = [c["name"] for c in doc["tables"][table]["columns"]]
        assert header == documented, table
        for col in doc["tables"][table]["columns"]:
            assert col["meaning"] and col["type"] in dictionary.TYPES
            assert f"| `{col['name']}` |" in md
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["deidentification"]["dates"] == "relative"
    assert "Safe Harbor" in manifest["deidentification"]["standard"]
    assert manifest["software"]["version"]


def test_shifted_dates_move_each_patient_by_one_offset(shared: Engine, tmp_path: Path):
    export_bundle(shared, tmp_path / "b", key=TEST_KEY, dates="shifted", fmt="parquet")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["deidentification"]["standard"].startswith("limited data set / expert determination")
    with shared.connect() as conn:
        ep = pd.read_sql_table("episodes", conn)
    pseud = Pseudonymizer(TEST_KEY)
    ep["pid"] = ep["patient_id"].map(pseud.patient)
    ep["shift"] = ep["patient_id"].map(pseud.shift_days)
    out = read(tmp_path / "b", "episodes").merge(ep, left_on="patient_id", right_on="pid")
    original = pd.to_datetime(out["start_date_y"])
    shifted = pd.to_datetime(out["start_date_x"])
    assert ((original - shifted).dt.days == out["shift"]).all()
    assert out["shift"].between(1, 364).all()
    sessions = read(tmp_path / "b", "sessions")
    assert "day" not in sessions and "session_date" in sessions


def test_refuses_a_directory_in_use(shared: Engine, tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty directory"):
        export_bundle(shared, tmp_path / "b", key=TEST_KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
