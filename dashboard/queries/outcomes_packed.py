"""The filter-change numbers from the outcome packs (warehouse/outcome_pack.py): the same sums as the grouped SQL
of `outcomes.outcome_aggregates`, computed with numpy over the per-episode records the ETL stored per clinic.

Why it exists: clinic-wide at 100k patients the grouped SQL costs 0.5-1.3 s on SQLite (its VM evaluates ~65
aggregates per episode); these sums take tens of milliseconds. What it reads: the packs of the clinics in the
viewer's scope (the scope is a WHERE on `outcome_pack.clinic_id`, in SQL), never `episode_summary` rows. The page's
rules are not re-implemented here: the pack holds their SQL results (`warehouse.outcome_rules.episode_sql`), and
`outcomes.sum_terms` says which sums to take, for both paths.

`packed_aggregates` returns None when the packs cannot answer (a therapist-scoped viewer, packs built with other
rules or thresholds, or packs that do not cover every episode in scope); the caller then uses the SQL path. Tests
check that both paths give the same tables (tests/dashboard/test_outcomes_packed.py, SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, func, select

from dashboard.flags import FlagRules
from dashboard.queries import outcomes as oq
from dashboard.scope import Scope, scope_clause
from warehouse.outcome_pack import BAND_NAMES, EPISODE_DTYPE, SETTING_CODES, Packs, pack_layout, read_packs
from warehouse.schema import episode_summary, outcome_pack

_EPOCH = dt.date(1970, 1, 1)
log = logging.getLogger(__name__)


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def load_packs(
    engine: Engine, scope: Scope, filters: oq.OutcomeFilters, rules: FlagRules, catalog: pd.DataFrame
) -> Packs | None:
    """The packs of the viewer's clinics (and the clinic filter), or None if they cannot stand in for the marts."""
    if scope.kind not in ("clinic_wide", "clinics"):
        return None
    where = scope_clause(scope, outcome_pack)
    summary_where = scope_clause(scope, episode_summary)
    if filters.clinic_id:
        where = and_(where, outcome_pack.c.clinic_id == filters.clinic_id)
        summary_where = and_(summary_where, episode_summary.c.clinic_id == filters.clinic_id)
    with engine.connect() as conn:
        packs = read_packs(conn, where, pack_layout(catalog, rules))
        if packs is None:
            log.warning(
                "outcome packs were built with other rules or thresholds: answering from SQL (slower) until the "
                "next refresh (`python -m etl refresh`)"
            )
            return None
        # every episode in scope must be in a pack (a warehouse refreshed by an older ETL would not be)
        expected = conn.execute(
            select(func.count()).select_from(episode_summary).where(summary_where)
        ).scalar()
    return packs if int(expected or 0) == packs.n else None


def filter_mask(packs: Packs, filters: oq.OutcomeFilters) -> np.ndarray:
    """The episodes the filters keep (the clinic filter was applied when reading). NaN never passes a band."""
    e = packs.episodes
    keep = np.ones(packs.n, dtype=bool)
    if filters.therapist_id:
        code = (
            packs.therapists.index(filters.therapist_id) if filters.therapist_id in packs.therapists else -2
        )
        keep &= e["therapist"] == code
    if filters.start_from:
        keep &= e["start_day"] >= _day(filters.start_from)
    if filters.start_to:
        keep &= e["start_day"] <= _day(filters.start_to)
    if filters.severity:
        lo, hi = oq.SEVERITY_BANDS[filters.severity]
        base = e["pain_leg_baseline"]
        keep &= (base >= lo) & (base < hi)
    if filters.age_band:
        lo, hi = oq.AGE_BANDS[filters.age_band]
        keep &= (e["age"] >= lo) & (e["age"] < hi)
    if filters.sex:
        keep &= e["sex"] == oq.SEXES.index(filters.sex)
    return keep


class _Rows:
    """Columns at `rows` (all when None), each taken when first asked: only the fields a grouping sums are copied."""

    def __init__(self, columns: dict[str, np.ndarray], rows: np.ndarray | None) -> None:
        self.columns, self.rows = columns, rows
        self._taken: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._taken:
            col = self.columns[name]
            self._taken[name] = col if self.rows is None else col[self.rows]
        return self._taken[name]


def _group_sums(cols: _Rows, groups: np.ndarray, n: int, terms: list[oq.SumTerm]) -> dict[str, np.ndarray]:
    """`terms` per group (`groups`: each row's group number, `n` groups), with SQL's NULL rules: "count" counts
    non-null values, a "sum" of no values is NULL (NaN). Each column's null mask is computed once."""
    valid: dict[str, np.ndarray] = {}
    filled: dict[str, np.ndarray] = {}

    def column(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in valid:
            x = np.asarray(cols[name], dtype=float)
            valid[name] = ~np.isnan(x)
            filled[name] = np.where(valid[name], x, 0.0)
        return valid[name], filled[name]

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(groups, weights=weights, minlength=n).astype(float)

    out: dict[str, np.ndarray] = {}
    for label, op, names in terms:
        if op == "rows":
            out[label] = total(None)
            continue
        ok, x = column(names[0])
        if op == "count":
            out[label] = total(ok)
        elif op in ("sum", "sumsq"):
            out[label] = total(x * x if op == "sumsq" else x)
            out[label][total(ok) == 0] = np.nan
        elif op == "null":
            out[label] = total(~ok)
        elif op in ("null_given", "both"):
            ok2, _ = column(names[1])
            out[label] = total(ok & (~ok2 if op == "null_given" else ok2))
        else:
            raise ValueError(f"unknown aggregate {op!r}")
    return out


def _codes(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group numbers for rows keyed by several small integer keys: (first row of each group, each row's group),
    groups in key order. Dense keys (the usual case: months, bands, weeks) are numbered without sorting."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    composite = np.zeros(n, dtype=np.int64)
    size = 1
    for k in keys:
        k = k.astype(np.int64)
        lo = int(k.min())
        span = int(k.max()) - lo + 1
        composite = composite * span + (k - lo)
        size *= span
    if size > 4 * n + 4096:  # sparse: sort
        _uniq, first, groups = np.unique(composite, return_index=True, return_inverse=True)
        return first, groups.reshape(-1)
    first = np.full(size, n, dtype=np.int64)
    np.minimum.at(first, composite, np.arange(n, dtype=np.int64))
    present = np.flatnonzero(first < n)
    lookup = np.empty(size, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    return first[present], lookup[composite]


def _nullable(values: np.ndarray) -> np.ndarray:
    """A float key of whole numbers as dense non-negative integer codes, NULL (NaN) as 0."""
    missing = np.isnan(values)
    if missing.all():
        return np.zeros(len(values), dtype=np.int64)
    low = np.nanmin(values)
    return np.where(missing, 0, np.nan_to_num(values - low) + 1).astype(np.int64)


def _weekly_band(weekly: np.ndarray) -> np.ndarray:
    band = np.full(len(weekly), -1, dtype=np.int64)
    for i, (_name, lo, hi) in enumerate(oq.WEEKLY_DOSE_BANDS):
        band[(weekly >= lo) & (weekly < hi) & (band < 0)] = i
    return band


def packed_parts(packs: Packs, filters: oq.OutcomeFilters, max_points: int = 3000):
    """The rows the grouped SQL statement returns (part, k1, k2, k3, sums) and the scatter pairs, from the packs."""
    keep = filter_mask(packs, filters)
    e = _Rows(packs.episodes, None if keep.all() else np.flatnonzero(keep))
    terms, type_terms = oq.sum_terms(), oq.sum_terms(per_type=True)
    names = [t[0] for t in terms]
    frames = []

    # types x weekly-dose band x days to MCID, over the types each kept episode counts for in the setting
    setting = SETTING_CODES.index(filters.setting or SETTING_CODES[0])
    t = packs.types
    sel = np.flatnonzero((t["setting"] == setting) & keep[t["row"]])
    te = _Rows(packs.episodes, t["row"][sel])
    weeks = te["weeks_observed"]
    weekly = t["minutes"][sel] / np.where(weeks < 1.0, 1.0, weeks)
    band = _weekly_band(weekly)
    type_code = t["exercise_type"][sel]
    type_days = te["days_to_mcid"]
    first, groups = _codes(type_code, band + 1, _nullable(type_days))
    sums = _group_sums(te, groups, len(first), type_terms)
    frames.append(
        pd.DataFrame(
            {
                "part": "types",
                "k1": [packs.type_names[i] for i in type_code[first]],
                "k2": [oq.WEEKLY_DOSE_BANDS[b][0] if b >= 0 else None for b in band[first]],
                "k3": type_days[first],
                **{n: sums.get(n, np.full(len(first), np.nan)) for n in names},
            }
        )
    )

    # start month x adherence band x drop-out week
    first, groups = _codes(e["start_month"], e["adherence_band"], _nullable(e["dropout_week"]))
    sums = _group_sums(e, groups, len(first), terms)
    frames.append(
        pd.DataFrame(
            {
                "part": "cells",
                "k1": [str(m) for m in e["start_month"][first]],
                "k2": [BAND_NAMES[b] for b in e["adherence_band"][first]],
                "k3": e["dropout_week"][first],
                **sums,
            }
        )
    )

    # days to MCID, all kept episodes that reached it
    days = e["days_to_mcid"][~np.isnan(e["days_to_mcid"])]
    values, counts = np.unique(days, return_counts=True)
    frames.append(
        pd.DataFrame(
            {
                "part": "mcid",
                "k1": None,
                "k2": None,
                "k3": values,
                "episodes": counts.astype(float),
                **{n: np.nan for n in names if n != "episodes"},
            }
        )
    )
    parts = (
        pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    )
    if parts is None:
        parts = pd.DataFrame(columns=["part", "k1", "k2", "k3", *names])

    # the scatter: at most `max_points` complete pairs, in the SQL path's fixed pseudo-random order
    change = e[f"{oq.PRIMARY}_change"]
    ok = ~np.isnan(e["adherence"]) & ~np.isnan(change)
    ids = e["episode_id"][ok]
    order = np.lexsort((ids, ((ids % 100003) * 7919) % 100003))[:max_points]
    pairs = pd.DataFrame(
        {
            "episode_id": ids[order].astype(float),
            "adherence": e["adherence"][ok][order],
            "change": change[ok][order],
        }
    )
    return parts, pairs, names


def packed_aggregates(
    engine: Engine,
    scope: Scope,
    filters: oq.OutcomeFilters,
    rules: FlagRules,
    catalog: pd.DataFrame,
    max_points: int = 3000,
) -> oq.OutcomeAggregates | None:
    """`outcome_aggregates` from the packs, or None when they cannot answer (see the module docstring)."""
    packs = load_packs(engine, scope, filters, rules, catalog)
    if packs is None:
        return None
    parts, pairs, names = packed_parts(packs, filters, max_points)
    return oq._split_parts(parts, pairs, filters, names)


def aggregates(
    engine: Engine,
    scope: Scope,
    filters: oq.OutcomeFilters,
    rules: FlagRules,
    catalog: pd.DataFrame | None = None,
) -> oq.OutcomeAggregates:
    """The filter-change numbers: from the packs when they can answer, else from the grouped SQL."""
    catalog = oq.measure_thresholds(engine) if catalog is None else catalog
    packed = packed_aggregates(engine, scope, filters, rules, catalog)
    return packed if packed is not None else oq.outcome_aggregates(engine, scope, filters, rules, catalog)


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """Codes into `names` (-1: none) as a categorical with sorted categories, so grouping and sorting order the
    groups as the string columns of the SQL path do."""
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    rank = np.empty(len(names) + 1, dtype=np.int64)
    rank[order] = np.arange(len(names))
    rank[-1] = -1  # code -1 indexes the last slot
    return pd.Categorical.from_codes(rank[codes.astype(np.int64)], [names[i] for i in order])


#: Flags the row path returns as booleans, and 0/1 counts it returns as small integers (as `outcome_rows`).
_BOOL = ("completed", "dropped_out", "ftp_due", "failure_to_progress", *(f"{m}_ceiling" for m in oq.MEASURES))
_COUNT_SUFFIXES = ("_itt_n", "_itt_k", "_comp_n", "_comp_k", "_ceiling_n")


def packed_rows(
    packs: Packs, filters: oq.OutcomeFilters, names: list[str], columns: Sequence[str] | None
) -> oq.OutcomeView:
    """`outcome_rows` from the packs: the filtered episodes (by clinic, then episode; nothing downstream depends on
    the order) with the asked columns among `names`
    (the rule columns in `episode_sql`'s order) and weeks to MCID, and the types each counts for in the setting."""
    keep = filter_mask(packs, filters)
    idx = np.flatnonzero(keep)
    e = packs.episodes
    data: dict[str, np.ndarray] = {}
    for name in (n for n in names if columns is None or n in columns):
        # ids as categoricals over the codes the packs already hold: grouping 100k rows by a string column cost
        # ~0.2 s per comparison in hashing alone
        if name == "clinic_id":
            data[name] = _categorical(packs.clinic[idx], packs.clinics)
        elif name == "therapist_id":
            data[name] = _categorical(e["therapist"][idx], packs.therapists)
        elif name == "episode_id":
            data[name] = e[name][idx].astype(np.int64)
        elif name in _BOOL:
            data[name] = e[name][idx].astype(bool)
        elif name.endswith(_COUNT_SUFFIXES):
            data[name] = e[name][idx].astype(np.int8)
        elif name in e:
            data[name] = e[name][idx].astype(float)
        else:
            raise KeyError(f"the outcome packs do not hold {name!r}")
    data["weeks_to_mcid"] = e["days_to_mcid"][idx] / 7.0
    episodes = pd.DataFrame(data)

    t = packs.types
    setting = SETTING_CODES.index(filters.setting or SETTING_CODES[0])
    sel = np.flatnonzero((t["setting"] == setting) & keep[t["row"]])
    type_names = _categorical(t["exercise_type"][sel], packs.type_names)
    types = pd.DataFrame(
        {
            "episode_id": e["episode_id"][t["row"][sel]].astype(np.int64),
            "exercise_type": type_names,
            "share": t["share"][sel].astype(float),
            "minutes": t["minutes"][sel].astype(float),
        }
    )
    return oq.OutcomeView(episodes, types, pd.DataFrame(), filters)


def rows(
    engine: Engine,
    scope: Scope,
    filters: oq.OutcomeFilters,
    rules: FlagRules,
    catalog: pd.DataFrame | None = None,
    columns: Sequence[str] | None = oq.MODEL_COLUMNS,
) -> oq.OutcomeView:
    """The comparison callback's rows: from the packs when they can answer, else `outcome_rows` (SQL)."""
    catalog = oq.measure_thresholds(engine) if catalog is None else catalog
    held = {"clinic_id", "therapist_id", *EPISODE_DTYPE.names}
    packs = None
    if columns is not None and set(columns) <= held:
        packs = load_packs(engine, scope, filters, rules, catalog)
    if packs is None:
        return oq.outcome_rows(engine, scope, filters, rules, catalog, columns=columns)
    names = list(oq._episode_rules(filters, catalog, rules, with_patient=True).cols)
    view = packed_rows(packs, filters, names, columns)
    view.catalog = catalog
    return view


def packed_quality(packs: Packs, filters: oq.OutcomeFilters) -> pd.DataFrame:
    """`quality_counts` from the packs: episodes, and distinct patients missing a baseline or a follow-up."""
    keep = filter_mask(packs, filters)
    e = packs.episodes
    patient = e["patient"]
    rows = []
    for m in ("pain_leg", "odi"):
        base, change = e[f"{m}_baseline"], e[f"{m}_change"]
        no_base = keep & np.isnan(base)
        no_fu = keep & ~np.isnan(base) & np.isnan(change)
        rows.append(
            {
                "measure": oq.MEASURES[m],
                "episodes": int(keep.sum()),
                "patients_missing_baseline": len(np.unique(patient[no_base])),
                "patients_missing_followup": len(np.unique(patient[no_fu])),
            }
        )
    return pd.DataFrame(rows)


def quality(
    engine: Engine,
    scope: Scope,
    filters: oq.OutcomeFilters,
    rules: FlagRules,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Patients missing a baseline or a follow-up under the filters: from the packs, else counted in SQL."""
    catalog = oq.measure_thresholds(engine) if catalog is None else catalog
    packs = load_packs(engine, scope, filters, rules, catalog)
    if packs is None:
        return oq.quality_counts(engine, scope, filters, catalog)
    return packed_quality(packs, filters)
