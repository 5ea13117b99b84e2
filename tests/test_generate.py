"""The synthetic export generator: deterministic, canonical formats, clean rows valid, dirty rows labelled."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from etl.generate import COLUMNS, PROBLEMS, generate, generate_labelled

AS_OF = date(2025, 6, 30)
N = 60
CATALOG = Path(__file__).resolve().parents[1] / "warehouse" / "catalog"
KEYS = {
    "visits": ["patient_id", "visit_date"],
    "sessions": ["patient_id", "session_date", "setting", "exercise"],
    "scores": ["patient_id", "measure", "recorded_at", "side"],
}
REQUIRED = {
    "visits": ["patient_id", "visit_date"],
    "sessions": ["patient_id", "session_date", "exercise", "status"],
    "scores": ["patient_id", "recorded_at", "measure", "value"],
}
DATE_COL = {"visits": "visit_date", "sessions": "session_date", "scores": "recorded_at"}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _when(s: pd.Series) -> pd.Series:
    fmt = "%Y-%m-%dT%H:%M:%S" if s.str.len().max() > 10 else "%Y-%m-%d"
    return pd.to_datetime(s, format=fmt, errors="coerce")


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


@pytest.fixture(scope="module")
def measures() -> dict[str, tuple[float, float]]:
    with (CATALOG / "measures.toml").open("rb") as fh:
        return {m["code"]: (m["min"], m["max"]) for m in tomllib.load(fh)["measure"]}


@pytest.fixture(scope="module")
def exercise_types() -> set[str]:
    with (CATALOG / "exercise_types.toml").open("rb") as fh:
        return {t["code"] for t in tomllib.load(fh)["exercise_type"]}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    paths, labels = generate_labelled(d, N, seed=11, as_of=AS_OF)
    frames = {k: _read(p) for k, p in paths.items()}
    return paths, labels, frames


@pytest.fixture(scope="module")
def clean(out):
    """The files with the labelled dirty rows taken out."""
    _, labels, frames = out
    return {k: df.drop(index=labels[k]["row"]) if k in labels else df for k, df in frames.items()}


@pytest.fixture(scope="module")
def tidy(tmp_path_factory):
    d = tmp_path_factory.mktemp("tidy")
    paths, labels = generate_labelled(d, N, seed=11, as_of=AS_OF, dirty=False)
    return labels, {k: _read(p) for k, p in paths.items()}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, out):
    paths, _, _ = out
    again = generate(tmp_path / "a", N, seed=11, as_of=AS_OF)
    assert set(again) == {"patients", "visits", "sessions", "scores"}
    for k, p in again.items():
        assert p.read_bytes() == paths[k].read_bytes(), k
    other = generate(tmp_path / "b", N, seed=12, as_of=AS_OF)
    for k, p in other.items():
        assert p.read_bytes() != paths[k].read_bytes(), k


def test_clean_rows_do_not_depend_on_dirty_flag(clean, tidy):
    _, frames = tidy
    for k, df in clean.items():
        assert df.reset_index(drop=True).equals(frames[k]), k


def test_columns_exactly(out):
    paths, _, frames = out
    for k, df in frames.items():
        assert list(df.columns) == COLUMNS[k]
        assert paths[k].read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS[k])


def test_patients(clean):
    p = clean["patients"]
    assert len(p) == N and p["patient_id"].is_unique
    assert p["patient_id"].str.fullmatch(r"P\d{6}").all()
    assert p["clinic_id"].str.fullmatch(r"C\d{2}").all() and p["clinic_id"].nunique() >= 2
    assert p["therapist_id"].str.fullmatch(r"T\d{3}").all()
    assert (p.groupby("therapist_id")["clinic_id"].nunique() == 1).all()
    assert set(p["sex"]) <= {"F", "M", "X"} and set(p["side"]) <= {"left", "right", "both"}
    years = p["birth_year"].astype(int)
    assert (years <= 2005).all() and (AS_OF.year - years).max() < 100
    start = _when(p["episode_start"])
    assert start.notna().all() and (start <= pd.Timestamp(AS_OF)).all()
    assert start.min() >= pd.Timestamp(AS_OF) - pd.Timedelta(days=300)
    end = _when(p["episode_end"])
    assert (p["episode_end"] == "").any() and end.notna().any()
    assert (end[end.notna()] <= pd.Timestamp(AS_OF)).all() and (end[end.notna()] > start[end.notna()]).all()
    onset = _when(p["symptom_onset"])
    assert (onset[onset.notna()] < start[onset.notna()]).all()
    active = (p["episode_end"] == "") & (start > pd.Timestamp(AS_OF) - pd.Timedelta(weeks=8))
    assert 0.15 < active.mean() < 0.55


def test_old_patients_exist_at_scale(tmp_path):
    paths = generate(tmp_path, 1000, seed=3, as_of=AS_OF)
    years = _read(paths["patients"])["birth_year"].astype(int)
    assert ((AS_OF.year - years) > 89).any()


def test_no_duplicate_keys_except_deliberate_conflicts(out, clean):
    _, labels, frames = out
    for k, key in KEYS.items():
        assert not clean[k].duplicated(key).any(), k
        df = frames[k]
        dup = df[df.duplicated(key, keep=False)]
        conflicts = set(labels[k].loc[labels[k]["problem"] == "conflicting_duplicate", "row"])
        # every duplicated key is one clean row plus its deliberate conflicting copy, with a different value
        assert len(dup) == 2 * len(conflicts), k
        assert set(dup.index) - set(clean[k].index) == conflicts, k
        assert not df.loc[list(dup.index)].duplicated(keep=False).any(), k


def test_clean_values_in_range(clean, measures, exercise_types):
    v = clean["visits"]
    for m in COLUMNS["visits"][2:]:
        x = _num(v[m])
        lo, hi = measures[m]
        assert ((x >= lo) & (x <= hi) | (v[m] == "")).all(), m
        assert x.notna().mean() > 0.8, m
    assert (_num(v["odi"]).dropna() % 2 == 0).all()
    for m in ("slr_left", "slr_right", "lumbar_flexion"):
        assert (_num(v[m]).dropna() % 1 == 0).all()

    s = clean["scores"]
    assert set(s["measure"]) == {"pain_leg", "numbness"}
    assert ((_num(s["value"]) >= 0) & (_num(s["value"]) <= 10)).all()
    assert s["recorded_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    sides = clean["patients"].set_index("patient_id")["side"]
    assert ((s["side"] == "") | (s["side"] == s["patient_id"].map(sides))).all()

    x = clean["sessions"]
    assert set(x["setting"]) == {"clinic", "home"}
    assert set(x["status"]) <= {"completed", "partial", "skipped", "missed"}
    assert set(x["exercise_type"]) <= exercise_types
    assert (x.groupby("exercise")["exercise_type"].nunique() == 1).all()
    assert (x.loc[x["exercise_type"] == "manual_therapy", "setting"] == "clinic").all()
    assert ((x["skip_reason"] != "") == (x["status"] == "skipped")).all()
    assert set(x["skip_reason"]) - {""} <= {"pain", "no time", "forgot", "felt better", "illness"}
    pain = _num(x["pain_during"]).dropna()
    assert len(pain) and ((pain >= 0) & (pain <= 10)).all()
    assert (x.loc[x["pain_during"] != "", "status"].isin(["completed", "partial"])).all()
    not_done = x["status"].isin(["skipped", "missed"])
    assert (x.loc[not_done, ["sets", "reps", "duration_min"]] == "").all().all()
    home = x[x["setting"] == "home"]
    assert (home["therapist_id"] == "").all() and (home["prescribed_sets"] != "").all()
    per_day = home.groupby(["patient_id", "session_date"]).size()
    assert per_day.between(2, 4).all()
    known = set(clean["patients"]["patient_id"])
    for k in ("visits", "sessions", "scores"):
        assert set(clean[k]["patient_id"]) <= known, k


def test_nothing_after_as_of_in_clean_rows(clean):
    for k, col in DATE_COL.items():
        when = _when(clean[k][col])
        assert when.notna().all(), k
        assert (when < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)).all(), k
        start = clean[k]["patient_id"].map(clean["patients"].set_index("patient_id")["episode_start"])
        assert (when.dt.normalize() >= _when(start)).all(), k


def test_dirty_false_gives_no_dirty_rows(tidy, measures):
    labels, frames = tidy
    assert all(len(v) == 0 for v in labels.values())
    for k, col in DATE_COL.items():
        when = _when(frames[k][col])
        assert when.notna().all() and (when < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)).all(), k
        assert not frames[k].duplicated(KEYS[k]).any(), k
    v = _num(frames["scores"]["value"])
    assert ((v >= 0) & (v <= 10)).all()
    for m in COLUMNS["visits"][2:]:
        x = _num(frames["visits"][m]).dropna()
        assert x.between(*measures[m]).all(), m


def test_dirty_rows_are_labelled_and_really_dirty(out, measures):
    _, labels, frames = out
    known = set(frames["patients"]["patient_id"])
    for k, lab in labels.items():
        assert set(lab["problem"]) == set(PROBLEMS[k]), k
        rows = frames[k].loc[lab["row"]]
        prob = lab.set_index("row")["problem"]
        when = _when(rows[DATE_COL[k]])
        raw_date = rows[DATE_COL[k]]
        assert (
            when[prob == "impossible_date"].isna().all() and (raw_date[prob == "impossible_date"] != "").all()
        )
        assert (when[prob == "future_date"] > pd.Timestamp(AS_OF) + pd.Timedelta(days=1)).all()
        assert not rows.loc[prob == "unknown_patient", "patient_id"].isin(known).any()
        assert (rows.loc[prob == "missing_required", REQUIRED[k]] == "").any(axis=1).all()
        bad = rows[prob == "out_of_range"]
        if k == "scores":
            assert (~_num(bad["value"]).between(0, 10)).all()
        elif k == "visits":
            out_of = pd.concat(
                [~_num(bad[m]).between(*measures[m]) & (bad[m] != "") for m in measures if m in bad]
            )
            assert out_of.groupby(level=0).any().all()
        else:
            assert (~_num(bad["pain_during"]).between(0, 10)).all()
    s = frames["sessions"].loc[labels["sessions"].set_index("row").query("problem == 'unknown_status'").index]
    assert (s["status"] == "done?").all()


def test_home_adherence_varies(clean):
    home = clean["sessions"][clean["sessions"]["setting"] == "home"]
    done = (home["status"] == "completed") + 0.5 * (home["status"] == "partial")
    adherence = done.groupby(home["patient_id"]).mean()
    assert adherence.std() > 0.1
    assert (adherence >= 0.8).any() and (adherence < 0.6).any()
    assert (home["status"] == "missed").any() and (home["status"] == "skipped").any()


def test_baseline_visit_on_episode_start_for_most(clean):
    p, v = clean["patients"], clean["visits"]
    base = v.merge(p, left_on=["patient_id", "visit_date"], right_on=["patient_id", "episode_start"])
    assert base["patient_id"].nunique() >= 0.85 * len(p)
    assert (v.groupby("patient_id").size() > 1).mean() > 0.5


def test_scores_are_daily_ish(clean):
    s = clean["scores"]
    per_patient = s.groupby("patient_id").size()
    assert per_patient.mean() > 40
    assert s["patient_id"].nunique() >= 0.9 * N
