"""Outcomes for managers: which exercise types, therapists and clinics get results, and how much to trust them.

Reading (SQL, scope enforced in SQL on `episode_summary`, and on `patients` wherever a patient column is read):
- every number of the filter-change callback comes from grouped SQL over the marts (`outcome_aggregates`):
  `episode_summary` (one row per episode, wide measure columns), `episode_exercise_dose` (dose per episode, setting
  and type, with each type's share) and `episode_first_mcid` (when leg pain first reached the MCID), all written by
  the ETL's summary refresh. The per-episode rules (age, severity, ceiling, drop-out, responder flags, the
  affected side's SLR...) are SQL expressions (`_episode_columns`); the groups come back as sums, counts and
  sums of squares per cell (month x adherence band x drop-out week; type x weekly-dose band), and means, t and
  Wilson intervals are computed from them in Python (`OutcomeAggregates`). Medians (weeks to MCID) come from a
  histogram of whole days grouped in SQL. Nothing reads `scores` or `sessions` except the recovery bands
  (at most 5,000 episodes' scores by primary-key range).
- the regression-based comparison and the benchmarks need one row per episode: `outcome_rows` reads only the
  filtered episodes' model columns (`OutcomeView`), and the DataFrame functions below (`summarise`,
  `adjusted_comparison`, `benchmarks`...) work on those rows; tests check that both paths give the same numbers.
- `recovery_scores`, `etl_batch_rows`, `reject_reasons`, `quality_counts`: the recovery bands and the data-quality
  panel.

No DataFrame is kept between callbacks (the product rule: callbacks read what they show through indexed SQL or
precomputed summaries). Measured figures: docs/outcomes.md.

Exercise types: an episode counts for every exercise type that makes up at least `TYPE_SHARE` (20 %) of its logged
dose: the minutes done (completed sessions in full, partial ones as logged; the prescribed minutes x 0.5 where a
partial session has no duration), home and clinic together, or only the setting chosen in the filter. An episode
with no minutes logged falls back to its share of done sessions. Types overlap: one episode can count for several.
The shares are computed by the ETL (etl/summary_dose.py); the threshold is applied here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Engine,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.sql.expression import ColumnElement

from dashboard import stats
from dashboard.flags import FlagRules
from dashboard.queries import read_frame
from dashboard.queries.catalog import measures_catalog
from dashboard.scope import Scope, scope_clause
from warehouse.outcome_rules import (  # noqa: F401  (re-exported: the page and the tests read them from here)
    ADHERENCE_BANDS,
    AGE_BANDS,
    COVARIATES,
    EPS,
    MEASURES,
    MIN_BENCHMARK_N,
    NO_HOME,
    PRIMARY,
    RESPONDER_MEASURES,
    SETTINGS,
    SEVERITY_BANDS,
    SEXES,
    TYPE_SHARE,
    WEEKLY_DOSE_BANDS,
    WIDE,
    EpisodeSQL,
    OutcomeFilters,
    _flag,
)
from warehouse.outcome_rules import episode_sql as _episode_rules
from warehouse.schema import (
    DOSE_ALL_SETTINGS,
    episode_exercise_dose,
    episode_first_mcid,
    episode_summary,
    etl_batches,
    etl_rejects,
    patients,
    scores,
)


def _in_scope(scope: Scope, with_patients: bool):
    cond = scope_clause(scope, episode_summary)
    return and_(cond, scope_clause(scope, patients)) if with_patients else cond


def measure_thresholds(engine: Engine) -> pd.DataFrame:
    """The catalog rows of the page's measures (reference data, not scoped)."""
    catalog = measures_catalog(engine)
    page = catalog[catalog["code"].isin([*WIDE, "pain_back", "lumbar_flexion"])]
    return page.drop(columns=["threshold_source", "sort_order"]).reset_index(drop=True)


def episode_sql(
    scope: Scope,
    filters: OutcomeFilters,
    catalog: pd.DataFrame,
    rules: FlagRules = FlagRules(),
    *,
    with_patient: bool = False,
) -> EpisodeSQL:
    """The page's rules for the filtered episodes (`warehouse.outcome_rules.episode_sql`) restricted to the
    viewer's scope, in SQL (on `patients` too when it is joined)."""
    q = _episode_rules(filters, catalog, rules, with_patient=with_patient)
    return EpisodeSQL(q.from_, and_(_in_scope(scope, q.with_patient), q.where), q.cols, q.with_patient)


def _types_join(q: EpisodeSQL, setting: str | None, share: float = TYPE_SHARE):
    """`q`'s episodes joined to the types they count for (share of the setting's dose >= `share`)."""
    d = episode_exercise_dose
    return q.from_.join(
        d,
        and_(
            d.c.episode_id == episode_summary.c.episode_id,
            d.c.setting == (setting or DOSE_ALL_SETTINGS),
            d.c.share >= share - EPS,
        ),
    )


def _first_mcid_join(from_, measure: str = PRIMARY, outer: bool = False):
    f = episode_first_mcid
    on = and_(f.c.episode_id == episode_summary.c.episode_id, f.c.measure == measure)
    return from_.outerjoin(f, on) if outer else from_.join(f, on)


#: One additive aggregate of a group of episodes: (label, operation, per-episode columns). Operations: "rows"
#: (the number of episodes), "count" (non-null values), "sum", "sumsq" (sum of squares), "null" (episodes where the
#: column is null), "null_given" (first column not null, second null), "both" (neither null). SQL NULL semantics:
#: a "sum" over no values is NULL. Evaluated in SQL (`_sums`) and, over the outcome packs, with numpy
#: (`dashboard/queries/outcomes_packed.py`): one list for both.
SumTerm = tuple[str, str, tuple[str, ...]]


def sum_terms(*, per_type: bool = False) -> list[SumTerm]:
    """The counts, sums and sums of squares the page's tables need (means, CIs and rates are computed from them;
    see `OutcomeAggregates`). `per_type`: only what the tables by exercise type use (on SQLite each aggregate costs
    about 6 ms per 100k rows, so the list is kept to what is shown)."""
    out: list[SumTerm] = [
        ("episodes", "rows", ()),
        ("adherence_n", "count", ("adherence",)),
        ("adherence_sum", "sum", ("adherence",)),
    ]
    if not per_type:
        out += [
            ("completed", "sum", ("completed",)),
            ("dropped_out", "sum", ("dropped_out",)),
            ("pairs_n", "both", ("adherence", f"{PRIMARY}_change")),
        ]
    for m in MEASURES:
        ch, base = f"{m}_change", f"{m}_baseline"
        out += [(f"{m}_n", "count", (ch,)), (f"{m}_sum", "sum", (ch,)), (f"{m}_sumsq", "sumsq", (ch,))]
        if not per_type or m in RESPONDER_MEASURES:
            out.append((f"{m}_ceiling_n", "sum", (f"{m}_ceiling",)))
        if not per_type:
            out += [(f"{m}_no_baseline", "null", (base,)), (f"{m}_no_change", "null_given", (base, ch))]
    for m in RESPONDER_MEASURES:
        kinds = ("itt_k", "itt_n", "comp_k", "comp_n") + (() if per_type else ("no_followup",))
        out += [(f"{m}_{x}", "sum", (f"{m}_{x}",)) for x in kinds]
    return out


def _sum_sql(c: Any, op: str, names: tuple[str, ...]) -> ColumnElement:
    x = [c[n] for n in names]
    if op == "rows":
        return func.count()
    if op == "count":
        return func.count(x[0])
    if op == "sum":
        return func.sum(x[0])
    if op == "sumsq":
        return func.sum(x[0] * x[0])
    if op == "null":
        return func.sum(_flag(x[0].is_(None)))
    if op == "null_given":
        return func.sum(_flag(and_(x[0].is_not(None), x[1].is_(None))))
    if op == "both":
        return func.sum(_flag(and_(x[0].is_not(None), x[1].is_not(None))))
    raise ValueError(f"unknown aggregate {op!r}")


def _sums(c: Any, *, per_type: bool = False) -> list[ColumnElement]:
    """`sum_terms` as SQL aggregates over `c`, the per-episode columns (the materialised CTE's)."""
    return [_sum_sql(c, op, names).label(label) for label, op, names in sum_terms(per_type=per_type)]


#: The per-episode columns the grouped statement materialises once (`outcome_aggregates`).
_CTE_COLUMNS: tuple[str, ...] = (
    "episode_id",
    "start_month",
    "adherence_band",
    "dropout_week",
    "completed",
    "dropped_out",
    "adherence",
    "weeks_observed",
    *(f"{m}_{x}" for m in MEASURES for x in ("baseline", "change", "ceiling")),
    *(f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "no_followup")),
)


def _sample_order(episode_id: ColumnElement[int]) -> ColumnElement[int]:
    """A fixed pseudo-random order of episodes (integer arithmetic, the same on both backends, no overflow)."""
    return ((episode_id % 100003) * 7919) % 100003


def outcome_aggregates(
    engine: Engine,
    scope: Scope,
    filters: OutcomeFilters,
    rules: FlagRules = FlagRules(),
    catalog: pd.DataFrame | None = None,
    max_points: int = 3000,
) -> OutcomeAggregates:
    """Every number of the filter-change callback, from grouped SQL over the marts: two statements.

    The first computes the filtered episodes' columns once (a MATERIALIZED common table expression: SQLite would
    otherwise re-evaluate every rule inside every aggregate) and returns four groupings in one UNION ALL: cells
    (start month x adherence band x drop-out week), types x weekly-dose band, and the days-to-MCID histograms
    overall and per type. The second picks at most `max_points` adherence/change pairs in a fixed pseudo-random
    order for the scatter.
    """
    catalog = measure_thresholds(engine) if catalog is None else catalog
    q = episode_sql(scope, filters, catalog, rules)
    fm, d = episode_first_mcid, episode_exercise_dose
    f = (
        select(*(q.cols[name].label(name) for name in _CTE_COLUMNS), fm.c.days_to_mcid)
        .select_from(_first_mcid_join(q.from_, outer=True))
        .where(q.where)
        .cte("filtered")
        .prefix_with("MATERIALIZED")
    )
    c = f.c
    weeks = c.weeks_observed
    weekly = d.c.minutes / case((weeks < 1.0, literal(1.0)), else_=weeks)
    wband = case(*(((weekly >= lo) & (weekly < hi), name) for name, lo, hi in WEEKLY_DOSE_BANDS), else_=None)
    types_from = f.join(
        d,
        and_(
            d.c.episode_id == c.episode_id,
            d.c.setting == (filters.setting or DOSE_ALL_SETTINGS),
            d.c.share >= TYPE_SHARE - EPS,
        ),
    )
    names = [x.name for x in _sums(c)]

    def part(label: str, keys: tuple[Any, Any, Any], sums: list, from_: Any, where: Any, group: tuple) -> Any:
        """One grouping, in the common shape: part, k1, k2 (text keys), k3 (integer key), every sum (NULL if
        this grouping does not compute it)."""
        given = {x.name: x for x in sums}
        k1, k2, k3 = (null() if k is None else k for k in keys)
        cols = [
            literal(label).label("part"),
            cast(k1, String).label("k1"),
            cast(k2, String).label("k2"),
            cast(k3, Integer).label("k3"),
            *(given[n].label(n) if n in given else cast(null(), Float).label(n) for n in names),
        ]
        stmt = select(*cols).select_from(from_).group_by(*group)
        return stmt if where is None else stmt.where(where)

    count = [func.count().label("episodes")]
    has_days = c.days_to_mcid.is_not(None)
    stmt = union_all(
        # per type x weekly band x days to MCID: one pass over the type join serves both the tables by type
        # (summed over days) and the per-type medians (counts by days). It comes first: as a later part, SQLite
        # 3.40 planned a Bloom filter over the whole dose mart for it (~0.1 s even for one clinic's 1,000 episodes).
        part(
            "types",
            (d.c.exercise_type, wband, c.days_to_mcid),
            _sums(c, per_type=True),
            types_from,
            None,
            (d.c.exercise_type, wband, c.days_to_mcid),
        ),
        part(
            "cells",
            (c.start_month, c.adherence_band, c.dropout_week),
            _sums(c),
            f,
            None,
            (c.start_month, c.adherence_band, c.dropout_week),
        ),
        part("mcid", (None, None, c.days_to_mcid), count, f, has_days, (c.days_to_mcid,)),
    )
    change = q.cols[f"{PRIMARY}_change"]
    pairs_stmt = (
        select(
            episode_summary.c.episode_id,
            episode_summary.c.adherence.label("adherence"),
            change.label("change"),
        )
        .select_from(q.from_)
        .where(q.where, episode_summary.c.adherence.is_not(None), change.is_not(None))
        .order_by(_sample_order(episode_summary.c.episode_id), episode_summary.c.episode_id)
        .limit(max_points)
    )
    with engine.connect() as conn:
        parts = _fetch_frame(conn, stmt)
        pairs = _numeric(_fetch_frame(conn, pairs_stmt))
    return _split_parts(parts, pairs, filters, names)


def _split_parts(parts: pd.DataFrame, pairs: pd.DataFrame, filters: OutcomeFilters, names: list[str]):
    """The UNION ALL's rows back into the four frames `OutcomeAggregates` holds."""
    values = parts[names].apply(pd.to_numeric, errors="coerce").astype(float)
    k3 = pd.to_numeric(parts["k3"], errors="coerce").astype(float)
    kinds = parts["part"]
    cells = pd.concat(
        [
            pd.to_numeric(parts["k1"], errors="coerce").astype(float).rename("start_month"),
            parts["k2"].rename("adherence_band"),
            k3.rename("dropout_week"),
            values,
        ],
        axis=1,
    )[kinds == "cells"].reset_index(drop=True)
    per_type = [label for label, _op, _cols in sum_terms(per_type=True)]
    rows = kinds == "types"
    by_days = pd.concat(
        [parts["k1"].rename("exercise_type"), parts["k2"].rename("weekly_band"), k3.rename("days_to_mcid")],
        axis=1,
    )[rows]
    types = pd.concat([by_days, values.loc[rows, per_type]], axis=1)
    weeks_types = (
        types[types["days_to_mcid"].notna()]
        .groupby(["exercise_type", "days_to_mcid"], as_index=False)["episodes"]
        .sum()
        .rename(columns={"episodes": "n"})
    )
    types = (
        types.drop(columns=["days_to_mcid"])
        .groupby(["exercise_type", "weekly_band"], dropna=False, as_index=False, sort=True)
        .sum()
    )
    counts = values["episodes"].rename("n")
    weeks_all = pd.concat([k3.rename("days_to_mcid"), counts], axis=1)[kinds == "mcid"].reset_index(drop=True)
    return OutcomeAggregates(
        cells, types, weeks_all, weeks_types, pairs[["episode_id", "adherence", "change"]], filters
    )


def _fetch_frame(conn: Any, stmt: Any) -> pd.DataFrame:
    """Rows as a DataFrame through plain tuples: `pd.DataFrame(list_of_Rows)` took 1.5 s for 100k x 23 values,
    `from_records` of tuples 0.5 s (the comparison callback reads that many rows clinic-wide)."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    return pd.DataFrame.from_records([tuple(r) for r in result.fetchall()], columns=columns)


_TEXT_COLUMNS = ("adherence_band", "weekly_band", "exercise_type", "patient_id", "clinic_id", "therapist_id")


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Driver values as floats (PostgreSQL sums of integers come back as Decimal); text keys stay text."""
    for c in df.columns:
        if c not in _TEXT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


#: What the comparison callback's regressions and benchmarks read per episode (`adjusted_comparison`, `benchmarks`).
MODEL_COLUMNS: tuple[str, ...] = (
    "episode_id",
    "clinic_id",
    "therapist_id",
    *COVARIATES,
    "ftp_due",
    "failure_to_progress",
    *(f"{m}_{x}" for m in ("pain_leg", "odi") for x in ("baseline", "change")),
    *(f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")),
)


def outcome_rows(
    engine: Engine,
    scope: Scope,
    filters: OutcomeFilters,
    rules: FlagRules = FlagRules(),
    catalog: pd.DataFrame | None = None,
    columns: Sequence[str] | None = None,
) -> OutcomeView:
    """One row per filtered episode (the page's per-episode columns, weeks to MCID) and the types each counts for:
    what the regressions need. Reads only the filtered episodes, never a whole table; `columns` narrows the read
    (the comparison callback reads `MODEL_COLUMNS`: every column costs read time at 100k rows)."""
    catalog = measure_thresholds(engine) if catalog is None else catalog
    q = episode_sql(scope, filters, catalog, rules, with_patient=True)
    f = episode_first_mcid
    weeks = (f.c.days_to_mcid / literal(7.0)).label("weeks_to_mcid")
    wanted = [n for n in q.cols if columns is None or n in columns]
    stmt = (
        select(*(q.cols[name].label(name) for name in wanted), weeks)
        .select_from(_first_mcid_join(q.from_, outer=True))
        .where(q.where)
        .order_by(episode_summary.c.episode_id)
    )
    d = episode_exercise_dose
    types_stmt = (
        select(d.c.episode_id, d.c.exercise_type, d.c.share, d.c.minutes)
        .select_from(_types_join(q, filters.setting))
        .where(q.where)
        .order_by(d.c.episode_id, d.c.exercise_type)
    )
    with engine.connect() as conn:
        eps, types = (_numeric(_fetch_frame(conn, x)) for x in (stmt, types_stmt))
    eps["episode_id"] = eps["episode_id"].astype("int64")
    for c in (
        "completed",
        "dropped_out",
        "ftp_due",
        "failure_to_progress",
        *(f"{m}_ceiling" for m in MEASURES),
    ):
        if c in eps:
            eps[c] = eps[c].fillna(0).astype(bool)
    for c in [c for c in eps.columns if c.endswith(("_itt_n", "_itt_k", "_comp_n", "_comp_k", "_ceiling_n"))]:
        eps[c] = eps[c].fillna(0).astype("int8")
    if "start_month" in eps:
        keys = eps["start_month"].fillna(0).astype(int)
        eps["start_month"] = (
            pd.to_datetime({"year": keys // 100, "month": keys % 100, "day": 1}) if len(eps) else keys
        )
    types["episode_id"] = types["episode_id"].astype("int64")
    return OutcomeView(eps, types, catalog, filters)


def quality_counts(
    engine: Engine, scope: Scope, filters: OutcomeFilters, catalog: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Episodes, and patients missing a baseline or a follow-up (leg pain, ODI), under the filters: counted in SQL."""
    catalog = measure_thresholds(engine) if catalog is None else catalog
    q = episode_sql(scope, filters, catalog)
    pid = episode_summary.c.patient_id
    cols = [func.count().label("episodes")]
    for m in ("pain_leg", "odi"):
        base, ch = q.cols[f"{m}_baseline"], q.cols[f"{m}_change"]
        cols += [
            func.count(func.distinct(case((base.is_(None), pid), else_=None))).label(f"{m}_no_base"),
            func.count(func.distinct(case((and_(base.is_not(None), ch.is_(None)), pid), else_=None))).label(
                f"{m}_no_fu"
            ),
        ]
    with engine.connect() as conn:
        row = conn.execute(select(*cols).select_from(q.from_).where(q.where)).one()._mapping
    return pd.DataFrame(
        [
            {
                "measure": MEASURES[m],
                "episodes": int(row["episodes"]),
                "patients_missing_baseline": int(row[f"{m}_no_base"]),
                "patients_missing_followup": int(row[f"{m}_no_fu"]),
            }
            for m in ("pain_leg", "odi")
        ]
    )


def recovery_scores(
    engine: Engine,
    scope: Scope,
    measure: str,
    band: tuple[float, float],
    clinic_id: str | None = None,
    max_episodes: int = 5000,
) -> pd.DataFrame:
    """Measurements (`episode_id, week, value`) of the most recent `max_episodes` episodes in scope whose baseline
    of `measure` lies in [band): the input of the expected-recovery percentiles. Week 0 is the baseline week."""
    if measure not in WIDE:
        raise ValueError(f"no recovery bands for {measure!r}")
    es = episode_summary
    base = es.c[f"{measure}_baseline"]
    picked = (
        select(es.c.episode_id, es.c.patient_id, es.c.start_date, es.c.end_date)
        .select_from(es.join(patients, patients.c.patient_id == es.c.patient_id))
        .where(_in_scope(scope, True), base >= band[0], base < band[1])
    )
    if clinic_id:
        picked = picked.where(es.c.clinic_id == clinic_id)
    picked = picked.order_by(es.c.start_date.desc(), es.c.episode_id.desc()).limit(max_episodes).subquery()
    stmt = select(picked.c.episode_id, picked.c.start_date, scores.c.recorded_at, scores.c.value).select_from(
        picked.join(
            scores,
            and_(
                scores.c.patient_id == picked.c.patient_id,
                scores.c.measure == measure,
                scores.c.recorded_at >= picked.c.start_date,
            ),
        )
    )
    df = read_frame(engine, stmt)
    if df.empty:
        return pd.DataFrame(columns=["episode_id", "week", "value"])
    days = (_ts(df["recorded_at"]).dt.normalize() - _ts(df["start_date"])).dt.days
    df["week"] = (days // 7).astype(int)
    return df[["episode_id", "week", "value"]]


def etl_batch_rows(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest ETL batches (files, not patients: the same for every viewer)."""
    b = etl_batches
    stmt = (
        select(
            b.c.batch_id,
            b.c.file_name,
            b.c.kind,
            b.c.status,
            b.c.loaded_at,
            b.c.rows_read,
            b.c.rows_inserted,
            b.c.rows_updated,
            b.c.rows_rejected,
        )
        .order_by(b.c.batch_id.desc())
        .limit(limit)
    )
    return read_frame(engine, stmt)


_QUOTED = re.compile(r"'[^']*'")


def reject_reasons(engine: Engine) -> pd.DataFrame:
    """Rejected rows by reason and file: `file_name, reason, rows`. Quoted values are cut from the reasons (they
    may hold patient data); the raw rows are never read here."""
    stmt = (
        select(etl_batches.c.file_name, etl_rejects.c.reasons, func.count().label("rows"))
        .select_from(etl_rejects.join(etl_batches, etl_batches.c.batch_id == etl_rejects.c.batch_id))
        .group_by(etl_batches.c.file_name, etl_rejects.c.reasons)
    )
    df = read_frame(engine, stmt)
    if df.empty:
        return pd.DataFrame(columns=["file_name", "reason", "rows"])
    df["reason"] = [
        [_QUOTED.sub("…", r).strip() for r in str(text).split(";") if r.strip()] for text in df["reasons"]
    ]
    df = df.explode("reason")
    out = df.groupby(["file_name", "reason"], as_index=False)["rows"].sum()
    return out.sort_values(["rows", "file_name", "reason"], ascending=[False, True, True], ignore_index=True)


def _ts(s: pd.Series) -> pd.Series:
    """Dates or timestamps from either driver (ISO text on SQLite, objects on PostgreSQL) as datetime64."""
    return pd.to_datetime(s, format="ISO8601") if len(s) else pd.to_datetime(s)


# --- the filter-change callback's numbers, from the grouped SQL --------------------------------------------------
def _median_from_histogram(values: np.ndarray, counts: np.ndarray) -> float:
    """The median of a sample given as distinct values and their counts (as pandas: mean of the middle two)."""
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(counts[order])
    lo = v[np.searchsorted(cum, (total - 1) // 2 + 1)]
    hi = v[np.searchsorted(cum, total // 2 + 1)]
    return float((lo + hi) / 2)


@dataclass
class OutcomeAggregates:
    """Sums per cell from `outcome_aggregates`; each method builds one of the page's tables from them (same columns
    and numbers as the DataFrame functions of the same name over `OutcomeView` rows).

    - `cells`: per start month x adherence band x drop-out week, the sums of `_sums`.
    - `type_cells`: per exercise type x weekly-dose band, the same sums over the episodes counting for the type.
    - `weeks_all` / `weeks_types`: histograms of whole days to the leg-pain MCID (`days_to_mcid`, `n`).
    - `pairs`: adherence vs leg-pain change (a deterministic sample of at most 3,000 episodes).
    """

    cells: pd.DataFrame
    type_cells: pd.DataFrame
    weeks_all: pd.DataFrame
    weeks_types: pd.DataFrame
    pairs: pd.DataFrame
    filters: OutcomeFilters = OutcomeFilters()

    @property
    def n(self) -> int:
        return int(self.cells["episodes"].sum()) if len(self.cells) else 0

    @property
    def n_pairs(self) -> int:
        return int(self.cells["pairs_n"].sum()) if len(self.cells) else 0

    def _total(self) -> pd.Series:
        return self.cells.drop(columns=["start_month", "adherence_band", "dropout_week"]).sum()

    def responders(self, measure: str) -> dict[str, stats.Proportion | int]:
        """As `responders` over rows: ITT and completer rates (Wilson), ceiling, no baseline, no follow-up."""
        t = self._total()
        return {
            "itt": stats.wilson(int(t.get(f"{measure}_itt_k", 0)), int(t.get(f"{measure}_itt_n", 0))),
            "completers": stats.wilson(
                int(t.get(f"{measure}_comp_k", 0)), int(t.get(f"{measure}_comp_n", 0))
            ),
            "ceiling": int(t.get(f"{measure}_ceiling_n", 0)),
            "no_baseline": int(t.get(f"{measure}_no_baseline", 0)),
            "no_followup": int(t.get(f"{measure}_no_followup", 0)),
        }

    def type_summary(self, labels: dict[str, str] | None = None) -> pd.DataFrame:
        labels = labels or {}
        frames = []
        if self.n:
            total = self._total().to_frame().T.set_axis([""])
            frames.append(_summary_from_sums(total, self.weeks_all.assign(key="")))
        if len(self.type_cells):
            by_type = self.type_cells.drop(columns=["weekly_band"]).groupby("exercise_type", sort=True).sum()
            weeks = self.weeks_types.rename(columns={"exercise_type": "key"})
            frames.append(_summary_from_sums(by_type, weeks))
        if not frames:
            return pd.DataFrame(columns=["group", "type", *_SUMMARY_OUT])
        out = pd.concat(frames).rename_axis("type").reset_index()
        out.insert(0, "group", [labels.get(t, t) if t else "All episodes" for t in out["type"]])
        return out

    def dose_response(self, measure: str = PRIMARY) -> pd.DataFrame:
        order = [b[0] for b in ADHERENCE_BANDS] + [NO_HOME]
        g = (
            self.cells.drop(columns=["start_month", "dropout_week"])
            .groupby("adherence_band", sort=True)
            .sum()
        )
        s = _summary_from_sums(g, None, measures=(measure,)).reindex(order)
        return pd.DataFrame(
            {
                "band": order,
                "episodes": s["episodes"].fillna(0).astype(int).to_numpy(),
                "n": s[f"{measure}_n"].fillna(0).astype(int).to_numpy(),
                "mean": s[f"{measure}_mean"].to_numpy(),
                "lo": s[f"{measure}_lo"].to_numpy(),
                "hi": s[f"{measure}_hi"].to_numpy(),
                "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
                "responder_n": s[f"{PRIMARY}_itt_n"].fillna(0).astype(int).to_numpy(),
            }
        )

    def dose_by_type(self, labels: dict[str, str] | None = None, measure: str = PRIMARY) -> pd.DataFrame:
        labels = labels or {}
        cols = ["type", "label", "band", "n", "mean", "lo", "hi"]
        if self.type_cells.empty:
            return pd.DataFrame(columns=cols)
        t = self.type_cells[self.type_cells["weekly_band"].notna()]
        g = t.groupby(["exercise_type", "weekly_band"], sort=True)[
            [f"{measure}_n", f"{measure}_sum", f"{measure}_sumsq"]
        ].sum()
        g = g[g[f"{measure}_n"] > 0]
        mean, sd, lo, hi = stats.mean_ci_sums(g[f"{measure}_n"], g[f"{measure}_sum"], g[f"{measure}_sumsq"])
        ci = pd.DataFrame(
            {"n": g[f"{measure}_n"].astype(int), "mean": mean, "lo": lo, "hi": hi}, index=g.index
        )
        full = pd.MultiIndex.from_product(
            [sorted(self.type_cells["exercise_type"].unique()), [b[0] for b in WEEKLY_DOSE_BANDS]]
        )
        ci = ci.reindex(full).rename_axis(["type", "band"]).reset_index()
        ci["n"] = ci["n"].fillna(0).astype(int)
        ci["label"] = [labels.get(x, x) for x in ci["type"]]
        return ci[cols]

    def monthly_trend(self, measure: str = PRIMARY) -> pd.DataFrame:
        cols = ["month", "episodes", "n", "mean", "lo", "hi", "responder_rate", "responder_n"]
        if not self.n:
            return pd.DataFrame(columns=cols)
        g = (
            self.cells.drop(columns=["adherence_band", "dropout_week"])
            .groupby("start_month", sort=True)
            .sum()
        )
        s = _summary_from_sums(g, None, measures=(measure,))
        keys = s.index.to_numpy(dtype=int)
        months = pd.to_datetime({"year": keys // 100, "month": keys % 100, "day": 1})
        return pd.DataFrame(
            {
                "month": months.to_numpy(),
                "episodes": s["episodes"].astype(int).to_numpy(),
                "n": s[f"{measure}_n"].to_numpy(),
                "mean": s[f"{measure}_mean"].to_numpy(),
                "lo": s[f"{measure}_lo"].to_numpy(),
                "hi": s[f"{measure}_hi"].to_numpy(),
                "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
                "responder_n": s[f"{PRIMARY}_itt_n"].to_numpy(),
            }
        )

    def missing_data(self) -> pd.DataFrame:
        t = self._total() if self.n else pd.Series(dtype=float)

        def get(name: str) -> int:
            return int(t.get(name, 0))

        n, completed, dropped = self.n, get("completed"), get("dropped_out")
        rows = [
            ("All starters (ITT)", n),
            ("Completers (discharged)", completed),
            ("Still in care", n - completed - dropped),
            ("Dropped out (no data 14 d, not discharged)", dropped),
        ]
        for m, label in MEASURES.items():
            rows += [
                (f"{label}: no baseline", get(f"{m}_no_baseline")),
                (f"{label}: baseline, no follow-up", get(f"{m}_no_change")),
                (f"{label}: ceiling effect (counted apart)", get(f"{m}_ceiling_n")),
            ]
        return pd.DataFrame(rows, columns=["what", "episodes"])

    def dropout_by_week(self, max_week: int = 12) -> pd.DataFrame:
        n = self.n
        c = self.cells[self.cells["dropout_week"].notna()] if n else self.cells.iloc[0:0]
        weeks = c["dropout_week"].clip(upper=max_week).astype(int)
        counts = c["episodes"].groupby(weeks).sum().reindex(range(1, max_week + 1), fill_value=0)
        out = pd.DataFrame({"week": counts.index, "dropouts": counts.to_numpy().astype(int)})
        out["remaining_pct"] = (100.0 * (n - out["dropouts"].cumsum()) / n) if n else np.nan
        return out

    def scatter_points(self) -> pd.DataFrame:
        return self.pairs


_SUMMARY_OUT: list[str] = []  # filled below from `summarise`'s columns (for empty frames)


def _summary_from_sums(
    g: pd.DataFrame, weeks: pd.DataFrame | None, measures: Sequence[str] = tuple(MEASURES)
) -> pd.DataFrame:
    """`summarise`'s columns from per-group sums (`_sums`) and an optional days-to-MCID histogram keyed by `key`."""
    cols: dict[str, Any] = {"episodes": g["episodes"].astype(int)}
    for m in measures:
        n = g[f"{m}_n"]
        mean, _sd, lo, hi = stats.mean_ci_sums(n, g[f"{m}_sum"], g[f"{m}_sumsq"])
        cols[f"{m}_n"] = n.fillna(0).astype(int)
        cols |= {f"{m}_mean": mean, f"{m}_lo": lo, f"{m}_hi": hi}
    for m in RESPONDER_MEASURES:
        for kind, short in (("itt", "itt"), ("completers", "comp")):
            k, n = g[f"{m}_{short}_k"].astype(int), g[f"{m}_{short}_n"].astype(int)
            p, lo, hi = stats.wilson_arrays(k, n)
            cols |= {f"{m}_{kind}_k": k, f"{m}_{kind}_n": n}
            cols |= {f"{m}_{kind}_rate": p, f"{m}_{kind}_lo": lo, f"{m}_{kind}_hi": hi}
        cols[f"{m}_ceiling"] = g[f"{m}_ceiling_n"].astype(int)
    w_n = pd.Series(0, index=g.index, dtype=int)
    w_median = pd.Series(np.nan, index=g.index, dtype=float)
    if weeks is not None:
        for key, h in weeks.groupby("key", sort=False):
            if key in w_n.index:
                w_n[key] = int(h["n"].sum())
                w_median[key] = _median_from_histogram(h["days_to_mcid"].to_numpy() / 7.0, h["n"].to_numpy())
    cols["weeks_to_mcid_n"] = w_n
    cols["weeks_to_mcid_median"] = w_median
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["adherence_mean"] = (g["adherence_sum"] / g["adherence_n"]).where(g["adherence_n"] > 0)
    cols["adherence_n"] = g["adherence_n"].astype(int)
    return pd.DataFrame({k: np.asarray(v) for k, v in cols.items()}, index=g.index)


# --- the same tables from one row per episode (the comparison path; the tests' reference) --------------------
@dataclass
class OutcomeView:
    """The filtered episodes and the types they count for: the input of every table and chart on the page."""

    episodes: pd.DataFrame
    types: pd.DataFrame  # episode_id, exercise_type, share, minutes (only episodes in `episodes`)
    catalog: pd.DataFrame
    filters: OutcomeFilters = OutcomeFilters()

    @property
    def n(self) -> int:
        return len(self.episodes)


def responders(df: pd.DataFrame, measure: str) -> dict[str, stats.Proportion | int]:
    """Responder rate for one measure, two ways, with ceiling-effect episodes counted apart.

    - itt: all starters with a baseline (not at the ceiling); a missing follow-up counts as not reached.
    - completers: discharged episodes with a follow-up value (not at the ceiling).
    """
    has_base = df[f"{measure}_baseline"].notna()
    return {
        "itt": stats.wilson(int(df[f"{measure}_itt_k"].sum()), int(df[f"{measure}_itt_n"].sum())),
        "completers": stats.wilson(int(df[f"{measure}_comp_k"].sum()), int(df[f"{measure}_comp_n"].sum())),
        "ceiling": int((has_base & df[f"{measure}_ceiling"]).sum()),
        "no_baseline": int((~has_base).sum()),
        "no_followup": int(((df[f"{measure}_itt_n"] == 1) & df[f"{measure}_change"].isna()).sum()),
    }


def summarise(
    df: pd.DataFrame, key: str | pd.Series, measures: Sequence[str] = tuple(MEASURES)
) -> pd.DataFrame:
    """Per group of `key`, vectorised: episodes; per measure n, mean change and 95 % CI (observed cases);
    per responder measure the ITT and completer responder rates (Wilson CI) and ceiling count; median weeks to
    MCID (leg pain, among those who reached it); mean adherence."""
    keys = df[key] if isinstance(key, str) else key
    size = df.groupby(keys, sort=True).size()
    cols: dict[str, Any] = {"episodes": size}
    for m in measures:
        ci = stats.mean_ci_groups(df[f"{m}_change"], keys).reindex(size.index)
        cols[f"{m}_n"] = ci["n"].fillna(0).astype(int)
        for c in ("mean", "lo", "hi"):
            cols[f"{m}_{c}"] = ci[c]
    flags = [
        f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")
    ]
    sums = df[flags].groupby(keys, sort=True).sum().reindex(size.index)
    for m in RESPONDER_MEASURES:
        for kind, short in (("itt", "itt"), ("completers", "comp")):
            k, n = sums[f"{m}_{short}_k"].astype(int), sums[f"{m}_{short}_n"].astype(int)
            p, lo, hi = stats.wilson_arrays(k, n)
            cols |= {f"{m}_{kind}_k": k, f"{m}_{kind}_n": n}
            cols |= {f"{m}_{kind}_rate": p, f"{m}_{kind}_lo": lo, f"{m}_{kind}_hi": hi}
        cols[f"{m}_ceiling"] = sums[f"{m}_ceiling_n"].astype(int)
    extra = df[["weeks_to_mcid", "adherence"]].groupby(keys, sort=True).agg(["count", "median", "mean"])
    extra = extra.reindex(size.index)
    cols["weeks_to_mcid_n"] = extra[("weeks_to_mcid", "count")].fillna(0).astype(int)
    cols["weeks_to_mcid_median"] = extra[("weeks_to_mcid", "median")]
    cols["adherence_mean"] = extra[("adherence", "mean")]
    cols["adherence_n"] = extra[("adherence", "count")].fillna(0).astype(int)
    return pd.DataFrame({k: np.asarray(v) for k, v in cols.items()}, index=size.index)


#: The episode columns `summarise` and the per-type tables read.
SUMMARY_COLUMNS = [
    *(f"{m}_change" for m in MEASURES),
    *(f"{m}_{x}" for m in RESPONDER_MEASURES for x in ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n")),
    "weeks_to_mcid",
    "adherence",
    "weeks_observed",
]


def _long_by_type(view: OutcomeView) -> pd.DataFrame:
    """One row per (episode, type it counts for): episodes repeat across their types."""
    present = [c for c in SUMMARY_COLUMNS if c in view.episodes]
    return view.types[["episode_id", "exercise_type", "minutes"]].merge(
        view.episodes[["episode_id", *present]], on="episode_id"
    )


def type_summary(view: OutcomeView, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per exercise type (and "All episodes" first): n, mean change with 95 % CI per measure, responder
    rates (ITT and completers, Wilson CI), ceiling counts, median weeks to MCID among responders, mean adherence."""
    labels = labels or {}
    all_rows = summarise(view.episodes, pd.Series("", index=view.episodes.index))
    by_type = summarise(_long_by_type(view), "exercise_type")
    out = pd.concat([all_rows, by_type]).rename_axis("type").reset_index()
    out.insert(0, "group", [labels.get(t, t) if t else "All episodes" for t in out["type"]])
    return out


def _type_indicators(view: OutcomeView) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """One 0/1 column per exercise type for the episodes (matrix, type names in order), and for each type row the
    position of its episode and of its type (-1: the episode is not in the view)."""
    codes = sorted(view.types["exercise_type"].unique())
    row = pd.Index(view.episodes["episode_id"]).get_indexer(view.types["episode_id"])
    col = pd.Index(codes).get_indexer(view.types["exercise_type"])
    matrix = np.zeros((len(view.episodes), len(codes)))
    matrix[row[row >= 0], col[row >= 0]] = 1.0
    return matrix, codes, row, col


def adjusted_comparison(
    view: OutcomeView, labels: dict[str, str] | None = None, measures: Sequence[str] = ("pain_leg", "odi")
) -> pd.DataFrame:
    """Unadjusted and risk-adjusted mean change per exercise type, side by side, per measure.

    Adjusted: OLS of the change on every type indicator + the measure's baseline + age + symptom duration +
    adherence (complete cases), as `stats.adjusted_means`.
    """
    labels = labels or {}
    cols = ["measure", "type", "label", "n", "unadjusted", "unadjusted_lo", "unadjusted_hi", "n_model"]
    cols += ["adjusted", "adjusted_lo", "adjusted_hi", "difference", "difference_lo", "difference_hi"]
    if view.types.empty:
        return pd.DataFrame(columns=cols)
    matrix, codes, row, col = _type_indicators(view)
    type_cols = [f"type__{c}" for c in codes]
    ep = view.episodes
    # only the model's columns: copying every episode column per measure cost more than the fit
    covariates = {c: ep[c].to_numpy() for c in COVARIATES}
    types = dict(zip(type_cols, matrix.T, strict=True))
    present = row >= 0
    type_of_row = pd.Series(pd.Categorical.from_codes(col[present], codes))
    frames = []
    for m in measures:
        change = ep[f"{m}_change"].to_numpy(dtype=float)
        df_m = pd.DataFrame(
            {f"{m}_change": change, "baseline": ep[f"{m}_baseline"].to_numpy(), **covariates, **types}
        )
        adj = stats.adjusted_means(df_m, f"{m}_change", type_cols, ["baseline", *COVARIATES])
        adj["type"] = adj["type"].str.removeprefix("type__")
        unadj = stats.mean_ci_groups(pd.Series(change[row[present]]), type_of_row)
        t = pd.DataFrame({"type": [c.removeprefix("type__") for c in type_cols]})
        t = t.merge(unadj.rename_axis("type").reset_index(), on="type", how="left")
        t = t.merge(adj, on="type", how="left", suffixes=("", "_adj"))
        frames.append(
            pd.DataFrame(
                {
                    "measure": m,
                    "type": t["type"],
                    "label": [labels.get(x, x) for x in t["type"]],
                    "n": t["n"].fillna(0).astype(int),
                    "unadjusted": t["mean"],
                    "unadjusted_lo": t["lo"],
                    "unadjusted_hi": t["hi"],
                    "n_model": t["n_model"].fillna(0).astype(int),
                    "adjusted": t["adjusted"],
                    "adjusted_lo": t["lo_adj"],
                    "adjusted_hi": t["hi_adj"],
                    "difference": t["coef"],
                    "difference_lo": t["coef_lo"],
                    "difference_hi": t["coef_hi"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[cols]


BENCHMARK_COLUMNS = ["group", "name", "n", "n_model", "adjusted", "adjusted_lo", "adjusted_hi", "observed"]
BENCHMARK_COLUMNS += ["responder_rate", "responder_lo", "responder_hi", "responder_n", "ftp_rate", "ftp_n"]
BENCHMARK_COLUMNS += ["small_n", "rank"]


BENCHMARK_TERMS: tuple[str, ...] = ("baseline", *COVARIATES)


def benchmark_model(view: OutcomeView) -> stats.AdjustedFit:
    """The case-mix OLS of the benchmarks (leg-pain change on baseline, age, symptom duration, adherence): one fit
    serves the therapist and the clinic tables."""
    df = view.episodes.assign(baseline=view.episodes[f"{PRIMARY}_baseline"])
    return stats.ols(df, f"{PRIMARY}_change", BENCHMARK_TERMS)


def benchmarks(
    view: OutcomeView, by: str, names: dict[str, str] | None = None, model: stats.AdjustedFit | None = None
) -> pd.DataFrame:
    """Therapist (`by="therapist_id"`) or clinic (`"clinic_id"`) benchmarks on leg pain.

    n = episodes; adjusted change = indirect standardisation (overall mean + observed - expected, expected from an
    OLS on baseline, age, symptom duration and adherence); responder rate ITT; failure-to-progress rate = episodes
    past 6 weeks or 8 visits with no MCID on leg pain or ODI, among those past that point. Groups with n below
    MIN_BENCHMARK_N get no rank (`small_n`); the others are ranked by adjusted change (largest drop first).
    `model`: `benchmark_model(view)` when the caller builds both tables.
    """
    names = names or {}
    df = view.episodes.assign(baseline=view.episodes[f"{PRIMARY}_baseline"])
    if df.empty:
        return pd.DataFrame(columns=BENCHMARK_COLUMNS)
    adj = stats.indirect_standardised(df, f"{PRIMARY}_change", by, BENCHMARK_TERMS, fit=model).set_index(
        "group"
    )
    # per group sums with numpy over the group codes: 2,000 therapists x 100k episodes through pandas' groupby
    # (`summarise`) cost ~40 ms per table
    codes, groups = pd.factorize(df[by], sort=True)
    ok = codes >= 0

    def per_group(values: Any) -> np.ndarray:
        return np.bincount(codes[ok], weights=np.asarray(values, dtype=float)[ok], minlength=len(groups))

    index = pd.Index(groups)
    observed = stats.mean_ci_groups(df[f"{PRIMARY}_change"], df[by]).reindex(index)
    itt_k, itt_n = per_group(df[f"{PRIMARY}_itt_k"]), per_group(df[f"{PRIMARY}_itt_n"])
    rate, rate_lo, rate_hi = stats.wilson_arrays(itt_k, itt_n)
    due = df["ftp_due"].to_numpy(dtype=bool)
    ftp, ftp_n = per_group(df["failure_to_progress"].to_numpy(dtype=bool) & due), per_group(due)
    adj = adj.reindex(index)
    with np.errstate(invalid="ignore", divide="ignore"):
        ftp_rate = np.where(ftp_n > 0, ftp / ftp_n, np.nan)
    out = pd.DataFrame(
        {
            "group": groups,
            "name": [names.get(g, g) for g in groups],
            "n": np.bincount(codes[ok], minlength=len(groups)),
            "n_model": adj["n_model"].fillna(0).astype(int).to_numpy(),
            "adjusted": adj["adjusted"].to_numpy(),
            "adjusted_lo": adj["lo"].to_numpy(),
            "adjusted_hi": adj["hi"].to_numpy(),
            "observed": observed["mean"].to_numpy(),
            "responder_rate": rate,
            "responder_lo": rate_lo,
            "responder_hi": rate_hi,
            "responder_n": itt_n.astype(int),
            "ftp_rate": ftp_rate,
            "ftp_n": ftp_n.astype(int),
        }
    )
    out["small_n"] = out["n"] < MIN_BENCHMARK_N
    rankable = ~out["small_n"] & out["adjusted"].notna()
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    # lower leg pain change = more improvement: rank 1 is the largest drop
    out.loc[rankable, "rank"] = out.loc[rankable, "adjusted"].rank(method="min").astype("Int64")
    return out.sort_values(["small_n", "rank", "group"], na_position="last", ignore_index=True)[
        BENCHMARK_COLUMNS
    ]


def adherence_band(adherence: pd.Series, home_scheduled: pd.Series) -> pd.Series:
    out = pd.Series(NO_HOME, index=adherence.index, dtype=object)
    for name, lo, hi in ADHERENCE_BANDS:
        out[(adherence >= lo - EPS) & (adherence < hi - EPS)] = name
    out[(home_scheduled <= 0) | adherence.isna()] = NO_HOME
    return out


def dose_response(view: OutcomeView, measure: str = PRIMARY) -> pd.DataFrame:
    """Mean change (95 % CI) and ITT responder rate by home-adherence band."""
    df = view.episodes
    order = [b[0] for b in ADHERENCE_BANDS] + [NO_HOME]
    s = summarise(
        df, adherence_band(df["adherence"], df["home_scheduled"]).rename("band"), measures=(measure,)
    )
    s = s.reindex(order)
    return pd.DataFrame(
        {
            "band": order,
            "episodes": s["episodes"].fillna(0).astype(int).to_numpy(),
            "n": s[f"{measure}_n"].fillna(0).astype(int).to_numpy(),
            "mean": s[f"{measure}_mean"].to_numpy(),
            "lo": s[f"{measure}_lo"].to_numpy(),
            "hi": s[f"{measure}_hi"].to_numpy(),
            "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
            "responder_n": s[f"{PRIMARY}_itt_n"].fillna(0).astype(int).to_numpy(),
        }
    )


def dose_by_type(
    view: OutcomeView, labels: dict[str, str] | None = None, measure: str = PRIMARY
) -> pd.DataFrame:
    """Mean change by weekly minutes of each exercise type (minutes of the type / weeks observed, at least 1)."""
    labels = labels or {}
    cols = ["type", "label", "band", "n", "mean", "lo", "hi"]
    if view.types.empty:
        return pd.DataFrame(columns=cols)
    df = _long_by_type(view)
    weekly = df["minutes"] / df["weeks_observed"].clip(lower=1.0)
    band = pd.Series(None, index=df.index, dtype=object)
    for name, lo, hi in WEEKLY_DOSE_BANDS:
        band[(weekly >= lo) & (weekly < hi)] = name
    ci = stats.mean_ci_groups(df[f"{measure}_change"], [df["exercise_type"], band]).reset_index()
    ci.columns = ["type", "band", *ci.columns[2:]]
    full = pd.MultiIndex.from_product(
        [sorted(df["exercise_type"].unique()), [b[0] for b in WEEKLY_DOSE_BANDS]]
    )
    ci = ci.set_index(["type", "band"]).reindex(full).rename_axis(["type", "band"]).reset_index()
    ci["n"] = ci["n"].fillna(0).astype(int)
    ci["label"] = [labels.get(t, t) for t in ci["type"]]
    return ci[cols]


def monthly_trend(view: OutcomeView, measure: str = PRIMARY) -> pd.DataFrame:
    """By month of episode start: episodes, mean change (95 % CI) and ITT responder rate."""
    cols = ["month", "episodes", "n", "mean", "lo", "hi", "responder_rate", "responder_n"]
    if view.episodes.empty:
        return pd.DataFrame(columns=cols)
    s = summarise(view.episodes, "start_month", measures=(measure,))
    return pd.DataFrame(
        {
            "month": s.index,
            "episodes": s["episodes"].to_numpy(),
            "n": s[f"{measure}_n"].to_numpy(),
            "mean": s[f"{measure}_mean"].to_numpy(),
            "lo": s[f"{measure}_lo"].to_numpy(),
            "hi": s[f"{measure}_hi"].to_numpy(),
            "responder_rate": s[f"{PRIMARY}_itt_rate"].to_numpy(),
            "responder_n": s[f"{PRIMARY}_itt_n"].to_numpy(),
        }
    )


def missing_data(view: OutcomeView) -> pd.DataFrame:
    """Counts behind every rate: starters, completers, still active, dropped out, and per measure: no baseline,
    baseline but no follow-up, ceiling effect (baseline already within the MCID of the best value)."""
    df = view.episodes
    rows = [
        ("All starters (ITT)", len(df)),
        ("Completers (discharged)", int(df["completed"].sum())),
        ("Still in care", int((~df["completed"] & ~df["dropped_out"]).sum())),
        ("Dropped out (no data 14 d, not discharged)", int(df["dropped_out"].sum())),
    ]
    for m, label in MEASURES.items():
        has_base = df[f"{m}_baseline"].notna()
        rows += [
            (f"{label}: no baseline", int((~has_base).sum())),
            (f"{label}: baseline, no follow-up", int((has_base & df[f"{m}_change"].isna()).sum())),
            (f"{label}: ceiling effect (counted apart)", int((has_base & df[f"{m}_ceiling"]).sum())),
        ]
    return pd.DataFrame(rows, columns=["what", "episodes"])


def dropout_by_week(view: OutcomeView, max_week: int = 12) -> pd.DataFrame:
    """Drop-outs by the week of their last activity, and the share of starters not (yet) dropped out."""
    df = view.episodes
    n = len(df)
    weeks = df["dropout_week"].dropna().clip(upper=max_week).astype(int)
    counts = weeks.value_counts().reindex(range(1, max_week + 1), fill_value=0)
    out = pd.DataFrame({"week": counts.index, "dropouts": counts.to_numpy()})
    out["remaining_pct"] = (100.0 * (n - out["dropouts"].cumsum()) / n) if n else np.nan
    return out


def data_quality_counts(view: OutcomeView) -> pd.DataFrame:
    """Episodes (patients) missing a baseline or a follow-up for leg pain and ODI."""
    df = view.episodes
    rows = []
    for m in ("pain_leg", "odi"):
        has_base = df[f"{m}_baseline"].notna()
        rows.append(
            {
                "measure": MEASURES[m],
                "episodes": len(df),
                "patients_missing_baseline": int(df.loc[~has_base, "patient_id"].nunique()),
                "patients_missing_followup": int(
                    df.loc[has_base & df[f"{m}_change"].isna(), "patient_id"].nunique()
                ),
            }
        )
    return pd.DataFrame(rows)


def scatter_points(view: OutcomeView, measure: str = PRIMARY, max_points: int = 3000) -> pd.DataFrame:
    """Adherence vs change (complete pairs); a deterministic sample when there are more than `max_points`."""
    df = view.episodes[["episode_id", "adherence", f"{measure}_change"]].dropna()
    df = df.rename(columns={f"{measure}_change": "change"})
    if len(df) > max_points:
        df = df.sample(max_points, random_state=0)
    return df


def recovery_bands(scores_df: pd.DataFrame, max_week: int = 16) -> pd.DataFrame:
    """25/50/75th percentiles of the measure by week since the episode start (weeks with >= 5 values)."""
    df = scores_df[scores_df["week"].between(0, max_week)]
    return stats.percentile_bands(df, "week", "value")


_SUMMARY_OUT.extend(
    [
        "episodes",
        *(f"{m}_{x}" for m in MEASURES for x in ("n", "mean", "lo", "hi")),
        *(
            f"{m}_{kind}_{x}" if kind else f"{m}_ceiling"
            for m in RESPONDER_MEASURES
            for kind in ("itt", "completers", "")
            for x in (("k", "n", "rate", "lo", "hi") if kind else ("",))
        ),
        "weeks_to_mcid_n",
        "weeks_to_mcid_median",
        "adherence_mean",
        "adherence_n",
    ]
)

__all__ = [
    "OutcomeFilters",
    "OutcomeAggregates",
    "OutcomeView",
    "EpisodeSQL",
    "episode_sql",
    "outcome_aggregates",
    "outcome_rows",
    "quality_counts",
    "measure_thresholds",
    "recovery_scores",
    "etl_batch_rows",
    "reject_reasons",
    "responders",
    "summarise",
    "type_summary",
    "adjusted_comparison",
    "benchmarks",
    "dose_response",
    "dose_by_type",
    "monthly_trend",
    "missing_data",
    "dropout_by_week",
    "data_quality_counts",
    "scatter_points",
    "recovery_bands",
]
