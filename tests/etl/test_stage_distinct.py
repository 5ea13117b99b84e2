"""The scores stager's per-distinct-value path gives exactly what the row-wise checks give: same staged rows, same
rejects with the same reasons, same identical repeats, for any mix of clean and dirty rows and with a mapping's
relabels, units and decimal comma."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from etl.mapping import Mapping
from etl.validate import SCORE_KEY, Context, MeasureRule, _checked_scores, _finish, stage_scores
from tests.etl.helpers import AS_OF, SCORES_HEADER
from warehouse.catalog import measure_rows

MEASURES = {
    m["code"]: MeasureRule(m["code"], m["min_value"], m["max_value"], m["unit"]) for m in measure_rows()
}
MAPPINGS = [
    Mapping(),
    Mapping(
        values={"measure": {"Leg pain": "pain_leg"}, "side": {"links": "left"}},
        units={"slr_left": "rad"},
        decimal=",",
    ),
]

junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
known = st.sampled_from(["P1", "P2"])
patient = st.one_of(known, known, known, st.sampled_from([" P1", "P3", "P99", ""]), junk)
plain_when = st.sampled_from(["2026-09-01T10:00:00", "2026-09-02T11:30:00", "2026-09-01"])
when = st.one_of(
    plain_when,
    plain_when,
    st.sampled_from(
        [
            "2026-09-01T10:00:00",
            "2026-09-01 10:00:00",
            "2026-09-01",
            "2026-09-01T10:00:00+02:00",
            "2026-09-01T10:00:00Z",
            "2026-02-30",
            "2027-01-01",
            "",
            "yesterday",
        ]
    ),
    junk,
)
measure = st.one_of(
    st.sampled_from(["pain_leg", "odi", "slr_left", "PAIN_LEG", "Leg pain", "grip", ""]), junk
)
value = st.one_of(
    st.sampled_from(
        ["7", "7.5", "7,5", "1.000,5", "0.5", "7/10", "7 out of 10", "", "abc", "NaN", "inf", "-1"]
    ),
    st.floats(min_value=-5, max_value=150, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.integers(min_value=-5, max_value=150).map(str),
    junk,
)
side = st.one_of(st.just(""), st.sampled_from(["", "left", "right", "both", "L", "links", "up"]))
# Small pools make repeats (identical and conflicting duplicates) common.
row = st.tuples(patient, when, measure, value, side)


@settings(max_examples=150, deadline=None)
@given(data=st.lists(row, min_size=1, max_size=50), mapping=st.sampled_from(MAPPINGS))
def test_distinct_path_equals_row_wise(data, mapping):
    df = pd.DataFrame(data, columns=SCORES_HEADER, dtype=str)
    lines = pd.Series(range(2, 2 + len(df)), index=df.index, dtype="int64")
    ctx = Context(
        as_of=AS_OF, measures=MEASURES, exercise_types={}, known_patients={"P1", "P2"}, mapping=mapping
    )
    got = stage_scores(df, lines, ctx)
    reasons, rows = _checked_scores(df, lines, ctx)
    want = _finish(reasons, lines, rows, SCORE_KEY, ["value"])
    assert_frame_equal(got.rows, want.rows)
    order = ["line", "reasons"]
    assert_frame_equal(
        got.rejects.sort_values(order).reset_index(drop=True),
        want.rejects.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    assert got.duplicate_lines == want.duplicate_lines


def _pool_rows(n: int, seed: int) -> list[tuple[str, ...]]:
    """Every combination the strategies name, drawn often enough to meet (2,000 rows from small pools)."""
    import random

    rnd = random.Random(seed)
    pools = [
        ["P1", "P2", " P1", "P99", ""],
        [
            "2026-09-01T10:00:00",
            "2026-09-01 10:00:00",
            "2026-09-01",
            "2026-09-01T10:00:00+02:00",
            "2026-02-30",
            "2027-01-01",
            "",
        ],
        ["pain_leg", "odi", "slr_left", "PAIN_LEG", "Leg pain", "grip", ""],
        ["7", "7.5", "7,5", "0,5", "1", "1.000,5", "0.5", "7/10", "", "abc", "inf", "-1", "95", "150"],
        ["", "left", "L", "links", "up"],
    ]
    return [tuple(rnd.choice(p) for p in pools) for _ in range(n)]


def test_distinct_path_equals_row_wise_on_every_combination():
    for mapping in MAPPINGS:
        test_distinct_path_equals_row_wise.hypothesis.inner_test(data=_pool_rows(2000, 1), mapping=mapping)
