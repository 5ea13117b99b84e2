"""Marts: the per-episode summaries the caseload and cohort pages read instead of the raw facts.

Refreshed for the patients a load touched, in blocks, inside the load's transaction: the dashboard never sees facts
without their summary. Clinical rules (baseline window, partial sessions, windows) come from SummaryRules.
Where a measure is scored on both sides at the same time, the worse side counts.

The refreshed patients go into a temporary table with their block number, and every statement of a block selects
its patients from it (no bound id lists). Per block: the episodes and their windows are computed in pandas (a few
rows per patient) and written to a temporary table; the scores and sessions are grouped against it in SQL
(`_score_aggregates`, `_session_aggregates`), so only one row per episode and measure, and one per episode, comes
back to Python, never the fact rows. The earlier per-row pandas implementation is kept as the oracle of
tests/etl/test_summary_aggregates.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    or_,
    select,
)

from etl.bulk import bulk_insert
from etl.memory import release_freed_memory
from etl.stage_tables import stage_windows
from etl.summary_dose import clear_outcome_marts, refresh_outcome_marts
from etl.summary_flags import add_caseload_flags, rules_from_catalog, sync_caseload_flags
from warehouse.config import SummaryRules
from warehouse.db import analyze_postgresql, fetch_rows, sort_memory
from warehouse.flag_rules import FlagRules
from warehouse.outcome_pack import rebuild_all_packs, rebuild_packs
from warehouse.schema import (
    CASELOAD_FLAGS,
    WIDE_FIELDS,
    WIDE_MEASURES,
    episode_measure_summary,
    episode_summary,
    episodes,
    measures,
    patients,
    scores,
    sessions,
)
from warehouse.sqltext import timestamp_text

#: Patients per refresh block. Only per-episode rows come back to Python (the facts are grouped in SQL), so a
#: block's memory is tens of MB; bigger blocks mean fewer statements and less fixed pandas work per row (500 -> 2,000:
#: refresh 4.9 -> 2.6 s per 1M scores). 10,000 (one block for the 1M-score benchmark): the refresh's peak RSS over
#: its start +54 MB, against +44 MB with 5,000 and +41 MB with 2,000; its CPU 1.21 s, against 1.30 and 1.53 s.
BLOCK_PATIENTS = 10_000
#: Refreshes of at least this many patients update PostgreSQL's statistics of the marts before the pack rebuild.
ANALYZE_MARTS_PATIENTS = 1_000

_refresh_metadata = MetaData()
#: The patients of one refresh and their block number: every per-block statement selects its patients by joining
#: this table instead of binding a list (SQLAlchemy's expansion of 2,000-id IN lists cost ~0.2 s per 10k patients).
refresh_patients = Table(
    "stage_refresh_patients",
    _refresh_metadata,
    Column("block", Integer, primary_key=True, autoincrement=False),
    Column("patient_id", String(64), primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def _timestamps(s: pd.Series, *, day: bool = False) -> pd.Series:
    """Driver values to pandas timestamps: ISO text on SQLite, date/datetime objects on PostgreSQL; None (or NaN)
    is NaT. numpy's parser: pandas' ISO8601 path cost ~8x more."""
    if s.dtype.kind == "M":  # pandas made timestamps of the driver's datetimes already
        out = s.astype("datetime64[us]")
    else:
        out = pd.Series(
            np.asarray(s.to_numpy(dtype=object, na_value=None), dtype="datetime64[us]"), index=s.index
        )
    return out.dt.normalize() if day else out


def _text(values: pd.Series, *, day: bool = False) -> pd.Series:
    """Timestamps as the text SQLAlchemy stores on SQLite (warehouse/sqltext.py), which PostgreSQL parses as well;
    None for NaT."""
    return pd.Series(
        timestamp_text(values.to_numpy(dtype="datetime64[us]"), day=day), index=values.index, dtype=object
    )


def _catalog(conn: Connection) -> pd.DataFrame:
    """The measures' thresholds the refresh and the flag rules read."""
    return pd.DataFrame(
        conn.execute(
            select(measures.c.code, measures.c.better, measures.c.mcid_abs, measures.c.mcid_pct)
        ).all(),
        columns=["measure", "better", "mcid_abs", "mcid_pct"],
    )


def refresh_summaries(
    conn: Connection,
    patient_ids: Sequence[str],
    *,
    as_of: date | None = None,
    rules: SummaryRules | None = None,
) -> int:
    """Recompute both marts for these patients; returns the number of episodes written."""
    as_of = as_of or date.today()
    rules = rules or SummaryRules()
    catalog = _catalog(conn)
    flag_rules = rules_from_catalog(catalog)
    ids = list(dict.fromkeys(patient_ids))
    for table in (refresh_patients, stage_windows):
        table.drop(conn, checkfirst=True)
        table.create(conn)
    blocks = np.arange(len(ids), dtype=np.int64) // BLOCK_PATIENTS
    ids_frame = pd.DataFrame({"block": blocks, "patient_id": pd.Series(ids, dtype=object)})
    _fill(conn, refresh_patients, ids_frame)
    touched = _clinics(conn)  # outcome packs: the clinics these patients leave...
    written = 0
    with sort_memory(conn):
        for block in range(int(blocks[-1]) + 1 if ids else 0):
            written += _refresh_block(conn, block, as_of, rules, catalog, flag_rules)
            release_freed_memory()
    touched |= _clinics(conn)  # ...and the ones they are in now (warehouse/outcome_pack.py)
    if len(ids) >= ANALYZE_MARTS_PATIENTS:
        # The pack query joins the marts just written; with the statistics of before (empty episode_measure_summary
        # after a patients file) PostgreSQL planned it for empty tables: 0.85 s for 10k episodes.
        analyze_postgresql(conn, episode_summary, episode_measure_summary)
    rebuild_packs(conn, touched, flag_rules)
    return written


def _fill(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """A temporary table's rows, then (PostgreSQL) its statistics: autovacuum never analyzes temporary tables, and
    without row counts the planner's guesses for the joins with them were off (_clinics 0.05 -> 0.01 s)."""
    bulk_insert(conn, table, frame)
    analyze_postgresql(conn, table)


def refresh_all(conn: Connection, *, as_of: date | None = None, rules: SummaryRules | None = None) -> int:
    ids = conn.execute(select(patients.c.patient_id).order_by(patients.c.patient_id)).scalars().all()
    return refresh_summaries(conn, ids, as_of=as_of, rules=rules)


def _block_patients(block: int) -> Select:
    """The patient ids of one block, for `patient_id IN (...)`."""
    return select(refresh_patients.c.patient_id).where(refresh_patients.c.block == block)


def _clinics(conn: Connection) -> set[str]:
    """The clinics of the refreshed patients' summarised episodes (before the refresh: the packs they leave; after:
    the ones they join)."""
    es = episode_summary
    stmt = select(es.c.clinic_id).where(es.c.patient_id.in_(select(refresh_patients.c.patient_id))).distinct()
    return {c for c in conn.execute(stmt).scalars() if c is not None}


def _read(conn: Connection, query, columns: list[str]) -> pd.DataFrame:
    """Rows straight from the driver cursor (`warehouse.db.fetch_rows`): SQLAlchemy's Row objects cost more than
    the query for these reads."""
    _names, rows = fetch_rows(conn, query)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame.from_records(rows, columns=columns)


def _refresh_block(
    conn: Connection,
    block: int,
    as_of: date,
    rules: SummaryRules,
    catalog: pd.DataFrame,
    flag_rules: FlagRules,
) -> int:
    ids = _block_patients(block)
    ep = _read(
        conn,
        select(
            episodes.c.episode_id,
            episodes.c.patient_id,
            episodes.c.start_date,
            episodes.c.end_date,
            patients.c.clinic_id,
            patients.c.therapist_id,
        )
        .join(patients, patients.c.patient_id == episodes.c.patient_id)
        .where(episodes.c.patient_id.in_(ids)),
        ["episode_id", "patient_id", "start_date", "end_date", "clinic_id", "therapist_id"],
    )
    conn.execute(episode_measure_summary.delete().where(episode_measure_summary.c.patient_id.in_(ids)))
    conn.execute(episode_summary.delete().where(episode_summary.c.patient_id.in_(ids)))
    if ep.empty:
        # No episodes (any more): nothing to write, but the outcome marts' rows of these patients must go as well,
        # or old dose / first-MCID rows would outlive the episodes they were computed for.
        clear_outcome_marts(conn, ids)
        return 0
    ep["start_date"] = _timestamps(ep["start_date"], day=True)
    ep["end_date"] = _timestamps(ep["end_date"], day=True)
    windows = _episode_windows(ep, as_of, rules)

    _write_windows(conn, windows, as_of, rules)
    per_measure = _score_aggregates(conn, windows, catalog)
    per_episode = _session_aggregates(conn, windows, rules)
    measure_rows = _measure_summary(per_measure, catalog)
    episode_rows = _with_wide_measures(
        _episode_summary(windows, per_measure, per_episode, as_of, rules), measure_rows
    )
    episode_rows = _dates_as_text(add_caseload_flags(episode_rows, measure_rows, flag_rules))
    bulk_insert(conn, episode_summary, episode_rows)
    bulk_insert(conn, episode_measure_summary, measure_rows)
    refresh_outcome_marts(conn, ids, rules)  # outcomes page marts (etl/summary_dose.py)
    return len(episode_rows)


def _episode_windows(ep: pd.DataFrame, as_of: date, rules: SummaryRules) -> pd.DataFrame:
    """Which dates belong to which episode: from a few days before its start until its end, or until shortly
    before the patient's next episode, or as_of."""
    w = ep.sort_values(["patient_id", "start_date"]).copy()
    before = pd.Timedelta(days=rules.baseline_days_before)
    w["window_start"] = w["start_date"] - before
    next_start = w.groupby("patient_id")["start_date"].shift(-1)
    end = pd.Series(pd.Timestamp(as_of) + pd.Timedelta(days=1), index=w.index)  # exclusive
    end = end.where(w["end_date"].isna(), w["end_date"] + pd.Timedelta(days=1))
    end = end.where(next_start.isna() | (next_start - before > end), next_start - before)
    w["window_end"] = end
    return w


AGGREGATE_COLUMNS = [
    "episode_id",
    "patient_id",
    "measure",
    "n_values",
    "first_at",
    "latest_at",
    "baseline_at",
    "latest_value",
    "baseline_value",
]


def _write_windows(conn: Connection, windows: pd.DataFrame, as_of: date, rules: SummaryRules) -> None:
    """The block's episode windows into `stage_windows`, for the aggregate queries. Every bound is a midnight; the
    values go in as text in SQLAlchemy's SQLite storage format (which PostgreSQL's COPY parses as well), so that
    they compare with the stored facts as SQLAlchemy's own values would, without its per-value processing."""
    conn.execute(stage_windows.delete())
    if windows.empty:
        return
    before = pd.Timedelta(days=rules.baseline_days_before)
    after = pd.Timedelta(days=rules.baseline_days_after + 1)
    recent_end = windows["window_end"].clip(upper=pd.Timestamp(as_of) + pd.Timedelta(days=1))
    start = windows["start_date"]
    recent_start = recent_end - pd.Timedelta(days=rules.recent_window_days)
    frame = pd.DataFrame(
        {
            "episode_id": windows["episode_id"].astype("int64"),
            "patient_id": windows["patient_id"],
            "window_start": _text(windows["window_start"]),
            "window_end": _text(windows["window_end"]),
            "baseline_lo": _text(start - before),
            "baseline_hi": _text(start + after),
            "window_start_day": _text(windows["window_start"], day=True),
            "window_end_day": _text(windows["window_end"], day=True),
            "recent_start": _text(recent_start, day=True),
            "recent_end": _text(recent_end, day=True),
        }
    )
    _fill(conn, stage_windows, frame)


def _score_aggregates(conn: Connection, windows: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """Per episode and measure, computed in SQL from the block's scores: how many instants were scored, the first
    and latest instant, the first instant inside the baseline window, and the value at the latest and at the
    baseline instant (the worse side when a measure is scored on both at once: the lowest value of a
    higher-is-better measure in the catalog, else the highest).

    A score belongs to the episode whose window holds it (`_episode_windows`: the windows of one patient do not
    overlap). Only these aggregates come back to Python, one row per episode and measure, instead of every score
    row of the block (the reads and the per-row pandas work were most of the refresh, and its peak memory).

    The instants come from the grouping on PostgreSQL, and from index seeks on SQLite: there min/max over the text
    timestamps of every row cost ~0.25 s per 1M scores, three seeks per (episode, measure) on the scores' primary
    key (patient, measure, recorded_at) ~0.07 s (on PostgreSQL it is the other way round: a sub-plan per seek).
    The seeks sit in the grouping's select list, so each runs once per group, and the value lookups read their
    result; the higher-is-better codes are bound, not joined from `measures` (the join cost 0.07 s on SQLite).
    """
    if windows.empty:
        return _typed_aggregates(pd.DataFrame(columns=AGGREGATE_COLUMNS))
    w, s = stage_windows, scores
    if conn.dialect.name == "sqlite":

        def seek(fn, *bounds):
            v = scores.alias()
            at = v.c.recorded_at
            return (
                select(fn(at))
                .where(v.c.patient_id == w.c.patient_id, v.c.measure == s.c.measure, *(b(at) for b in bounds))
                .scalar_subquery()
            )

        # a group exists only with a score in its window, so one bound suffices for its first and latest instant
        instants = [
            seek(func.min, lambda at: at >= w.c.window_start),
            seek(func.max, lambda at: at < w.c.window_end),
            seek(
                func.min,
                lambda at: at >= w.c.window_start,
                lambda at: at < w.c.window_end,
                lambda at: at >= w.c.baseline_lo,
                lambda at: at < w.c.baseline_hi,
            ),
        ]
    else:
        in_baseline = and_(s.c.recorded_at >= w.c.baseline_lo, s.c.recorded_at < w.c.baseline_hi)
        instants = [
            func.min(s.c.recorded_at),
            func.max(s.c.recorded_at),
            func.min(case((in_baseline, s.c.recorded_at))),
        ]
    in_window = and_(
        s.c.patient_id == w.c.patient_id,
        s.c.recorded_at >= w.c.window_start,
        s.c.recorded_at < w.c.window_end,
    )
    # Instants scored: the rows, when they all have the same side (the primary key then makes their instants
    # distinct); else counted again, distinct, for that group only. COUNT(DISTINCT recorded_at) on every group
    # cost ~0.06 s per 1M scores on SQLite. "Same side" is min = max rather than COUNT(DISTINCT side) = 1 (the same
    # truth, NULLs included): a DISTINCT aggregate made PostgreSQL sort all 1M joined rows for a GroupAggregate
    # (0.43 s of the 1.16 s query) where a HashAggregate needs no sort.
    c = scores.alias()
    distinct_instants = (
        select(func.count(c.c.recorded_at.distinct()))
        .where(
            c.c.patient_id == w.c.patient_id,
            c.c.measure == s.c.measure,
            c.c.recorded_at >= w.c.window_start,
            c.c.recorded_at < w.c.window_end,
        )
        .scalar_subquery()
    )
    n_values = case((func.min(s.c.side) == func.max(s.c.side), func.count()), else_=distinct_instants)
    agg = (
        select(
            w.c.episode_id,
            w.c.patient_id,
            s.c.measure,
            n_values.label("n_values"),
            *(
                x.label(name)
                for x, name in zip(instants, ("first_at", "latest_at", "baseline_at"), strict=True)
            ),
        )
        .select_from(w.join(s, in_window))
        .group_by(w.c.episode_id, s.c.measure)  # patient_id: one per episode (its primary key)
        .subquery()
    )
    higher = sorted(catalog.loc[catalog["better"] == "higher", "measure"])

    def worse_value_at(instant):
        v = scores.alias()
        worse = case((agg.c.measure.in_(higher), func.min(v.c.value)), else_=func.max(v.c.value))
        return (
            select(worse)
            .where(
                v.c.patient_id == agg.c.patient_id, v.c.measure == agg.c.measure, v.c.recorded_at == instant
            )
            .scalar_subquery()
        )

    q = select(
        *(agg.c[c] for c in AGGREGATE_COLUMNS[:7]),
        worse_value_at(agg.c.latest_at),
        worse_value_at(agg.c.baseline_at),
    )
    out = _read(conn, q, AGGREGATE_COLUMNS).sort_values(["episode_id", "measure"], ignore_index=True)
    return _typed_aggregates(out)


SESSION_AGGREGATE_COLUMNS = [
    "episode_id",
    "home_scheduled",
    "home_completed",
    "home_partial",
    "home_scheduled_14d",
    "home_completed_14d",
    "home_partial_14d",
    "visits",
    "first_done",
    "last_done",
]


def _session_aggregates(conn: Connection, windows: pd.DataFrame, rules: SummaryRules) -> pd.DataFrame:
    """Per episode, computed in SQL from the block's sessions (in the episode's window, as for scores): home
    sessions scheduled, completed and partial, overall and in the recent window; clinic days with a session done;
    the first and last day with a session done. A session is done when completed, or partial with a weight > 0;
    home done = completed + weight x partial."""
    if windows.empty:
        return pd.DataFrame(columns=SESSION_AGGREGATE_COLUMNS).set_index("episode_id")
    w, s = stage_windows, sessions
    home = s.c.setting == "home"
    recent = and_(s.c.session_date >= w.c.recent_start, s.c.session_date < w.c.recent_end)
    completed, partial = s.c.status == "completed", s.c.status == "partial"
    done = or_(completed, partial) if rules.partial_session_weight > 0 else completed

    def n(*cond):
        return func.count(case((and_(*cond), 1)))

    q = (
        select(
            w.c.episode_id,
            n(home),
            n(home, completed),
            n(home, partial),
            n(home, recent),
            n(home, recent, completed),
            n(home, recent, partial),
            func.count(case((and_(s.c.setting == "clinic", done), s.c.session_date)).distinct()),
            func.min(case((done, s.c.session_date))),
            func.max(case((done, s.c.session_date))),
        )
        .select_from(
            w.join(
                s,
                and_(
                    s.c.patient_id == w.c.patient_id,
                    s.c.session_date >= w.c.window_start_day,
                    s.c.session_date < w.c.window_end_day,
                ),
            )
        )
        .group_by(w.c.episode_id)
    )
    out = _read(conn, q, SESSION_AGGREGATE_COLUMNS)
    for c in ("first_done", "last_done"):
        out[c] = _timestamps(out[c].where(out[c].notna(), None), day=True)
    return out.set_index("episode_id")


def _typed_aggregates(agg: pd.DataFrame) -> pd.DataFrame:
    for c in ("first_at", "latest_at", "baseline_at"):
        agg[c] = _timestamps(agg[c].where(agg[c].notna(), None))
    for c in ("latest_value", "baseline_value"):
        agg[c] = pd.to_numeric(agg[c]).astype(float)
    agg["episode_id"] = agg["episode_id"].astype("int64")
    agg["n_values"] = agg["n_values"].astype("int64")
    return agg


def _changes_and_mcid(out: pd.DataFrame) -> None:
    """Change, percent change, improvement, MCID reached and worsened, in place, from each row's baseline and latest
    value (and times) and its measure's catalog thresholds (better, mcid_abs, mcid_pct)."""
    has_follow_up = out["latest_at"] > out["baseline_at"]
    out["change"] = (out["latest_value"] - out["baseline_value"]).where(has_follow_up)
    base = out["baseline_value"]
    out["pct_change"] = (out["change"] / base * 100).where(base.abs() > 0)
    sign = np.where(out["better"] == "lower", -1.0, 1.0)
    out["improvement"] = out["change"] * sign
    pct_improvement = (out["improvement"] / base * 100).where(base.abs() > 0)
    has_threshold = out["mcid_abs"].notna() | out["mcid_pct"].notna()
    reached = (out["improvement"] >= out["mcid_abs"]) | (pct_improvement >= out["mcid_pct"])
    worse = (-out["improvement"] >= out["mcid_abs"]) | (-pct_improvement >= out["mcid_pct"])
    known = has_threshold & out["change"].notna()
    out["mcid_reached"] = reached.where(known, None)
    out["worsened"] = worse.where(known, None)


def _measure_summary(agg: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """`episode_measure_summary` rows from the per-episode aggregates (`_score_aggregates`)."""
    cols = [c.name for c in episode_measure_summary.columns]
    if agg.empty:
        return pd.DataFrame(columns=cols)
    out = agg.merge(catalog, on="measure", how="left")
    _changes_and_mcid(out)
    for c in ("latest_at", "baseline_at"):
        out[c] = _text(out[c])
    for c in ("mcid_reached", "worsened"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out[cols]


def _episode_summary(
    windows: pd.DataFrame,
    per_measure: pd.DataFrame,
    per_episode: pd.DataFrame,
    as_of: date,
    rules: SummaryRules,
) -> pd.DataFrame:
    """`episode_summary` rows from the windows and the per-episode aggregates of scores and sessions; the dates
    stay timestamps for the caseload flags (`_dates_as_text` before writing)."""
    out = windows.set_index("episode_id")[
        ["patient_id", "clinic_id", "therapist_id", "start_date", "end_date", "window_end"]
    ].copy()
    out["is_active"] = out["end_date"].isna()
    sa = per_episode.reindex(out.index)
    weight = rules.partial_session_weight
    out["home_scheduled"] = sa["home_scheduled"].astype(float).fillna(0)
    out["home_done"] = (
        sa["home_completed"].astype(float) + weight * sa["home_partial"].astype(float)
    ).fillna(0)
    out["home_scheduled_14d"] = sa["home_scheduled_14d"].astype(float).fillna(0)
    out["home_done_14d"] = (
        sa["home_completed_14d"].astype(float) + weight * sa["home_partial_14d"].astype(float)
    ).fillna(0)
    out["adherence"] = (out["home_done"] / out["home_scheduled"]).where(out["home_scheduled"] > 0)
    out["adherence_14d"] = (out["home_done_14d"] / out["home_scheduled_14d"]).where(
        out["home_scheduled_14d"] > 0
    )
    out["visits"] = sa["visits"].astype(float).fillna(0).astype(int)
    # the first and last day with a score or a session done (a measure's first_at <= its latest_at)
    scored = per_measure.groupby("episode_id").agg(first=("first_at", "min"), last=("latest_at", "max"))
    first = _earliest(scored["first"].reindex(out.index), per_episode["first_done"].reindex(out.index))
    last = _latest(scored["last"].reindex(out.index), per_episode["last_done"].reindex(out.index))
    out["first_activity"] = first.astype("datetime64[us]").dt.normalize()
    out["last_activity"] = last.astype("datetime64[us]").dt.normalize()
    out["as_of"] = pd.Timestamp(as_of)
    out["refreshed_at"] = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    out = out.reset_index()
    out["home_scheduled"] = out["home_scheduled"].astype(int)
    out["home_scheduled_14d"] = out["home_scheduled_14d"].astype(int)
    return out.reindex(columns=[c.name for c in episode_summary.columns])


def _earliest(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.where(b.isna() | (a <= b), b)


def _latest(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.where(b.isna() | (a >= b), b)


EPISODE_DATES = ("start_date", "end_date", "first_activity", "last_activity", "as_of")


def _dates_as_text(episode_rows: pd.DataFrame) -> pd.DataFrame:
    for c in EPISODE_DATES:
        episode_rows[c] = _text(episode_rows[c], day=True)
    return episode_rows


def _with_wide_measures(episode_rows: pd.DataFrame, measure_rows: pd.DataFrame) -> pd.DataFrame:
    """Copy the caseload's measures into columns of the episode row (see schema.WIDE_MEASURES)."""
    out = episode_rows.set_index("episode_id")
    fields = list(dict.fromkeys(WIDE_FIELDS.values()))
    long = measure_rows.loc[measure_rows["measure"].isin(WIDE_MEASURES), ["episode_id", "measure", *fields]]
    table = long.pivot(index="episode_id", columns="measure").reindex(out.index)
    for code in WIDE_MEASURES:
        for suffix, source in WIDE_FIELDS.items():
            out[f"{code}_{suffix}"] = table.get((source, code), None)
    out = out.reset_index()
    for col in (*(f"flag_{name}" for name in CASELOAD_FLAGS), "n_flags"):
        if col not in out or out[col].isna().all():
            out[col] = 0  # set by add_caseload_flags (etl/summary_flags.py) in _refresh_block
    return out[[c.name for c in episode_summary.columns]]


def sync_wide_measures(conn: Connection) -> None:
    """Recopy the wide caseload columns from `episode_measure_summary` in SQL.

    The refresh writes both at once; this is for summaries written by other means (tests, a hand repair). The
    caseload flags and the outcome packs are rebuilt after it.
    """
    m = episode_measure_summary
    values = {}
    for code in WIDE_MEASURES:
        for suffix, source in WIDE_FIELDS.items():
            values[f"{code}_{suffix}"] = (
                select(m.c[source])
                .where(m.c.episode_id == episode_summary.c.episode_id, m.c.measure == code)
                .scalar_subquery()
            )
    conn.execute(episode_summary.update().values(values))
    sync_caseload_flags(conn)
    rebuild_all_packs(conn, rules_from_catalog(_catalog(conn)))  # the packs hold these columns' consequences


__all__ = ["refresh_all", "refresh_summaries", "sync_wide_measures"]
