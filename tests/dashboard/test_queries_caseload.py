import pytest

from dashboard.flags import FLAGS, FlagRules
from dashboard.queries import caseload as q
from dashboard.scope import Scope

ALL = Scope.clinic_wide()
F = q.CaseloadFilters


def _ids(df):
    return list(df["patient_id"])


def test_one_row_per_active_episode_with_flags(warehouse):
    df = q.caseload_page(warehouse, ALL).set_index("patient_id")
    assert sorted(df.index) == ["P1", "P2", "P3", "P4"]  # P5 is discharged
    flags = {pid: [f for f in FLAGS if df.loc[pid, f"flag_{f}"] == 1] for pid in df.index}
    assert flags == {
        "P1": [],
        "P2": ["worsening", "low_adherence", "missing_baseline"],  # leg pain up exactly 2; no ODI at all
        "P3": ["missing_baseline"],
        "P4": ["not_responding", "no_recent_data", "missing_baseline"],
    }
    assert df.loc["P1", "pain_leg_baseline"] == 7.0 and df.loc["P1", "pain_leg_latest"] == 3.0
    assert df.loc["P1", "odi_change"] == -20.0
    assert bool(df.loc["P1", "mcid_pain_leg"]) is True
    assert df.loc["P4", "days_in_episode"] == 50
    assert df.loc["P1", "therapist_name"] == "Alex Kim"
    assert set(df["total_rows"]) == {4}


def test_default_sort_puts_most_flags_first(warehouse):
    df = q.caseload_page(warehouse, ALL)
    assert list(df["n_flags"]) == sorted(df["n_flags"], reverse=True)
    assert _ids(df)[-1] == "P1"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ([q.SortKey("pain_leg_change")], ["P1", "P4", "P2", "P3"]),  # NULL last
        ([q.SortKey("pain_leg_change", True)], ["P2", "P4", "P1", "P3"]),
        ([q.SortKey("days_in_episode")], ["P3", "P2", "P1", "P4"]),
        ([q.SortKey("patient")], ["P1", "P2", "P4", "P3"]),  # by last name, id when none
        ([q.SortKey("no_such_column"), q.SortKey("patient_id", True)], ["P4", "P3", "P2", "P1"]),
    ],
)
def test_sorting_in_sql(warehouse, sort, expected):
    assert _ids(q.caseload_page(warehouse, ALL, sort=sort)) == expected


def test_paging(warehouse):
    sort = [q.SortKey("patient_id")]
    first = q.caseload_page(warehouse, ALL, sort=sort, offset=0, limit=3)
    second = q.caseload_page(warehouse, ALL, sort=sort, offset=3, limit=3)
    assert _ids(first) == ["P1", "P2", "P3"] and _ids(second) == ["P4"]
    assert set(first["total_rows"]) == {4} and set(second["total_rows"]) == {4}
    assert q.caseload_page(warehouse, ALL, offset=10).empty
    assert q.caseload_total(warehouse, ALL, F(), FlagRules()) == 4


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (F(flag="worsening"), ["P2"]),
        (F(flag="missing_baseline"), ["P2", "P3", "P4"]),
        (F(flag="not_responding"), ["P4"]),
        (F(therapist_id="T1"), ["P1", "P2"]),
        (F(clinic_id="C2"), ["P4"]),
        (F(clinic_id="C1", flag="low_adherence"), ["P2"]),
        (F(search="p3"), ["P3"]),
        (F(search="Ber"), ["P1"]),  # last name prefix
        (F(search="%"), []),  # LIKE wildcards are escaped
        (F(search="P_"), []),
        (F(search="  "), ["P1", "P2", "P3", "P4"]),
    ],
)
def test_filters(warehouse, filters, expected):
    assert sorted(_ids(q.caseload_page(warehouse, ALL, filters))) == expected


def test_unknown_flag_is_rejected():
    with pytest.raises(ValueError):
        F(flag="drop table")


def test_flag_counts_ignore_the_flag_filter(warehouse):
    counts = q.flag_counts(warehouse, ALL, F(flag="worsening"))
    assert counts == {
        "all": 4,
        "worsening": 1,
        "not_responding": 1,
        "low_adherence": 1,
        "no_recent_data": 1,
        "missing_baseline": 3,
    }
    assert q.flag_counts(warehouse, ALL, F(therapist_id="T3"))["all"] == 1


def test_thresholds_change_the_flags(warehouse):
    lenient = FlagRules(low_adherence=0.4, baseline_measures=("pain_leg",))
    df = q.caseload_page(warehouse, ALL, rules=lenient).set_index("patient_id")
    assert df.loc["P2", "flag_low_adherence"] == 0
    assert df.loc["P2", "flag_missing_baseline"] == 0 and df.loc["P3", "flag_missing_baseline"] == 1


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope.therapist("T1"), ["P1", "P2"]),
        (Scope.therapist("T2"), ["P3"]),
        (Scope.clinics(["C2"]), ["P4"]),
        (Scope.therapist(), []),
    ],
)
def test_scope_limits_rows_counts_and_options(warehouse, scope, expected):
    assert sorted(_ids(q.caseload_page(warehouse, scope))) == expected
    assert q.flag_counts(warehouse, scope, F())["all"] == len(expected)


def test_filters_cannot_widen_the_scope(warehouse):
    t1 = Scope.therapist("T1")
    assert q.caseload_page(warehouse, t1, F(therapist_id="T3")).empty
    assert q.caseload_page(warehouse, t1, F(clinic_id="C2")).empty
    assert q.caseload_page(warehouse, t1, F(search="P4")).empty
    assert q.flag_counts(warehouse, t1, F(therapist_id="T2"))["all"] == 0


def test_options_are_scoped(warehouse):
    assert list(q.therapist_options(warehouse, ALL)["therapist_id"]) == ["T1", "T3", "T2"]  # by name
    assert list(q.therapist_options(warehouse, ALL, "C2")["therapist_id"]) == ["T3"]
    assert list(q.therapist_options(warehouse, Scope.therapist("T2"))["therapist_id"]) == ["T2"]
    assert list(q.clinic_options(warehouse, Scope.therapist("T3"))["clinic_id"]) == ["C2"]
    assert list(q.clinic_options(warehouse, ALL)["clinic_id"]) == ["C2", "C1"]  # Harbour, Northside


def test_summary_as_of(warehouse):
    from tests.dashboard.factories import AS_OF

    assert q.summary_as_of(warehouse, ALL) == AS_OF
    assert q.summary_as_of(warehouse, Scope.therapist()) is None


def test_stored_flags_agree_with_the_rules_evaluated_in_sql(warehouse):
    """The page reads the flags the ETL stored; the SQL form of the same rules gives the same rows."""
    stored = q.caseload_page(warehouse, ALL).set_index("episode_id")
    in_sql = q.read_frame(warehouse, q._rows(ALL, F(), FlagRules())).set_index("episode_id")
    cols = [f"flag_{f}" for f in FLAGS] + ["n_flags"]
    assert stored.sort_index()[cols].astype(int).equals(in_sql.sort_index()[cols].astype(int))


def test_default_rules_read_the_stored_columns(warehouse):
    from warehouse.schema import episode_summary

    with warehouse.begin() as conn:  # a stored flag the rules would not raise: the page shows what is stored
        conn.execute(
            episode_summary.update()
            .where(episode_summary.c.patient_id == "P1")
            .values(flag_worsening=1, n_flags=1)
        )
    assert sorted(q.caseload_page(warehouse, ALL, F(flag="worsening"))["patient_id"]) == ["P1", "P2"]
    assert q.flag_counts(warehouse, ALL, F())["worsening"] == 2
    assert q.caseload_total(warehouse, ALL, F(flag="worsening")) == 2
    lenient = FlagRules(low_adherence=0.4)  # other thresholds: evaluated in SQL, the stored columns ignored
    assert q.flag_counts(warehouse, ALL, F(), lenient)["worsening"] == 1
