"""De-identification building blocks, without a warehouse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research.cohort import AGE_BAND_NAMES, age_band
from research.deid import (
    INSECURE_DEMO_KEY,
    KEY_ENV,
    LEVELS,
    MAX_SHIFT_DAYS,
    QUASI_IDENTIFIERS,
    WITHHELD,
    ExportKey,
    ExportKeyError,
    Pseudonymizer,
    k_anonymise,
    k_anonymise_counts,
    key_from_env,
    skip_reason_category,
    smallest_group,
)


def test_key_is_required():
    with pytest.raises(ExportKeyError, match=KEY_ENV):
        key_from_env({})
    with pytest.raises(ExportKeyError, match="too short"):
        key_from_env({KEY_ENV: "short"})
    assert key_from_env({KEY_ENV: "x" * 16}).source == "env"
    demo = key_from_env({}, insecure_demo_key=True)
    assert demo.is_demo and demo.source == "insecure-demo-key"
    assert key_from_env({KEY_ENV: "y" * 20}, insecure_demo_key=True).source == "env"  # a real key wins


def test_key_never_shows_in_repr():
    key = ExportKey(b"super-secret-value-123", "explicit")
    assert "super-secret" not in repr(key) and "super-secret" not in key.fingerprint


def test_pseudonyms_are_stable_keyed_and_kind_specific():
    a = Pseudonymizer(ExportKey(b"k" * 20, "explicit"))
    b = Pseudonymizer(ExportKey(b"j" * 20, "explicit"))
    assert a.patient("P1") == a.patient("P1") != b.patient("P1")
    assert a.patient("P1")[2:] != a.clinic("P1")[2:]
    assert a.patient("P1").startswith("p_") and len(a.patient("P1")) == 18
    assert a.patient(None) is None
    shifts = {a.shift_days(f"P{i}") for i in range(2000)}
    assert min(shifts) >= 1 and max(shifts) <= MAX_SHIFT_DAYS and len(shifts) > 300


@pytest.mark.parametrize(
    ("text", "category"),
    [("pain", "pain"), ("No time!", "no_time"), (" forgot ", "forgot"), ("felt better", "felt_better"),
     ("illness", "illness"), ("Called Dr Smith 555-0100", "other"), ("", None), (None, None)],
)  # fmt: skip
def test_skip_reasons_become_categories(text, category):
    assert skip_reason_category(text) == category


def test_ages_over_89_are_one_band():
    assert [age_band(a) for a in (17, 18, 45, 89, 90, 104)] == [
        "0-17",
        "18-29",
        "40-49",
        "80-89",
        "90+",
        "90+",
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 5, 11])
def test_k_anonymity_holds_after_generalising_and_suppressing(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    qi = pd.DataFrame(
        {
            "age_band": rng.choice(AGE_BAND_NAMES, n, p=[0.01, 0.1, 0.15, 0.2, 0.2, 0.15, 0.1, 0.06, 0.03]),
            "sex": rng.choice(["F", "M", "X"], n, p=[0.55, 0.43, 0.02]),
            "clinic_id": rng.choice([f"C{i}" for i in range(int(rng.integers(1, 8)))], n),
            "start_year": rng.choice([2024, 2025, 2026], n, p=[0.1, 0.3, 0.6]),
        },
        index=[f"P{i}" for i in range(n)],
    )
    out, report = k_anonymise(qi, k)
    assert out.empty or smallest_group(out) >= k
    assert len(out) + report.suppressed == n
    assert sum(report.released_by_level.values()) == len(out)
    assert report.released_by_level[LEVELS[0]] + report.generalised == len(out)
    # released rows keep their own start year and only ever lose detail
    assert (out["start_year"] == qi.loc[out.index, "start_year"]).all()
    unchanged = out[out["deid_level"] == 0]
    pd.testing.assert_frame_equal(unchanged[qi.columns], qi.loc[unchanged.index].astype(object))
    assert (out.loc[out["deid_level"] >= 2, "clinic_id"] == WITHHELD).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 5, 11])
def test_k_anonymity_on_combination_counts_equals_per_patient(seed, k):
    """The export runs small-cell protection on distinct combinations with their counts (memory bounded by the
    quasi-identifiers' domain); it must release and generalise exactly as the per-patient version, missing
    values included."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(20, 600))
    qi = pd.DataFrame(
        {
            "age_band": rng.choice([*AGE_BAND_NAMES, None], n),
            "sex": rng.choice(["F", "M", "X", None], n, p=[0.5, 0.43, 0.04, 0.03]),
            "clinic_id": rng.choice([f"C{i}" for i in range(int(rng.integers(1, 9)))], n),
            "start_year": rng.choice([2024, 2025, 2026], n, p=[0.1, 0.3, 0.6]),
        },
        index=[f"P{i}" for i in range(n)],
    )
    expected, expected_report = k_anonymise(qi, k)
    keys = list(qi.itertuples(index=False, name=None))
    combos = pd.DataFrame(list(dict.fromkeys(keys)), columns=list(QUASI_IDENTIFIERS))
    combo_of = {key: i for i, key in enumerate(combos.itertuples(index=False, name=None))}
    combos["n"] = pd.Series(keys).map(combo_of).value_counts().sort_index().to_numpy()
    released, report = k_anonymise_counts(combos, k)
    per_patient = released.iloc[[combo_of[key] for key in keys]].set_index(qi.index)
    got = per_patient[per_patient["deid_level"] >= 0]
    assert report == expected_report
    assert got.index.tolist() == expected.index.tolist()
    pd.testing.assert_frame_equal(
        got[list(QUASI_IDENTIFIERS)].astype(object), expected[list(QUASI_IDENTIFIERS)].astype(object)
    )
    assert got["deid_level"].tolist() == expected["deid_level"].tolist()


def test_demo_key_constant_is_public_and_flagged():
    assert ExportKey(INSECURE_DEMO_KEY, "insecure-demo-key").is_demo
