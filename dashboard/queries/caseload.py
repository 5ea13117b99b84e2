"""The caseload: one row per active episode in scope, with the flags the ETL stored on the summary mart.

Paging, sorting, filtering and flag counting all happen in the database (`LIMIT/OFFSET`, `ORDER BY`, `WHERE`,
`SUM`), so the page stays fast with 100,000 patients: it never reads the fact tables. The flags are columns of
`episode_summary` (`flag_<name>`, `n_flags`, written by the summary refresh with the catalog's thresholds), so the
default sort (most flags first, then oldest activity) walks `ix_episode_summary_active_flags` instead of evaluating
five rules on ~44,000 rows per page. Given other thresholds than the ones stored, the same rules are evaluated in SQL
(`warehouse.flag_rules`), the slower path the page took before.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd
from sqlalchemy import ColumnElement, Engine, and_, case, func, or_, select
from sqlalchemy.sql import Select

from dashboard import flags as fl
from dashboard.queries import read_frame
from dashboard.queries.catalog import measures_catalog
from dashboard.scope import Scope, scope_clause
from warehouse.schema import (
    WIDE_FIELDS,
    WIDE_MEASURES,
    clinics,
    episode_measure_summary,
    episode_summary,
    patients,
    therapists,
)
from warehouse.sqlfuncs import days_between

#: Measures whose summary the caseload shows (besides those the flag rules need).
SHOWN_MEASURES: tuple[str, ...] = ("pain_leg", "odi", "numbness", "slr_left", "slr_right")
#: The order MCID-reached chips appear in.
MCID_MEASURES: tuple[str, ...] = ("pain_leg", "odi", "numbness", "slr_left", "slr_right")
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class CaseloadFilters:
    flag: str | None = None
    therapist_id: str | None = None
    clinic_id: str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in fl.FLAGS:
            raise ValueError(f"unknown flag {self.flag!r}")


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool = False


DEFAULT_SORT: tuple[SortKey, ...] = (SortKey("n_flags", True), SortKey("last_activity", False))

_stored_rules_cache: weakref.WeakKeyDictionary[Engine, fl.FlagRules] = weakref.WeakKeyDictionary()


def stored_rules(engine: Engine) -> fl.FlagRules:
    """The thresholds the stored flag columns were computed with: the measures catalog's, as in the ETL.

    Read once per engine (the catalog changes with `etl init`, after which the marts are refreshed anyway and the
    dashboard restarted, like `create_app`'s own `FlagRules.from_catalog`).
    """
    rules = _stored_rules_cache.get(engine)
    if rules is None:
        rules = fl.FlagRules.from_catalog(measures_catalog(engine).to_dict("records"))
        _stored_rules_cache[engine] = rules
    return rules


def _computed(engine: Engine, rules: fl.FlagRules | None) -> fl.FlagRules | None:
    """None when the stored columns answer for `rules` (the fast path), else the rules to evaluate in SQL."""
    if rules is None or rules == stored_rules(engine):
        return None
    return rules


def _measures(rules: fl.FlagRules) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*SHOWN_MEASURES, *MCID_MEASURES, *rules.measures)))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class _WideMeasure:
    """Looks like an `episode_measure_summary` alias (`.c.change`, ...) but reads the episode row's columns."""

    def __init__(self, table, code: str) -> None:
        self.c = SimpleNamespace(
            **{source: table.c[f"{code}_{suffix}"] for suffix, source in WIDE_FIELDS.items()}
        )


def _sum(terms: Sequence[ColumnElement[int]]) -> ColumnElement[int]:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _rows(
    scope: Scope, filters: CaseloadFilters, rules: fl.FlagRules | None, *, columns: bool = True
) -> Select:
    """Active episodes in scope with one 0/1 column per flag and `n_flags` (and, with `columns`, what the grid
    shows).

    `rules` None reads the stored flags; a FlagRules evaluates them in SQL. Counting needs no patient names, so
    without `columns` the patients join is left out when neither the scope nor a search needs it (clinic-wide:
    the count is then an index scan of `episode_summary`).
    """
    es = episode_summary
    need_patients = columns or scope.kind != "clinic_wide" or bool(filters.search and filters.search.strip())
    joined = es.join(patients, patients.c.patient_id == es.c.patient_id) if need_patients else es
    if columns:
        joined = joined.outerjoin(therapists, therapists.c.therapist_id == es.c.therapist_id)
    m = {}
    for code in _measures(rules or fl.FlagRules()):
        if code in WIDE_MEASURES:  # copied onto the episode row by the ETL: no join
            m[code] = _WideMeasure(es, code)
            continue
        if rules is None:
            continue  # only a non-default rule set needs a measure beyond the wide ones
        alias = episode_measure_summary.alias(f"m_{code}")
        joined = joined.outerjoin(alias, and_(alias.c.episode_id == es.c.episode_id, alias.c.measure == code))
        m[code] = alias
    if rules is None:
        flag_cols = [es.c[f"flag_{name}"] for name in fl.FLAGS]
        n_flags: ColumnElement[int] = es.c.n_flags
    else:
        conditions = fl.flags_sql(
            {c: a.c.change for c, a in m.items()},
            {c: a.c.mcid_reached for c, a in m.items()},
            {c: a.c.baseline_value for c, a in m.items()},
            start_date=es.c.start_date,
            as_of=es.c.as_of,
            visits=es.c.visits,
            adherence_14d=es.c.adherence_14d,
            last_activity=es.c.last_activity,
            rules=rules,
        )
        flag_cols = [case((conditions[name], 1), else_=0) for name in fl.FLAGS]
        n_flags = _sum(flag_cols)
    selected = [
        es.c.episode_id,
        *(col.label(f"flag_{name}") for name, col in zip(fl.FLAGS, flag_cols, strict=True)),
    ]
    selected.append(n_flags.label("n_flags"))
    if columns:
        selected += [
            es.c.patient_id,
            patients.c.first_name,
            patients.c.last_name,
            es.c.clinic_id,
            es.c.therapist_id,
            therapists.c.name.label("therapist_name"),
            es.c.start_date,
            es.c.as_of,
            days_between(es.c.start_date, es.c.as_of).label("days_in_episode"),
            es.c.visits,
            es.c.adherence,
            es.c.adherence_14d,
            es.c.home_scheduled_14d,
            es.c.last_activity,
            m["pain_leg"].c.baseline_value.label("pain_leg_baseline"),
            m["pain_leg"].c.latest_value.label("pain_leg_latest"),
            m["pain_leg"].c.change.label("pain_leg_change"),
            m["odi"].c.baseline_value.label("odi_baseline"),
            m["odi"].c.latest_value.label("odi_latest"),
            m["odi"].c.change.label("odi_change"),
            *(m[c].c.mcid_reached.label(f"mcid_{c}") for c in MCID_MEASURES),
        ]
    where = [es.c.is_active.is_(True), scope_clause(scope, es)]
    if need_patients:
        where.append(scope_clause(scope, patients))
    if filters.therapist_id:
        where.append(es.c.therapist_id == filters.therapist_id)
    if filters.clinic_id:
        where.append(es.c.clinic_id == filters.clinic_id)
    if filters.search and filters.search.strip():
        pattern = _like_prefix(filters.search.strip())
        where.append(
            or_(
                es.c.patient_id.ilike(pattern, escape="\\"),
                patients.c.last_name.ilike(pattern, escape="\\"),
                patients.c.first_name.ilike(pattern, escape="\\"),
            )
        )
    return select(*selected).select_from(joined).where(*where)


def sortable_columns() -> tuple[str, ...]:
    return (
        "patient",
        "patient_id",
        "days_in_episode",
        "visits",
        "pain_leg_change",
        "pain_leg_latest",
        "odi_change",
        "adherence",
        "adherence_14d",
        "last_activity",
        "n_flags",
        "therapist_id",
        "clinic_id",
    )


def _narrow(scope: Scope, filters: CaseloadFilters) -> bool:
    """Does the scope or a filter pick a few clinics or therapists (an index on them finds the rows)?"""
    return scope.kind != "clinic_wide" or bool(filters.therapist_id or filters.clinic_id)


def _order_by(sub, sort: Sequence[SortKey], *, narrow: bool = False) -> list[ColumnElement]:
    """ORDER BY terms for the sort keys, ending with the episode id (stable paging).

    narrow: sort `n_flags + 0` instead of the column. For a therapist's or a clinic's few hundred rows SQLite
    otherwise walks `ix_episode_summary_active_flags` in order, filtering all ~44,000 active rows (100+ ms)
    instead of finding its rows through the therapist/clinic index and sorting them (a few ms); the expression is
    the same value, so the order is unchanged on both databases.
    """
    cols = {name: sub.c[name] for name in sortable_columns() if name in sub.c}
    if narrow:
        cols["n_flags"] = sub.c.n_flags + 0
    cols["patient"] = func.coalesce(sub.c.last_name, sub.c.patient_id)
    order = []
    for key in sort or DEFAULT_SORT:
        col = cols.get(key.column)
        if col is None:  # unknown sort keys from the browser are ignored, never interpolated
            continue
        order.append((col.desc() if key.descending else col.asc()).nulls_last())
    order.append(sub.c.episode_id.asc())  # stable paging
    return order


def caseload_page(
    engine: Engine,
    scope: Scope,
    filters: CaseloadFilters = CaseloadFilters(),
    rules: fl.FlagRules | None = None,
    *,
    sort: Sequence[SortKey] = (),
    offset: int = 0,
    limit: int = 50,
) -> pd.DataFrame:
    """One page of the caseload, sorted and filtered in SQL. `total_rows` on every row counts all matches.

    `rules` None (or the catalog's thresholds) reads the stored flags. The total is no window function (that
    stopped SQLite from flattening the query, so every row was computed before the sort): a short last page gives
    it for free, otherwise one COUNT over the index.
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    offset = max(0, int(offset))
    computed = _computed(engine, rules)
    sub = _rows(scope, filters, computed).subquery("caseload")
    stmt = select(*sub.c)
    if filters.flag:
        stmt = stmt.where(sub.c[f"flag_{filters.flag}"] == 1)
    stmt = stmt.order_by(*_order_by(sub, sort, narrow=_narrow(scope, filters))).limit(limit).offset(offset)
    df = read_frame(engine, stmt)
    if len(df) < limit and (len(df) or not offset):
        total = offset + len(df)
    else:
        total = caseload_total(engine, scope, filters, computed)
    df["total_rows"] = total
    return df


def caseload_total(
    engine: Engine, scope: Scope, filters: CaseloadFilters, rules: fl.FlagRules | None = None
) -> int:
    """How many rows the caseload has with these filters (the grid's row count)."""
    sub = _rows(scope, filters, _computed(engine, rules), columns=False).subquery("caseload")
    stmt = select(func.count()).select_from(sub)
    if filters.flag:
        stmt = stmt.where(sub.c[f"flag_{filters.flag}"] == 1)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def flag_counts(
    engine: Engine, scope: Scope, filters: CaseloadFilters, rules: fl.FlagRules | None = None
) -> dict[str, int]:
    """Active episodes per flag (and `all`), under every filter except the flag filter itself."""
    base = CaseloadFilters(
        therapist_id=filters.therapist_id, clinic_id=filters.clinic_id, search=filters.search
    )
    sub = _rows(scope, base, _computed(engine, rules), columns=False).subquery("caseload")
    stmt = select(
        func.count().label("all"),
        *(func.coalesce(func.sum(sub.c[f"flag_{name}"]), 0).label(name) for name in fl.FLAGS),
    )
    stmt = stmt.select_from(sub)
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().one()
    return {key: int(row[key]) for key in ("all", *fl.FLAGS)}


def summary_as_of(engine: Engine, scope: Scope) -> dt.date | None:
    """The date the viewer's summary rows were computed for (the newest, if refreshes differ)."""
    stmt = select(func.max(episode_summary.c.as_of)).where(scope_clause(scope, episode_summary))
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one_or_none()


def therapist_options(engine: Engine, scope: Scope, clinic_id: str | None = None) -> pd.DataFrame:
    """Therapists the viewer may filter by (only those in scope)."""
    stmt = select(therapists.c.therapist_id, therapists.c.name, therapists.c.clinic_id).where(
        scope_clause(scope, therapists)
    )
    if clinic_id:
        stmt = stmt.where(therapists.c.clinic_id == clinic_id)
    return read_frame(engine, stmt.order_by(therapists.c.name, therapists.c.therapist_id))


def clinic_options(engine: Engine, scope: Scope) -> pd.DataFrame:
    """Clinics the viewer may filter by: those with a therapist in scope."""
    in_scope = select(therapists.c.clinic_id).where(scope_clause(scope, therapists))
    stmt = select(clinics.c.clinic_id, clinics.c.name).where(clinics.c.clinic_id.in_(in_scope))
    return read_frame(engine, stmt.order_by(clinics.c.name, clinics.c.clinic_id))


__all__ = [
    "CaseloadFilters",
    "SortKey",
    "caseload_page",
    "caseload_total",
    "flag_counts",
    "summary_as_of",
    "therapist_options",
    "clinic_options",
]
