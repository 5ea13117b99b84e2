"""Synthetic clinic exports for demos, tests and load benchmarks: only invented people, nothing real.

`generate(out_dir, n_patients, seed, as_of)` writes the four canonical files (patients, visits, sessions, scores).
The output is a pure function of (n_patients, seed, as_of, dirty): same arguments, same bytes.

The simulation, in short. Each patient has one episode that starts in the ~9 months before `as_of` (about a third in
the last 8 weeks), a planned length of 4-12 weeks, a clinic evaluation (baseline) on the start day and weekly-ish
visits, a home programme of 2-4 exercises on 3-6 fixed weekdays, and a home app where leg pain and numbness are
self-reported. Adherence propensity varies by patient (high / medium / low) and fades over the episode; about 15 %
drop out silently (logs stop; remaining scheduled home sessions are written as `missed`, intention-to-treat).
Outcomes improve towards a floor with a per-patient time constant; how far depends on realised adherence and on the
exercise-type mix (nerve mobilisation + core helps leg pain most, stretching alone least), with regression to the
mean (a baseline flare that fades), non-responders, a few who worsen, and noise.

Dirty rows (dirty=True): about 0.3 % of the rows of visits, sessions and scores (at least one of each problem per
5,000-patient block), each a copy of a clean row with one defect; see `PROBLEMS`. Only the deliberate
`conflicting_duplicate` shares a key with a clean row. `generate_labelled` also returns which rows are dirty.

Performance: per-row work is vectorised with numpy; rows are written with pyarrow's CSV writer, block by block
(`BLOCK` patients at a time), so memory stays flat in the number of patients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.kinds import SESSIONS

BLOCK = 5_000
DIRTY_RATE = 0.003

PATIENT_COLUMNS = [
    "patient_id",
    "clinic_id",
    "therapist_id",
    "birth_year",
    "sex",
    "episode_start",
    "episode_end",
    "symptom_onset",
    "side",
    "first_name",
    "last_name",
]
VISIT_MEASURES = ["pain_leg", "pain_back", "numbness", "slr_left", "slr_right", "lumbar_flexion", "odi"]
VISIT_COLUMNS = ["patient_id", "visit_date", *VISIT_MEASURES]
SESSION_COLUMNS = [*SESSIONS.required, *SESSIONS.optional]  # the canonical sessions file, every column
SCORE_COLUMNS = ["patient_id", "recorded_at", "measure", "value", "side"]
COLUMNS = {
    "patients": PATIENT_COLUMNS,
    "visits": VISIT_COLUMNS,
    "sessions": SESSION_COLUMNS,
    "scores": SCORE_COLUMNS,
}

#: Defects written into dirty rows, per file.
PROBLEMS = {
    "visits": (
        "out_of_range",
        "impossible_date",
        "future_date",
        "unknown_patient",
        "missing_required",
        "conflicting_duplicate",
    ),
    "sessions": (
        "out_of_range",
        "impossible_date",
        "future_date",
        "unknown_exercise_type",
        "unknown_status",
        "unknown_patient",
        "missing_required",
        "conflicting_duplicate",
    ),
    "scores": (
        "out_of_range",
        "impossible_date",
        "future_date",
        "unknown_measure",
        "unknown_patient",
        "missing_required",
        "conflicting_duplicate",
    ),
}

# --- catalog of the simulation --------------------------------------------------------------------------------
TYPES = [
    "core_strengthening",
    "glute_strengthening",
    "stretching",
    "nerve_mobilization",
    "posture_training",
    "range_of_motion",
    "manual_therapy",
]
CORE, GLUTE, STRETCH, NERVE, POSTURE, ROM, MANUAL = range(7)
EXERCISES = [
    ("Bird dog", CORE),
    ("Dead bug", CORE),
    ("Side plank", CORE),
    ("Glute bridge", GLUTE),
    ("Clamshell", GLUTE),
    ("Piriformis stretch", STRETCH),
    ("Hamstring stretch", STRETCH),
    ("Hip flexor stretch", STRETCH),
    ("Sciatic nerve glide", NERVE),
    ("Slump slider", NERVE),
    ("Chin tuck and wall posture", POSTURE),
    ("Pelvic tilt", ROM),
    ("Knee to chest", ROM),
    ("Cat-camel", ROM),
    # clinic only
    ("Soft tissue mobilisation", MANUAL),
    ("Myofascial release", MANUAL),
]
EX_NAMES = [e[0] for e in EXERCISES]
EX_TYPE = np.array([e[1] for e in EXERCISES])
HOME_EX = np.flatnonzero(EX_TYPE != MANUAL)
MANUAL_EX = np.flatnonzero(EX_TYPE == MANUAL)
N_HOME = HOME_EX.size
MAX_EX = 4  # exercises in a home programme: 2..4
MANUAL_SLOT = MAX_EX  # sort position of the manual-therapy row on a clinic day

# How much each exercise type helps the leg-type measures (leg pain, numbness, SLR) and the back-type measures
# (back pain, ODI, lumbar flexion). Invented but plausible; the point is that the mix matters.
LEG_EFFECT = np.array([0.8, 0.7, 0.45, 1.0, 0.5, 0.55, 0.0])
BACK_EFFECT = np.array([1.0, 0.85, 0.6, 0.55, 0.75, 0.7, 0.0])

STATUSES = ["completed", "partial", "skipped", "missed"]
COMPLETED, PARTIAL, SKIPPED, MISSED = range(4)
REASONS = ["pain", "no time", "forgot", "felt better", "illness"]
REASON_P = [0.22, 0.35, 0.15, 0.13, 0.15]
SIDES = ["left", "right", "both"]
LEFT, RIGHT, BOTH = range(3)
SETTINGS = ["clinic", "home"]
SCORE_MEASURES = ["pain_leg", "numbness"]
UNKNOWN_MEASURES = ["pain_foot", "mood"]
UNKNOWN_TYPES = ["yoga_flow", "balance_training"]
UNKNOWN_STATUS = ["done?"]
IMPOSSIBLE_DATES = ["2024-02-30", "2023-02-29", "2024-06-31"]
N_UNKNOWN_PATIENTS = 50
FUTURE_DAYS = 60
HISTORY_DAYS = 300  # earliest episode start is 272 days before as_of

FIRST_NAMES = [
    "Alex", "Sam", "Robin", "Jamie", "Kim", "Taylor", "Jordan", "Casey", "Morgan", "Riley",
    "Avery", "Quinn", "Charlie", "Drew", "Eli", "Frankie", "Nico", "Sasha", "Toni", "Remy",
]  # fmt: skip
LAST_NAMES = [
    "Testperson", "Mockford", "Fakeley", "Sampleton", "Placeholder", "Dummyworth", "Synthetica",
    "Notreal", "Exampleby", "Fictitia", "Madeupson", "Pretendale", "Simulatova", "Demoson",
]  # fmt: skip

# Visit measures: (baseline rounding, noise sd in the clinic)
_VISIT_NOISE = {
    "pain_leg": 0.6,
    "pain_back": 0.7,
    "numbness": 0.7,
    "slr_left": 4.0,
    "slr_right": 4.0,
    "lumbar_flexion": 5.0,
    "odi": 4.0,
}
# Share of patients whose baseline cell of that column is blank; share of blank follow-up cells.
_BASELINE_MISS = np.array([0.02, 0.04, 0.05, 0.04, 0.04, 0.06, 0.08])
_FOLLOWUP_MISS = np.array([0.04, 0.06, 0.07, 0.06, 0.06, 0.08, 0.12])
# Lower-better measures move towards 0, higher-better ones towards the target: (lower, fraction of room, target)
_TRAJ = {
    "pain_leg": (True, 0.75, 0.0),
    "pain_back": (True, 0.6, 0.0),
    "numbness": (True, 0.6, 0.0),
    "odi": (True, 0.65, 0.0),
    "slr_left": (False, 0.7, 85.0),
    "slr_right": (False, 0.7, 85.0),
    "lumbar_flexion": (False, 0.5, 75.0),
}
_RANGE = {m: (0.0, 10.0) for m in ("pain_leg", "pain_back", "numbness")} | {
    "odi": (0.0, 100.0),
    "slr_left": (0.0, 90.0),
    "slr_right": (0.0, 90.0),
    "lumbar_flexion": (0.0, 90.0),
}
BIG = 10**6


# --- public API -------------------------------------------------------------------------------------------------
def generate(
    out_dir: Path,
    n_patients: int,
    seed: int = 7,
    as_of: date | None = None,
    dirty: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write patients.csv, visits.csv, sessions.csv and scores.csv into `out_dir`; return their paths."""
    paths, _ = _run(Path(out_dir), n_patients, seed, as_of or date.today(), dirty, progress, labels=False)
    return paths


def generate_labelled(
    out_dir: Path,
    n_patients: int,
    seed: int = 7,
    as_of: date | None = None,
    dirty: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Path], dict[str, pd.DataFrame]]:
    """As `generate` (same bytes), plus the dirty rows of each file: a frame with `row` (0-based data row, so the
    file line is row + 2) and `problem` (one of PROBLEMS[kind]), for visits, sessions and scores."""
    return _run(Path(out_dir), n_patients, seed, as_of or date.today(), dirty, progress, labels=True)


# --- population -------------------------------------------------------------------------------------------------
@dataclass
class _Ctx:
    n: int
    as_of: date
    as_of_ord: int
    d_min: int  # ordinal of date code 0
    date_dict: pa.Array  # date code -> 'YYYY-MM-DD' (valid days, then IMPOSSIBLE_DATES)
    time_dict: pa.Array  # second of day -> 'HH:MM:SS'
    pid_dict: pa.Array  # patient code -> id (N real, then unknown ones)
    ther_dict: pa.Array
    n_valid_days: int


def _make_ctx(n: int, as_of: date) -> _Ctx:
    as_of_ord = as_of.toordinal()
    d_min = as_of_ord - HISTORY_DAYS
    n_days = HISTORY_DAYS + FUTURE_DAYS + 1
    first = np.datetime64(date.fromordinal(d_min), "D")
    days = (first + np.arange(n_days)).astype(str).tolist()
    secs = np.arange(86_400)
    hh, mm, ss = secs // 3600, secs // 60 % 60, secs % 60
    times = np.char.add(
        np.char.add(np.char.add(np.char.zfill(hh.astype(str), 2), ":"), np.char.zfill(mm.astype(str), 2)),
        np.char.add(":", np.char.zfill(ss.astype(str), 2)),
    )
    width = max(6, len(str(n + 10 * N_UNKNOWN_PATIENTS)))
    ids = [f"P{i + 1:0{width}d}" for i in range(n)]
    ids += [f"P{10**width - 1 - j:0{width}d}" for j in range(N_UNKNOWN_PATIENTS)]
    return _Ctx(
        n=n,
        as_of=as_of,
        as_of_ord=as_of_ord,
        d_min=d_min,
        date_dict=pa.array(days + IMPOSSIBLE_DATES),
        time_dict=pa.array(times.tolist()),
        pid_dict=pa.array(ids),
        ther_dict=pa.array([]),
        n_valid_days=n_days,
    )


def _population(n: int, seed: int, ctx: _Ctx) -> dict[str, np.ndarray]:
    """Every per-patient attribute, drawn once for all patients."""
    rng = np.random.default_rng([seed, 1])
    P: dict[str, np.ndarray] = {}

    # clinics and therapists
    n_clinics = max(2, round(3 * n / 1000))
    clinic_w = rng.dirichlet(np.full(n_clinics, 5.0))
    clinic = rng.choice(n_clinics, size=n, p=clinic_w)
    expected = clinic_w * n
    n_ther = np.minimum(rng.integers(6, 11, n_clinics), np.maximum(2, np.ceil(expected / 25).astype(int)))
    ther_first = np.concatenate([[0], np.cumsum(n_ther)[:-1]])
    therapist = ther_first[clinic] + (rng.random(n) * n_ther[clinic]).astype(int)
    tw = max(3, len(str(int(n_ther.sum()))))
    cw = max(2, len(str(n_clinics)))
    ctx.ther_dict = pa.array([f"T{i + 1:0{tw}d}" for i in range(int(n_ther.sum()))])
    P["clinic"] = clinic
    P["therapist"] = therapist
    P["clinic_names"] = np.array([f"C{i + 1:0{cw}d}" for i in range(n_clinics)])

    # demographics
    age = np.clip(rng.normal(52, 14, n), 20, 85)
    birth = np.clip(ctx.as_of.year - np.round(age), 1940, min(2005, ctx.as_of.year - 18)).astype(int)
    old = rng.random(n) < 0.012  # over 89 at as_of, to exercise the 90+ rule
    birth[old] = ctx.as_of.year - rng.integers(91, 98, int(old.sum()))
    P["birth_year"] = birth
    P["sex"] = rng.choice(np.array(["F", "M", "X"]), size=n, p=[0.55, 0.43, 0.02])
    P["side"] = rng.choice(3, size=n, p=[0.42, 0.42, 0.16])
    P["first_name"] = rng.integers(0, len(FIRST_NAMES), n)
    P["last_name"] = rng.integers(0, len(LAST_NAMES), n)

    # episode timeline, in days from the episode start
    recent = rng.random(n) < 0.36
    P["start_ago"] = np.where(recent, rng.integers(0, 56, n), rng.integers(56, 273, n))
    P["start_ord"] = ctx.as_of_ord - P["start_ago"]
    weeks = rng.choice(np.arange(4, 13), size=n, p=[0.08, 0.1, 0.14, 0.16, 0.15, 0.12, 0.1, 0.08, 0.07])
    P["planned"] = weeks * 7
    drop = rng.random(n) < 0.17
    P["drop_day"] = np.where(drop, 5 + (rng.random(n) * (P["planned"] * 0.75 - 5)).astype(int), BIG)
    eff_drop = P["drop_day"] <= P["start_ago"]
    P["discharged"] = ~eff_drop & (P["planned"] <= P["start_ago"])
    onset_lag = 7 + rng.gamma(2.0, 20.0, n).astype(int)
    P["onset_ord"] = np.where(rng.random(n) < 0.05, -1, P["start_ord"] - onset_lag)

    # adherence: propensity by class (high ~0.9, medium 0.6-0.8, low) and a fade over the episode
    cls = rng.choice(3, size=n, p=[0.2, 0.55, 0.25])
    P["p"] = np.select([cls == 0, cls == 1], [rng.beta(30, 2, n), rng.beta(20, 6, n)], rng.beta(4, 5, n))
    P["decay"] = rng.uniform(0, 0.25, n)
    k = rng.integers(3, 7, n)  # home days per week
    ranks = np.argsort(np.argsort(rng.random((n, 7)), axis=1), axis=1)
    P["weekdays"] = ranks < k[:, None]

    # home programme: a style (stretching only / nerve + core / mixed), 2-4 distinct exercises
    style = rng.choice(3, size=n, p=[0.22, 0.38, 0.40])
    home_types = EX_TYPE[HOME_EX]
    w = np.ones((3, N_HOME))
    w[0] = np.where(home_types == STRETCH, 1.0, 0.0)
    w[1] = np.where(np.isin(home_types, [NERVE, CORE]), 4.0, 0.5)
    n_ex = rng.integers(2, MAX_EX + 1, n)
    n_ex = np.where(style == 0, np.minimum(n_ex, int((home_types == STRETCH).sum())), n_ex)
    with np.errstate(divide="ignore"):
        keys = np.log(w[style]) + rng.gumbel(size=(n, N_HOME))
    prog = HOME_EX[np.argsort(-keys, axis=1)[:, :MAX_EX]]
    P["n_ex"] = n_ex
    P["prog"] = np.where(np.arange(MAX_EX)[None, :] < n_ex[:, None], prog, -1)
    is_stretch = EX_TYPE[np.maximum(P["prog"], 0)] == STRETCH
    P["psets"] = rng.integers(2, 4, (n, MAX_EX)).astype(float)
    P["preps"] = np.where(
        is_stretch, rng.integers(2, 4, (n, MAX_EX)), rng.integers(8, 16, (n, MAX_EX))
    ).astype(float)
    P["pmin"] = rng.integers(4, 11, (n, MAX_EX)).astype(float)
    P["manual"] = MANUAL_EX[rng.integers(0, MANUAL_EX.size, n)]

    # how the exercise mix helps each measure group
    valid = P["prog"] >= 0
    types = EX_TYPE[np.maximum(P["prog"], 0)]
    has = np.zeros((n, 7), bool)
    np.put_along_axis(has, np.where(valid, types, MANUAL), True, axis=1)
    has[:, MANUAL] = False
    for name, eff in (("mix_leg", LEG_EFFECT), ("mix_back", BACK_EFFECT)):
        e = np.where(valid, eff[types], np.nan)
        synergy = 0.15 * (has[:, NERVE] & has[:, CORE])
        P[name] = 0.55 * np.nanmax(e, axis=1) + 0.45 * np.nanmean(e, axis=1) + synergy

    # response: most respond, some do not, a few worsen
    rc = rng.choice(3, size=n, p=[0.80, 0.14, 0.06])
    P["resp"] = np.select(
        [rc == 0, rc == 1],
        [rng.uniform(0.7, 1.05, n), rng.uniform(-0.05, 0.12, n)],
        rng.uniform(-0.5, -0.25, n),
    )
    P["worsen"] = rc == 2
    P["tau"] = rng.uniform(14, 35, n)

    # baselines (true values) and the flare at evaluation that regresses to the mean
    leg = np.clip(rng.normal(6.2, 1.5, n), 2, 10)
    P["b_pain_leg"] = leg
    P["b_pain_back"] = np.clip(rng.normal(4.8, 2.0, n), 0, 10)
    P["b_numbness"] = np.clip(rng.normal(4.0, 2.4, n), 0, 10)
    P["b_odi"] = np.clip(12 + 4 * leg + rng.normal(0, 9, n), 4, 90)
    affected = np.clip(rng.normal(45, 12, n), 15, 80)
    unaffected = np.clip(rng.normal(76, 7, n), 50, 90)
    left_aff = P["side"] != RIGHT
    right_aff = P["side"] != LEFT
    P["b_slr_left"] = np.where(left_aff, affected, unaffected)
    other = np.clip(np.where(P["side"] == BOTH, affected + rng.normal(0, 5, n), affected), 15, 80)
    P["b_slr_right"] = np.where(right_aff, other, unaffected)
    P["aff_slr_left"] = left_aff
    P["aff_slr_right"] = right_aff
    P["b_lumbar_flexion"] = np.clip(rng.normal(48, 12, n), 15, 85)
    for m, sd in (("pain_leg", 0.9), ("pain_back", 0.9), ("numbness", 0.7), ("odi", 5)):
        P[f"f_{m}"] = np.abs(rng.normal(0, sd, n))
    for m in ("slr_left", "slr_right", "lumbar_flexion"):
        P[f"f_{m}"] = np.abs(rng.normal(0, 4, n))

    # clinic recording habits
    P["half_points"] = rng.random(n) < 0.25  # records pain as 6.5 rather than 6 or 7
    P["lack_fu"] = rng.random(n) < 0.07  # follow-up measures never recorded
    P["no_baseline_row"] = rng.random(n) < 0.03
    P["baseline_miss"] = rng.random((n, len(VISIT_MEASURES))) < _BASELINE_MISS
    P["pain_log"] = rng.uniform(0, 0.7, n)  # how often pain during a session is logged

    # home app habits
    P["twice"] = rng.random(n) < 0.65
    P["num_prop"] = rng.uniform(0.7, 1.0, n)
    P["app_half"] = rng.random(n) < 0.3
    P["app_bias"] = rng.normal(0, 0.4, n)
    P["app_side"] = np.where(rng.random(n) < 0.6, P["side"], -1)
    P["tail"] = np.where(rng.random(n) < 0.5, rng.integers(7, 29, n), 0)
    return P


# --- helpers ----------------------------------------------------------------------------------------------------
def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset) for each of sum(counts) items: owner i repeated counts[i] times, offset 0..counts[i]-1."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def _traj(P: dict, R: dict, m: str, i: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Expected value of measure m for block patients i at day t (no measurement noise)."""
    lower, frac, target = _TRAJ[m]
    base = P[f"b_{m}"][i]
    flare = P[f"f_{m}"][i] * np.exp(-t / 10.0)
    tau = P["tau"][i] * (1.5 if m == "numbness" else 1.0)
    imp = R[m][i] * (1.0 - np.exp(-t / tau))
    if lower:
        return base + flare - base * frac * imp
    return base - flare + (target - base) * frac * imp


def _round_visit(m: str, x: np.ndarray, half: np.ndarray) -> np.ndarray:
    lo, hi = _RANGE[m]
    x = np.clip(x, lo, hi)
    if m == "odi":
        return np.clip(np.round(x / 2) * 2, lo, hi)
    if m in ("pain_leg", "pain_back", "numbness"):
        return np.where(half, np.round(x * 2) / 2, np.round(x))
    return np.round(x)


# --- one block of patients ----------------------------------------------------------------------------------------
def _block(P: dict, lo: int, hi: int, seed: int, b: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng([seed, 2, b])
    B = {k: v[lo:hi] for k, v in P.items() if k != "clinic_names"}
    nb = hi - lo
    gidx = np.arange(lo, hi)
    start_ago, planned, drop_day = B["start_ago"], B["planned"], B["drop_day"]

    # visit schedule: evaluation on day 0, weekly-ish follow-ups, a discharge visit on the planned end
    K = 22
    gaps = rng.choice(np.array([3, 4, 5, 6, 7, 7, 7, 7, 8, 9, 10, 14]), size=(nb, K))
    days = np.concatenate([np.zeros((nb, 1), int), np.cumsum(gaps, axis=1), planned[:, None]], axis=1)
    ok = np.zeros_like(days, dtype=bool)
    ok[:, 0] = True
    fu = days[:, 1:-1]
    ok[:, 1:-1] = (
        (fu < planned[:, None] - 2)
        & (fu <= start_ago[:, None])
        & (fu < drop_day[:, None])
        & (rng.random(fu.shape) > 0.08)
    )
    ok[:, -1] = B["discharged"]
    v_own, v_col = np.nonzero(ok)
    v_day = days[v_own, v_col]

    # home programme: each scheduled (day, exercise)
    home_end = np.minimum(planned, start_ago + 1)
    h_own, h_off = _expand(np.maximum(home_end - 1, 0))
    h_day = h_off + 1
    weekday = (B["start_ord"][h_own] + h_day) % 7
    keep = B["weekdays"][h_own, weekday]
    h_own, h_day = h_own[keep], h_day[keep]
    nd = h_own.size
    dropped = h_day >= drop_day[h_own]
    pt = B["p"][h_own] * (1 - B["decay"][h_own] * h_day / planned[h_own])
    engaged = (rng.random(nd) < pt) & ~dropped
    logskip = ~engaged & ~dropped & (rng.random(nd) < 0.3)
    day_reason = rng.choice(len(REASONS), size=nd, p=REASON_P)
    d_idx, slot = _expand(B["n_ex"][h_own])
    own = h_own[d_idx]
    day = h_day[d_idx]
    nh = own.size
    u = rng.random(nh)
    eng = engaged[d_idx]
    status = np.full(nh, MISSED)
    status[logskip[d_idx]] = SKIPPED
    status[eng] = np.where(u[eng] < 0.9, COMPLETED, np.where(u[eng] < 0.98, PARTIAL, SKIPPED))
    reason = np.where(status == SKIPPED, np.where(eng, np.where(u < 0.995, 0, 1), day_reason[d_idx]), -1)

    # realised adherence drives the response
    done = (status == COMPLETED) + 0.5 * (status == PARTIAL)
    sched = np.bincount(own, minlength=nb)
    adher = np.where(sched > 0, np.bincount(own, weights=done, minlength=nb) / np.maximum(sched, 1), B["p"])
    dose = 0.3 + 0.7 * adher
    noise = rng.normal(0, 0.07, nb)
    R: dict[str, np.ndarray] = {}
    for group, ms in (
        ("mix_leg", ("pain_leg", "numbness")),
        ("mix_back", ("pain_back", "odi", "lumbar_flexion")),
    ):
        r = np.where(B["worsen"], B["resp"], B["resp"] * dose * B[group] + noise)
        for m in ms:
            R[m] = r
    R["slr_left"] = R["pain_leg"] * np.where(B["aff_slr_left"], 1.0, 0.15)
    R["slr_right"] = R["pain_leg"] * np.where(B["aff_slr_right"], 1.0, 0.15)

    # home rows' values
    ex = B["prog"][own, slot]
    psets, preps, pmin = B["psets"][own, slot], B["preps"][own, slot], B["pmin"][own, slot]
    sets, reps, dur = _performed(rng, status, psets, preps, pmin)
    pain = _pain_during(rng, B, R, status, own, day)

    # clinic rows: the programme exercises plus manual therapy, on each visit day
    c_vis, c_slot = _expand(B["n_ex"][v_own] + 1)
    c_own = v_own[c_vis]
    c_day = v_day[c_vis]
    manual = c_slot == B["n_ex"][c_own]
    c_ex = np.where(manual, B["manual"][c_own], B["prog"][c_own, np.minimum(c_slot, MAX_EX - 1)])
    cs = np.minimum(c_slot, MAX_EX - 1)
    c_psets = np.where(manual, np.nan, B["psets"][c_own, cs])
    c_preps = np.where(manual, np.nan, B["preps"][c_own, cs])
    c_pmin = np.where(manual, 15.0, B["pmin"][c_own, cs])
    nc = c_own.size
    c_status = np.where(rng.random(nc) < 0.96, COMPLETED, PARTIAL)
    c_sets, c_reps, c_dur = _performed(rng, c_status, c_psets, c_preps, c_pmin)
    c_pain = _pain_during(rng, B, R, c_status, c_own, c_day)

    sess_own = np.concatenate([c_own, own])
    sess_day = np.concatenate([c_day, day])
    setting = np.concatenate([np.zeros(nc, int), np.ones(nh, int)])
    sort_slot = np.concatenate([np.where(manual, MANUAL_SLOT, c_slot), slot])
    order = np.lexsort((sort_slot, setting, sess_day, sess_own))
    s_ex = np.concatenate([c_ex, ex])[order]
    sessions = {
        "patient_id": gidx[sess_own[order]],
        "session_date": (B["start_ord"][sess_own] + sess_day)[order],
        "setting": setting[order],
        "exercise": s_ex,
        "exercise_type": EX_TYPE[s_ex],
        "status": np.concatenate([c_status, status])[order],
        "sets": np.concatenate([c_sets, sets])[order],
        "reps": np.concatenate([c_reps, reps])[order],
        "duration_min": np.concatenate([c_dur, dur])[order],
        "prescribed_sets": np.concatenate([c_psets, psets])[order],
        "prescribed_reps": np.concatenate([c_preps, preps])[order],
        "prescribed_min": np.concatenate([c_pmin, pmin])[order],
        "pain_during": np.concatenate([c_pain, pain])[order],
        "skip_reason": np.concatenate([np.full(nc, -1), reason])[order],
        "therapist_id": np.concatenate([B["therapist"][c_own], np.full(nh, -1)])[order],
    }

    # visits (EMR rows): drop the rows nobody recorded
    keep = np.where(v_col == 0, ~B["no_baseline_row"][v_own], ~B["lack_fu"][v_own])
    vo, vd = v_own[keep], v_day[keep]
    baseline = vd == 0
    visits = {"patient_id": gidx[vo], "visit_date": B["start_ord"][vo] + vd}
    for j, m in enumerate(VISIT_MEASURES):
        x = _traj(B, R, m, vo, vd) + rng.normal(0, _VISIT_NOISE[m], vo.size)
        x = _round_visit(m, x, B["half_points"][vo])
        miss = np.where(baseline, B["baseline_miss"][vo, j], rng.random(vo.size) < _FOLLOWUP_MISS[j])
        visits[m] = np.where(miss, np.nan, x)

    # home app scores: daily-ish, more often when adherent, stop at drop-out
    obs_end = np.minimum(np.minimum(start_ago + 1, drop_day), planned + B["tail"])
    a_own, a_day = _expand(obs_end)
    na = a_own.size
    in_prog = a_day < planned[a_own]
    q = np.clip(0.3 + 0.7 * B["p"][a_own] * (1 - B["decay"][a_own] * a_day / planned[a_own]), 0.05, 0.97)
    q = np.where(in_prog, q, 0.35 * q)
    morning = rng.random(na) < q
    twice = B["twice"][a_own]
    evening = twice & (rng.random(na) < q)
    m_sec = np.where(
        twice, rng.integers(6 * 3600 + 1800, 10 * 3600 + 1800, na), rng.integers(7 * 3600, 22 * 3600, na)
    )
    e_sec = rng.integers(18 * 3600, 22 * 3600 + 1800, na)
    e_own = np.concatenate([a_own[morning], a_own[evening]])
    e_day = np.concatenate([a_day[morning], a_day[evening]])
    e_sec = np.concatenate([m_sec[morning], e_sec[evening]])
    e_eve = np.concatenate([np.zeros(int(morning.sum()), bool), np.ones(int(evening.sum()), bool)])
    o = np.lexsort((e_sec, e_day, e_own))
    e_own, e_day, e_sec, e_eve = e_own[o], e_day[o], e_sec[o], e_eve[o]
    has_num = rng.random(e_own.size) < B["num_prop"][e_own]
    r_ent, r_k = _expand(1 + has_num)
    r_own = e_own[r_ent]
    r_day = e_day[r_ent]
    val = np.empty(r_own.size)
    for k, m in enumerate(SCORE_MEASURES):
        sel = r_k == k
        val[sel] = _traj(B, R, m, r_own[sel], r_day[sel])
    val += B["app_bias"][r_own] + 0.3 * e_eve[r_ent] + rng.normal(0, 0.8, r_own.size)
    val = np.clip(np.where(B["app_half"][r_own], np.round(val * 2) / 2, np.round(val)), 0, 10)
    scores = {
        "patient_id": gidx[r_own],
        "rec_date": B["start_ord"][r_own] + r_day,
        "rec_sec": e_sec[r_ent],
        "measure": r_k,
        "value": val,
        "side": B["app_side"][r_own],
    }
    return {"visits": visits, "sessions": sessions, "scores": scores}


def _performed(rng, status, psets, preps, pmin):
    n = status.size
    comp, part = status == COMPLETED, status == PARTIAL
    short = rng.random(n) < 0.2
    sets = np.where(comp, psets, np.where(part, np.maximum(1, psets - rng.integers(1, 3, n)), np.nan))
    reps = np.where(
        comp,
        preps - short * rng.integers(1, 3, n),
        np.where(part, np.maximum(1, np.round(preps * rng.uniform(0.4, 0.9, n))), np.nan),
    )
    reps = np.where(np.isnan(preps), np.nan, np.maximum(reps, 1))
    dur = np.where(
        comp,
        np.round(pmin * rng.uniform(0.8, 1.3, n) * 2) / 2,
        np.where(part, np.round(pmin * rng.uniform(0.3, 0.7, n) * 2) / 2, np.nan),
    )
    return sets, reps, np.maximum(dur, 0.5)


def _pain_during(rng, B, R, status, own, day):
    n = status.size
    log = ((status == COMPLETED) | (status == PARTIAL)) & (rng.random(n) < B["pain_log"][own])
    x = _traj(B, R, "pain_leg", own, day) - 0.5 + rng.normal(0, 1.0, n)
    return np.where(log, np.clip(np.round(x), 0, 10), np.nan)


# --- dirty rows ----------------------------------------------------------------------------------------------------
_KEYS = {
    "visits": ("patient_id", "visit_date"),
    "sessions": ("patient_id", "session_date", "setting", "exercise"),
    "scores": ("patient_id", "measure", "rec_date", "rec_sec", "side"),
}
_DATE_COL = {"visits": "visit_date", "sessions": "session_date", "scores": "rec_date"}
_IMPOSSIBLE = -10  # date "ordinals" below this are indexes into IMPOSSIBLE_DATES: -10 - k
_MISSING_REQUIRED = {
    "visits": ("patient_id", "visit_date"),
    "sessions": ("patient_id", "session_date", "exercise", "status"),
    "scores": ("patient_id", "rec_date", "measure", "value"),
}


def _keys(kind: str, cols: dict[str, np.ndarray], ctx: _Ctx) -> np.ndarray:
    """One int64 per row encoding the natural key (mixed radix; nulls and impossible dates get their own codes)."""
    radix = {
        "patient_id": ctx.n + N_UNKNOWN_PATIENTS + 1,
        "setting": len(SETTINGS) + 1,
        "exercise": len(EX_NAMES) + 1,
        "measure": len(SCORE_MEASURES) + len(UNKNOWN_MEASURES) + 1,
        "rec_sec": 86_401,
        "side": len(SIDES) + 1,
    }
    key = np.zeros(cols["patient_id"].size, dtype=np.int64)
    for c in _KEYS[kind]:
        x = np.nan_to_num(cols[c], nan=-1).astype(np.int64)
        if c in _DATE_COL.values():
            x = _date_codes(x, ctx)
            r = ctx.n_valid_days + len(IMPOSSIBLE_DATES) + 1
        else:
            r = radix[c]
        key = key * r + (x + 1)
    return key


def _dirty(kind: str, cols: dict, ctx: _Ctx, seed: int, b: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Clean columns plus dirty rows, each placed right after the clean row it was copied from.
    Returns (columns, dirty row positions in the block, problem index of each)."""
    n = cols["patient_id"].size
    problems = PROBLEMS[kind]
    k = min(n, max(len(problems), round(DIRTY_RATE * n)))
    if k == 0:
        return cols, np.zeros(0, int), np.zeros(0, int)
    rng = np.random.default_rng([seed, 3, b, list(PROBLEMS).index(kind)])
    src = np.sort(rng.choice(n, size=k, replace=False))
    prob = rng.permutation(np.arange(k) % len(problems))
    d = {c: v[src].copy() for c, v in cols.items()}
    dcol = _DATE_COL[kind]
    last_day = ctx.as_of_ord

    def sel(name: str) -> np.ndarray:
        return prob == problems.index(name)

    def shift_day(s: np.ndarray) -> None:
        step = rng.integers(1, 4, s.sum())
        fwd = d[dcol][s] + step
        d[dcol][s] = np.where(fwd <= last_day, fwd, d[dcol][s] - step)

    s = sel("impossible_date")
    d[dcol][s] = _IMPOSSIBLE - rng.integers(0, len(IMPOSSIBLE_DATES), s.sum())
    s = sel("future_date")
    d[dcol][s] = last_day + rng.integers(1, 45, s.sum())
    s = sel("unknown_patient")
    d["patient_id"][s] = ctx.n + rng.integers(0, N_UNKNOWN_PATIENTS, s.sum())
    s = sel("missing_required")
    which = rng.integers(0, len(_MISSING_REQUIRED[kind]), s.sum())
    for j, c in enumerate(_MISSING_REQUIRED[kind]):
        rows = np.flatnonzero(s)[which == j]
        d[c][rows] = np.nan if d[c].dtype.kind == "f" else -1
        if c == "rec_date":
            d["rec_sec"][rows] = -1
    s = sel("out_of_range")
    if kind == "scores":
        d["value"][s] = rng.choice(np.array([14.0, -2.0, 11.5, 12.0]), s.sum())
        d["rec_sec"][s] = np.minimum(d["rec_sec"][s] + rng.integers(60, 3000, s.sum()), 86_399)
    elif kind == "visits":
        bad = {"pain_leg": 14.0, "numbness": 12.5, "odi": 130.0, "slr_left": 120.0, "lumbar_flexion": -10.0}
        which = rng.integers(0, len(bad), s.sum())
        for j, (c, v) in enumerate(bad.items()):
            d[c][np.flatnonzero(s)[which == j]] = v
        shift_day(s)
    else:
        d["status"][s] = COMPLETED
        d["skip_reason"][s] = -1
        d["sets"][s] = d["prescribed_sets"][s]
        d["reps"][s] = d["prescribed_reps"][s]
        d["duration_min"][s] = d["prescribed_min"][s]
        d["pain_during"][s] = rng.choice(np.array([14.0, 11.0, -1.0]), s.sum())
        shift_day(s)
    if kind == "scores":
        s = sel("unknown_measure")
        d["measure"][s] = len(SCORE_MEASURES) + rng.integers(0, len(UNKNOWN_MEASURES), s.sum())
    if kind == "sessions":
        s = sel("unknown_exercise_type")
        d["exercise_type"][s] = len(TYPES) + rng.integers(0, len(UNKNOWN_TYPES), s.sum())
        shift_day(s)
        s = sel("unknown_status")
        d["status"][s] = len(STATUSES)
        shift_day(s)
    s = sel("conflicting_duplicate")
    if kind == "scores":
        v = d["value"][s]
        delta = rng.choice(np.array([2.0, 3.0]), s.sum())
        d["value"][s] = np.where(v + delta <= 10, v + delta, v - delta)
    elif kind == "visits":
        v = d["pain_leg"][s]
        d["pain_leg"][s] = np.where(np.isnan(v), 5.0, np.where(v + 2 <= 10, v + 2, v - 2))
    else:
        rows = np.flatnonzero(s)
        was_done = np.isin(d["status"][rows], [COMPLETED, PARTIAL])
        d["status"][rows] = np.where(was_done, SKIPPED, COMPLETED)
        d["skip_reason"][rows] = np.where(was_done, REASONS.index("no time"), -1)
        d["sets"][rows] = np.where(was_done, np.nan, d["prescribed_sets"][rows])
        d["reps"][rows] = np.where(was_done, np.nan, d["prescribed_reps"][rows])
        d["duration_min"][rows] = np.where(was_done, np.nan, d["prescribed_min"][rows])
        d["pain_during"][rows] = np.nan

    # no dirty row may share a key with a clean row (except the deliberate conflict) or with another dirty row
    # (a copy whose defect is not in its key, e.g. a blank value, moves to another time or day; rows that still
    # clash after that are dropped)
    ck = np.sort(_keys(kind, cols, ctx))

    def clashes(dk: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(ck, dk), ck.size - 1)
        return ck[i] == dk

    conflict = sel("conflicting_duplicate")
    for _ in range(4):
        clash = clashes(_keys(kind, d, ctx)) & ~conflict & (d[dcol] > 0)
        if kind == "scores":
            d["rec_sec"][clash] = np.minimum(
                d["rec_sec"][clash] + rng.integers(60, 3000, clash.sum()), 86_399
            )
        else:
            shift_day(clash)
    dk = _keys(kind, d, ctx)
    clash = clashes(dk)
    _, first = np.unique(dk, return_index=True)
    dup = np.ones(k, bool)
    dup[first] = False
    keep = np.where(conflict, clash & ~dup, ~clash & ~dup)
    src, prob = src[keep], prob[keep]
    d = {c: v[keep] for c, v in d.items()}

    order = np.argsort(np.concatenate([2 * np.arange(n), 2 * src + 1]), kind="stable")
    out = {c: np.concatenate([cols[c], d[c]])[order] for c in cols}
    pos = np.flatnonzero(order >= n)
    return out, pos, prob[order[pos] - n]


# --- writing -------------------------------------------------------------------------------------------------------
def _cat(codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    codes = np.asarray(codes)
    if codes.dtype.kind == "f":
        codes = np.nan_to_num(codes, nan=-1)
    codes = codes.astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary)


def _date_codes(ords: np.ndarray, ctx: _Ctx) -> np.ndarray:
    ords = np.asarray(ords, dtype=np.int64)
    return np.where(
        ords <= _IMPOSSIBLE, ctx.n_valid_days + (_IMPOSSIBLE - ords), np.where(ords < 0, -1, ords - ctx.d_min)
    )


def _table(kind: str, cols: dict, ctx: _Ctx) -> pa.Table:
    dicts = {
        "patient_id": ctx.pid_dict,
        "setting": pa.array(SETTINGS),
        "exercise": pa.array(EX_NAMES),
        "exercise_type": pa.array(TYPES + UNKNOWN_TYPES),
        "status": pa.array(STATUSES + UNKNOWN_STATUS),
        "skip_reason": pa.array(REASONS),
        "therapist_id": ctx.ther_dict,
        "measure": pa.array(SCORE_MEASURES + UNKNOWN_MEASURES),
        "side": pa.array(SIDES),
    }
    arrays = []
    for c in COLUMNS[kind]:
        if c in ("visit_date", "session_date"):
            arrays.append(_cat(_date_codes(cols[c], ctx), ctx.date_dict))
        elif c == "recorded_at":
            dc = _date_codes(cols["rec_date"], ctx).astype(np.int32)
            days = pc.take(ctx.date_dict, pa.array(dc, mask=dc < 0))
            secs = cols["rec_sec"].astype(np.int32)
            times = pc.take(ctx.time_dict, pa.array(secs, mask=secs < 0))
            arrays.append(pc.binary_join_element_wise(days, times, "T"))
        elif c in dicts:
            arrays.append(_cat(cols[c], dicts[c]))
        else:
            arrays.append(pa.array(np.asarray(cols[c], dtype=float), from_pandas=True))
    return pa.Table.from_arrays(arrays, names=COLUMNS[kind])


def _patients_frame(P: dict, ctx: _Ctx) -> pd.DataFrame:
    def iso(ords: np.ndarray) -> np.ndarray:
        d = (np.datetime64("0001-01-01", "D") + (np.asarray(ords) - 1)).astype(str).astype(object)
        d[np.asarray(ords) < 0] = ""
        return d

    return pd.DataFrame(
        {
            "patient_id": np.asarray(ctx.pid_dict.to_pylist()[: ctx.n], dtype=object),
            "clinic_id": P["clinic_names"][P["clinic"]],
            "therapist_id": np.asarray(ctx.ther_dict.to_pylist(), dtype=object)[P["therapist"]],
            "birth_year": P["birth_year"],
            "sex": P["sex"],
            "episode_start": iso(P["start_ord"]),
            "episode_end": iso(np.where(P["discharged"], P["start_ord"] + P["planned"], -1)),
            "symptom_onset": iso(P["onset_ord"]),
            "side": np.array(SIDES)[P["side"]],
            "first_name": np.array(FIRST_NAMES)[P["first_name"]],
            "last_name": np.array(LAST_NAMES)[P["last_name"]],
        },
        columns=PATIENT_COLUMNS,
    )


def _run(out_dir, n, seed, as_of, dirty, progress, labels):
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    if n < 1:
        raise ValueError("n_patients must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = _make_ctx(n, as_of)
    P = _population(n, seed, ctx)
    paths = {k: out_dir / f"{k}.csv" for k in COLUMNS}
    _patients_frame(P, ctx).to_csv(paths["patients"], index=False, lineterminator="\n", encoding="utf-8")
    facts = ("visits", "sessions", "scores")
    written = dict.fromkeys(facts, 0)
    found: dict[str, list[pd.DataFrame]] = {k: [] for k in facts}
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    sinks = {k: pa.OSFile(str(paths[k]), "wb") for k in facts}
    try:
        for k in facts:
            sinks[k].write((",".join(COLUMNS[k]) + "\n").encode())
        n_blocks = -(-n // BLOCK)
        for b in range(n_blocks):
            lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
            rows = _block(P, lo, hi, seed, b)
            for k in facts:
                cols = rows[k]
                if dirty:
                    cols, pos, prob = _dirty(k, cols, ctx, seed, b)
                    if labels:
                        found[k].append(
                            pd.DataFrame({"row": pos + written[k], "problem": np.array(PROBLEMS[k])[prob]})
                        )
                pacsv.write_csv(_table(k, cols, ctx), sinks[k], opts)
                written[k] += cols["patient_id"].size
            say(
                f"generate: block {b + 1}/{n_blocks} ({hi} patients, {written['sessions']:,} sessions, "
                f"{written['scores']:,} scores, {time.perf_counter() - t0:.1f} s)"
            )
    finally:
        for s in sinks.values():
            s.close()
    say(
        f"generate: {n:,} patients, {written['visits']:,} visits, {written['sessions']:,} sessions, "
        f"{written['scores']:,} scores in {time.perf_counter() - t0:.1f} s -> {out_dir}"
    )
    lab = {
        k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame({"row": [], "problem": []}))
        for k, v in found.items()
    }
    return paths, lab
