"""Outcome packs: the outcomes page's per-episode rules, evaluated once by the ETL, stored per clinic as packed
records, summed by the dashboard with numpy.

Why: the page's filter change needs ~65 counts, sums and sums of squares over every filtered episode. In SQL that
is 0.5-1.3 s clinic-wide at 100k patients on SQLite (each aggregate ~6-25 ms per 100k rows in its VM); the same sums
over packed columns take a few milliseconds each with numpy. The rules themselves stay SQL
(`warehouse.outcome_rules.episode_sql`): the pack stores their results, it does not re-implement them.

- One row of `outcome_pack` per clinic: every episode of the clinic with the fields of `EPISODE_DTYPE`, and every
  (episode, setting, exercise type) whose share of the setting's dose reaches `TYPE_SHARE` with those of
  `TYPE_DTYPE`. Stored column after column (each field's values contiguous, in the dtype's field order), not record
  after record: the reader sums one field at a time, and strided reads through 200-byte records cost more than
  the sums; fields of one dtype form one (fields x rows) block, so joining 300 clinics' packs is one concatenation
  per dtype. Therapists and exercise types are small integer codes into the row's `names` (JSON).
- `layout` names the record layout, the type-share threshold, the flag rules and the catalog thresholds the pack was
  built with; a reader uses a pack only when it equals `pack_layout(...)` for its own rules, else it falls back to SQL.
- The summary refresh rebuilds the packs of every clinic whose episodes it touched, in the load's transaction
  (`etl.summary.refresh_summaries`), so a pack is never older than the marts it was computed from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.sql.expression import ColumnElement

from warehouse.db import iter_rows
from warehouse.flag_rules import FlagRules
from warehouse.outcome_rules import (
    ADHERENCE_BANDS,
    EPS,
    MEASURES,
    NO_HOME,
    RESPONDER_MEASURES,
    SEXES,
    TYPE_SHARE,
    WIDE,
    OutcomeFilters,
    episode_sql,
)
from warehouse.schema import (
    DOSE_ALL_SETTINGS,
    episode_exercise_dose,
    episode_first_mcid,
    episode_summary,
    measures,
    outcome_pack,
    patients,
)

PACK_VERSION = 3  # 3: one (fields x rows) block per dtype
#: Adherence bands by code (the last is "none scheduled").
BAND_NAMES: tuple[str, ...] = (*(b[0] for b in ADHERENCE_BANDS), NO_HOME)
#: Settings by code: the dose mart's 'all' (both together), then home, clinic.
SETTING_CODES: tuple[str, ...] = (DOSE_ALL_SETTINGS, "home", "clinic")
_RESPONDER_FIELDS = ("itt_k", "itt_n", "comp_k", "comp_n", "ceiling_n", "no_followup")

#: The per-episode columns of `episode_sql` the pack keeps (numbers; NaN for SQL NULL), plus keys and filters.
EPISODE_DTYPE = np.dtype(
    [
        ("episode_id", "<i8"),
        ("patient", "<i4"),  # distinct per patient within the pack (distinct-patient counts)
        ("therapist", "<i2"),  # index into names["therapists"], -1 without one
        ("start_day", "<i4"),  # days since 1970-01-01 (the start-date filter)
        ("start_month", "<i4"),  # YYYYMM
        ("age", "<f8"),
        ("sex", "<i1"),  # index into SEXES, -1 otherwise
        ("adherence_band", "<i1"),  # index into BAND_NAMES
        ("dropout_week", "<f8"),
        ("days_to_mcid", "<f8"),  # leg pain (episode_first_mcid)
        ("completed", "<i1"),
        ("dropped_out", "<i1"),
        ("ftp_due", "<i1"),
        ("failure_to_progress", "<i1"),
        ("adherence", "<f8"),
        ("home_scheduled", "<f8"),
        ("visits", "<f8"),
        ("weeks_observed", "<f8"),
        ("symptom_weeks", "<f8"),
        *((f"{m}_{x}", "<f8") for m in MEASURES for x in ("baseline", "change", "mcid")),
        *((f"{m}_ceiling", "<i1") for m in MEASURES),
        *((f"{m}_{x}", "<i1") for m in RESPONDER_MEASURES for x in _RESPONDER_FIELDS),
    ]
)
TYPE_DTYPE = np.dtype(
    [
        ("row", "<i4"),  # index of the episode's record in the same pack
        ("setting", "<i1"),  # index into SETTING_CODES
        ("exercise_type", "<i2"),  # index into names["types"]
        ("share", "<f8"),
        ("minutes", "<f8"),
    ]
)
#: `episode_sql` columns copied as they are (the rest are derived above: codes, days).
_COPIED = tuple(
    n
    for n in EPISODE_DTYPE.names
    if n not in ("episode_id", "patient", "therapist", "start_day", "sex", "adherence_band", "days_to_mcid")
)


def pack_layout(catalog: pd.DataFrame, rules: FlagRules) -> str:
    """What a pack's numbers depend on besides the marts, as a short digest: the record layouts, `TYPE_SHARE`, the
    rules of drop-out and failure to progress, and the catalog thresholds of the page's measures (ceiling)."""
    thresholds = sorted(
        (str(r.code), str(r.better), _num(r.mcid_abs), _num(r.max_value))
        for r in catalog.itertuples()
        if r.code in WIDE
    )
    key = json.dumps(
        [
            PACK_VERSION,
            EPISODE_DTYPE.descr,
            TYPE_DTYPE.descr,
            TYPE_SHARE,
            rules.no_data_days,
            rules.not_responding_weeks,
            rules.not_responding_visits,
            list(rules.response_measures),
            thresholds,
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def pack_catalog(conn: Connection) -> pd.DataFrame:
    """The catalog columns the rules read (code, better, mcid_abs, max_value), straight from `measures`."""
    rows = conn.execute(
        select(measures.c.code, measures.c.better, measures.c.mcid_abs, measures.c.max_value).where(
            measures.c.code.in_(WIDE)
        )
    ).all()
    return pd.DataFrame(rows, columns=["code", "better", "mcid_abs", "max_value"])


# --- writing (ETL) -------------------------------------------------------------------------------------------------
#: Episodes read and converted per group of clinics when building packs: bounds the ETL's memory (a 10M-score
#: load rebuilt 100k episodes' packs in one read and peaked at 450 MB; each episode is ~50 values while read).
BUILD_EPISODES = 20_000
#: Rows converted to Python objects at a time while building (psycopg's default cursor still receives a group's
#: whole result at once, in libpq's memory; `BUILD_EPISODES` bounds that).
FETCH_ROWS = 5_000


def rebuild_packs(conn: Connection, clinic_ids: Iterable[str], rules: FlagRules) -> int:
    """Recompute the packs of these clinics from the marts (the rows of clinics without episodes are removed).
    Returns the number of episodes packed. Clinics are built in groups of about `BUILD_EPISODES` episodes."""
    ids = sorted(set(clinic_ids))
    if not ids:
        return 0
    catalog = pack_catalog(conn)
    layout = pack_layout(catalog, rules)
    now = datetime.now().replace(microsecond=0)
    conn.execute(outcome_pack.delete().where(outcome_pack.c.clinic_id.in_(ids)))
    n = 0
    for group in _groups_of_clinics(conn, ids):
        episodes, types = _read_marts(conn, group, catalog, rules)
        rows = _pack_rows(episodes, types, layout, now)
        if rows:
            conn.execute(outcome_pack.insert(), rows)
        n += len(episodes.rec)
    return n


def rebuild_all_packs(conn: Connection, rules: FlagRules) -> int:
    """Every clinic's pack again (after summaries were written by other means than the refresh: a hand repair)."""
    conn.execute(outcome_pack.delete())
    clinics = conn.execute(select(episode_summary.c.clinic_id).distinct()).scalars().all()
    return rebuild_packs(conn, [c for c in clinics if c is not None], rules)


def _groups_of_clinics(conn: Connection, ids: list[str], chunk: int = 5000) -> list[list[str]]:
    """The clinics with episodes, in groups of at most `BUILD_EPISODES` episodes (a larger clinic alone)."""
    counts: dict[str, int] = {}
    es = episode_summary
    for i in range(0, len(ids), chunk):
        stmt = (
            select(es.c.clinic_id, func.count())
            .where(es.c.clinic_id.in_(ids[i : i + chunk]))
            .group_by(es.c.clinic_id)
        )
        counts.update({c: int(k) for c, k in conn.execute(stmt)})
    groups: list[list[str]] = []
    size = BUILD_EPISODES
    for clinic in sorted(counts):
        if size + counts[clinic] > BUILD_EPISODES:
            groups.append([])
            size = 0
        groups[-1].append(clinic)
        size += counts[clinic]
    return groups


@dataclass
class _Episodes:
    """A group of clinics' episodes as read for packing (sorted by clinic, episode): the records, and per record
    its clinic, therapist and patient ids."""

    rec: np.ndarray
    clinic: np.ndarray
    therapist: np.ndarray
    patient_id: np.ndarray


@dataclass
class _Types:
    episode_id: np.ndarray
    setting: np.ndarray
    exercise_type: np.ndarray
    share: np.ndarray
    minutes: np.ndarray


def _read_marts(conn: Connection, clinic_ids: list[str], catalog: pd.DataFrame, rules: FlagRules):
    """The rules' results and type rows of these clinics' episodes, converted batch by batch to compact arrays."""
    q = episode_sql(OutcomeFilters(), catalog, rules, with_patient=True)
    es, fm, d = episode_summary, episode_first_mcid, episode_exercise_dose
    on = and_(fm.c.episode_id == es.c.episode_id, fm.c.measure == "pain_leg")
    cols: list[ColumnElement] = [
        es.c.clinic_id,
        es.c.episode_id,
        es.c.patient_id,
        es.c.therapist_id,
        es.c.start_date,
        patients.c.sex,
        fm.c.days_to_mcid,
        q.cols["adherence_band"].label("adherence_band"),
        *(q.cols[name].label(name) for name in _COPIED),
    ]
    stmt = (
        select(*cols)
        .select_from(q.from_.outerjoin(fm, on))
        .where(q.where, es.c.clinic_id.in_(clinic_ids))
        .order_by(es.c.clinic_id, es.c.episode_id)
    )
    parts = [
        _episode_batch(dict(zip(names, zip(*rows, strict=True), strict=True)))
        for names, rows in iter_rows(conn, stmt, FETCH_ROWS)
    ]
    episodes = _Episodes(*(np.concatenate(x) for x in zip(*parts, strict=True))) if parts else None
    types_stmt = (
        select(d.c.episode_id, d.c.setting, d.c.exercise_type, d.c.share, d.c.minutes)
        .select_from(d.join(es, es.c.episode_id == d.c.episode_id))
        .where(es.c.clinic_id.in_(clinic_ids), d.c.share >= TYPE_SHARE - EPS)
        .order_by(d.c.episode_id, d.c.setting, d.c.exercise_type)
    )
    tparts = [
        (
            np.asarray(episode_id, dtype=np.int64),
            _codes(setting, SETTING_CODES),
            np.asarray(exercise_type, dtype=object),
            _floats(share),
            _floats(minutes),
        )
        for _names, rows in iter_rows(conn, types_stmt, FETCH_ROWS)
        for episode_id, setting, exercise_type, share, minutes in [zip(*rows, strict=True)]
    ]
    types = (
        _Types(*(np.concatenate(x) for x in zip(*tparts, strict=True)))
        if tparts
        else _Types(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0), np.zeros(0)
        )
    )
    if episodes is None:
        episodes = _Episodes(
            np.zeros(0, EPISODE_DTYPE), np.zeros(0, object), np.zeros(0, object), np.zeros(0, object)
        )
    return episodes, types


def _codes(values: pd.Series | np.ndarray | list, names: Sequence[str]) -> np.ndarray:
    """Index of each value in `names`, -1 for values not there (and for None)."""
    return pd.Index(list(names), dtype=object).get_indexer(pd.Index(values, dtype=object))


def _floats(values: Sequence) -> np.ndarray:
    """Driver numbers (int, float, Decimal on PostgreSQL; None for NULL) as float64, NaN for None."""
    return np.asarray(values, dtype=float)


def _episode_batch(cols: dict[str, tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One batch of rows, column by column, as records (`patient` set later, per clinic) and their clinic, therapist,
    patient ids. numpy converts each column in one call (a DataFrame of the rows cost more than the query)."""
    rec = np.zeros(len(cols["episode_id"]), dtype=EPISODE_DTYPE)
    rec["episode_id"] = np.asarray(cols["episode_id"], dtype=np.int64)
    start = pd.to_datetime(pd.Index([str(d) for d in cols["start_date"]]), format="ISO8601")
    rec["start_day"] = start.to_numpy().astype("datetime64[D]").astype(np.int64)
    rec["sex"] = _codes(cols["sex"], SEXES)
    rec["adherence_band"] = _codes(cols["adherence_band"], BAND_NAMES)
    rec["days_to_mcid"] = _floats(cols["days_to_mcid"])
    for name in _COPIED:
        values = _floats(cols[name])
        rec[name] = np.where(np.isnan(values), 0.0, values) if EPISODE_DTYPE[name].kind == "i" else values
    return (
        rec,
        np.asarray(cols["clinic_id"], dtype=object),
        np.asarray(cols["therapist_id"], dtype=object),
        np.asarray(cols["patient_id"], dtype=object),
    )


def _pack_rows(episodes: _Episodes, types: _Types, layout: str, now: datetime) -> list[dict]:
    """One `outcome_pack` row per clinic of `episodes` (sorted by clinic, episode). Columns were converted once for
    all clinics of the group; here they are cut per clinic."""
    rec, clinic, therapist = episodes.rec, episodes.clinic, episodes.therapist
    if not len(rec):
        return []
    bounds = np.flatnonzero(np.r_[True, clinic[1:] != clinic[:-1], True])

    # each type record's episode row, then the type records grouped by clinic in episode order
    order = np.argsort(rec["episode_id"], kind="stable")
    t_pos = order[np.searchsorted(rec["episode_id"], types.episode_id, sorter=order)]
    t_order = np.argsort(t_pos, kind="stable")
    t_pos = t_pos[t_order]
    t_setting, t_type = types.setting[t_order], types.exercise_type[t_order]
    t_share, t_minutes = types.share[t_order], types.minutes[t_order]
    t_bounds = np.searchsorted(t_pos, bounds)

    rows = []
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        r = rec[lo:hi].copy()
        r["patient"] = pd.factorize(episodes.patient_id[lo:hi])[0]
        therapists = sorted({t for t in therapist[lo:hi] if t is not None})
        r["therapist"] = _codes(therapist[lo:hi], therapists)
        tlo, thi = t_bounds[k], t_bounds[k + 1]
        type_names = sorted(set(t_type[tlo:thi]))
        tr = np.zeros(thi - tlo, dtype=TYPE_DTYPE)
        tr["row"] = t_pos[tlo:thi] - lo
        tr["setting"] = t_setting[tlo:thi]
        tr["exercise_type"] = _codes(t_type[tlo:thi], type_names)
        tr["share"] = t_share[tlo:thi]
        tr["minutes"] = t_minutes[tlo:thi]
        rows.append(
            {
                "clinic_id": str(clinic[lo]),
                "layout": layout,
                "n_episodes": len(r),
                "n_type_rows": len(tr),
                "names": json.dumps(
                    {"therapists": therapists, "types": type_names, "patients": int(r["patient"].max()) + 1}
                ),
                "episodes": _columns_bytes(r),
                "types": _columns_bytes(tr),
                "built_at": now,
            }
        )
    return rows


def _dtype_groups(dtype: np.dtype) -> list[tuple[np.dtype, list[str]]]:
    """The fields of `dtype` grouped by their type, in order of first appearance: a pack stores each group as one
    (fields x rows) block, so a reader joins all clinics' packs with one concatenation per group."""
    groups: dict[np.dtype, list[str]] = {}
    for name in dtype.names:
        groups.setdefault(dtype[name], []).append(name)
    return list(groups.items())


EPISODE_GROUPS = _dtype_groups(EPISODE_DTYPE)
TYPE_GROUPS = _dtype_groups(TYPE_DTYPE)


def _columns_bytes(records: np.ndarray) -> bytes:
    groups = EPISODE_GROUPS if records.dtype == EPISODE_DTYPE else TYPE_GROUPS
    return b"".join(
        np.stack([records[n] for n in names]).astype(dtype, copy=False).tobytes() if len(records) else b""
        for dtype, names in groups
    )


# --- reading (dashboard) -------------------------------------------------------------------------------------------
@dataclass
class Packs:
    """The packs of some clinics, concatenated: episode columns (the fields of `EPISODE_DTYPE`; `patient` numbered
    across packs), type columns (`TYPE_DTYPE`; `row` indexes the episode columns), and the names the codes stand
    for (`therapist` -> `therapists`, -1 without one; `exercise_type` -> `type_names`; `clinic` -> `clinics`)."""

    episodes: dict[str, np.ndarray]
    types: dict[str, np.ndarray]
    clinic: np.ndarray
    clinics: list[str]
    therapists: list[str]
    type_names: list[str]

    @property
    def n(self) -> int:
        return len(self.clinic)


def _join_columns(
    blobs: list[bytes], counts: list[int], groups: list[tuple[np.dtype, list[str]]]
) -> dict[str, np.ndarray]:
    """The columns of several packs' blobs, one after the other (one concatenation per dtype group)."""
    position = [0] * len(blobs)
    out: dict[str, np.ndarray] = {}
    for dtype, names in groups:
        k = len(names)
        blocks = []
        for i, (blob, n) in enumerate(zip(blobs, counts, strict=True)):
            if n:
                blocks.append(np.frombuffer(blob, dtype=dtype, count=k * n, offset=position[i]).reshape(k, n))
                position[i] += k * n * dtype.itemsize
        matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((k, 0), dtype=dtype)
        out |= {name: matrix[j] for j, name in enumerate(names)}
    return out


def _global_codes(local: np.ndarray, per_pack: list[list[str]], counts: list[int], index: dict[str, int]):
    """Per-pack codes (-1: none) as codes into one list of names (`index`, filled here)."""
    maps = [
        np.array([index.setdefault(x, len(index)) for x in names] + [-1], dtype=np.int64)
        for names in per_pack
    ]
    if not maps:
        return np.zeros(0, dtype=np.int64)
    base = np.cumsum([0] + [len(m) for m in maps])[:-1]
    none = np.repeat(np.array([len(m) - 1 for m in maps], dtype=np.int64), counts)
    local = local.astype(np.int64)
    return np.concatenate(maps)[np.repeat(base, counts) + np.where(local < 0, none, local)]


def read_packs(conn: Connection, where: ColumnElement[bool], layout: str) -> Packs | None:
    """The packs matching `where` (the viewer's scope and the clinic filter, on `outcome_pack`), or None when one
    of them was built with another layout (the caller falls back to SQL)."""
    p = outcome_pack.c
    rows = conn.execute(
        select(p.clinic_id, p.layout, p.n_episodes, p.n_type_rows, p.names, p.episodes, p.types)
        .where(where)
        .order_by(p.clinic_id)
    ).all()
    if any(r.layout != layout for r in rows):
        return None
    names = [json.loads(r.names) for r in rows]
    counts = [r.n_episodes for r in rows]
    type_counts = [r.n_type_rows for r in rows]
    eps = _join_columns([r.episodes for r in rows], counts, EPISODE_GROUPS)
    types = _join_columns([r.types for r in rows], type_counts, TYPE_GROUPS)
    patients = np.cumsum([0] + [x["patients"] for x in names])[:-1]
    eps["patient"] = eps["patient"] + np.repeat(patients, counts)
    therapists: dict[str, int] = {}
    eps["therapist"] = _global_codes(eps["therapist"], [x["therapists"] for x in names], counts, therapists)
    starts = np.cumsum([0] + counts)[:-1]
    types["row"] = types["row"] + np.repeat(starts, type_counts)
    type_names: dict[str, int] = {}
    types["exercise_type"] = _global_codes(
        types["exercise_type"], [x["types"] for x in names], type_counts, type_names
    )
    return Packs(
        eps,
        types,
        np.repeat(np.arange(len(rows), dtype=np.int32), counts),
        [r.clinic_id for r in rows],
        list(therapists),
        list(type_names),
    )
