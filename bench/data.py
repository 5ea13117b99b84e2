"""Benchmark input: a scores CSV of exactly N rows and its patients file, made with numpy and cached by name.

Shaped like `etl.generate`'s scores.csv (`patient_id,recorded_at,measure,value,side`, `YYYY-MM-DDTHH:MM:SS`,
pain_leg and numbness alternating, values 0-10 with one decimal), 100 rows per patient, sorted by patient and time.
About 0.1 % of the rows are replaced by a defective copy (value out of range, value missing, unknown measure,
impossible date, date in the future, unknown patient) so that validation really rejects something; none of them
shares a natural key with a clean row. Deterministic in (rows, seed); `AS_OF` is the load's "today".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
AS_OF = date(2025, 6, 1)
ROWS_PER_PATIENT = 100
INVALID_RATE = 0.001
BLOCK_PATIENTS = 10_000
SPAN_DAYS = 63
SIDES = np.array(["left", "right", "both", ""])
MEASURES = ("pain_leg", "numbness")
DEFECTS = (
    "value_out_of_range",
    "value_missing",
    "unknown_measure",
    "impossible_date",
    "future_date",
    "unknown_patient",
)
SCORE_HEADER = "patient_id,recorded_at,measure,value,side\n"
PATIENT_HEADER = "patient_id,clinic_id,therapist_id,birth_year,sex,episode_start,side\n"

Say = Callable[[str], None]


def cache_paths(cache_dir: Path, rows: int, seed: int) -> tuple[Path, Path]:
    stem = f"v{FORMAT_VERSION}-{rows}-s{seed}"
    return cache_dir / f"scores-{stem}.csv", cache_dir / f"patients-{stem}.csv"


def n_patients(rows: int) -> int:
    return -(-rows // ROWS_PER_PATIENT)


def ensure_input(cache_dir: Path, rows: int, seed: int, say: Say | None = None) -> tuple[Path, Path]:
    """(scores.csv, patients.csv) for `rows` score rows, generated once into `cache_dir` and reused."""
    scores, patients = cache_paths(cache_dir, rows, seed)
    if scores.is_file() and patients.is_file():
        return scores, patients
    cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pop = _population(n_patients(rows), seed)
    _write_atomic(patients, lambda fh: _write_patients(fh, pop))
    _write_atomic(scores, lambda fh: _write_scores(fh, pop, rows, seed))
    if say:
        size = scores.stat().st_size / 1e6
        say(f"input: generated {rows:,} score rows ({size:,.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return scores, patients


def _write_atomic(path: Path, write: Callable) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            write(fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _population(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    first_day = (AS_OF - timedelta(days=300)).toordinal()
    return {
        "pid": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 7)),
        "clinic": rng.integers(1, 9, n),
        "therapist": rng.integers(1, 41, n),
        "birth_year": rng.integers(1940, 2006, n),
        "sex": rng.choice(np.array(["F", "M"]), n),
        # episodes start 70-300 days before AS_OF, so every score (within SPAN_DAYS) is in the past
        "start": first_day + rng.integers(0, 300 - 70, n),
        "side": rng.integers(0, len(SIDES), n),
        "baseline": rng.uniform(4.0, 9.5, n),
        "gain": rng.uniform(-0.5, 0.8, n),
    }


def _iso_days(ords: np.ndarray) -> np.ndarray:
    return (np.datetime64("0001-01-01", "D") + (ords - 1)).astype("datetime64[D]")


def _write_patients(fh, pop: dict[str, np.ndarray]) -> None:
    fh.write(PATIENT_HEADER)
    clinic = np.char.add("C", np.char.zfill(pop["clinic"].astype(str), 2))
    therapist = np.char.add("T", np.char.zfill(pop["therapist"].astype(str), 3))
    start = _iso_days(pop["start"]).astype(str)
    cols = [
        pop["pid"],
        clinic,
        therapist,
        pop["birth_year"].astype(str),
        pop["sex"],
        start,
        SIDES[pop["side"]],
    ]
    fh.writelines(",".join(row) + "\n" for row in zip(*(c.tolist() for c in cols), strict=True))


def _write_scores(fh, pop: dict[str, np.ndarray], rows: int, seed: int) -> None:
    fh.write(SCORE_HEADER)
    n = pop["pid"].size
    tenths = np.array([f"{v // 10}.{v % 10}" for v in range(101)], dtype=object)
    written = 0
    for b, lo in enumerate(range(0, n, BLOCK_PATIENTS)):
        hi = min(n, lo + BLOCK_PATIENTS)
        take = min(rows - written, (hi - lo) * ROWS_PER_PATIENT)
        lines = _score_block(pop, lo, hi, np.random.default_rng([seed, 1, b]), tenths)[:take]
        fh.write("".join(lines))
        written += take


def _score_block(
    pop: dict[str, np.ndarray], lo: int, hi: int, rng: np.random.Generator, tenths: np.ndarray
) -> list[str]:
    per = ROWS_PER_PATIENT // len(MEASURES)  # time points per patient
    k = hi - lo
    own = np.repeat(np.arange(lo, hi), per)
    step = np.tile(np.arange(per), k)
    spacing = SPAN_DAYS * 86_400 // per  # one reading per slot: keys are unique by construction
    sec = step * spacing + rng.integers(6 * 3600, min(spacing, 22 * 3600), own.size)
    when = _iso_days(pop["start"][own]).astype("datetime64[s]") + sec.astype("timedelta64[s]")
    stamp = np.datetime_as_string(when, unit="s")  # YYYY-MM-DDTHH:MM:SS
    frac = step / per
    level = pop["baseline"][own] * (1 - pop["gain"][own] * frac * 0.6)
    # two rows per time point: pain_leg then numbness
    own2 = np.repeat(own, 2)
    stamp2 = np.repeat(stamp, 2).astype(object)
    measure = np.tile(np.array(MEASURES, dtype=object), own.size)
    value = np.repeat(level, 2) * np.tile([1.0, 0.7], own.size) + rng.normal(0, 0.8, own2.size)
    value_text = tenths[np.clip(np.rint(value * 10), 0, 100).astype(np.int64)]
    pid = pop["pid"].astype(object)[own2]
    side = SIDES.astype(object)[pop["side"][own2]]

    bad = np.flatnonzero(rng.random(own2.size) < INVALID_RATE)
    kind = rng.integers(0, len(DEFECTS), bad.size)
    for i, d in zip(bad.tolist(), kind.tolist(), strict=True):
        defect = DEFECTS[d]
        if defect == "value_out_of_range":
            value_text[i] = "12.5"
        elif defect == "value_missing":
            value_text[i] = ""
        elif defect == "unknown_measure":
            measure[i] = "pain_foot"
        elif defect == "impossible_date":
            stamp2[i] = stamp2[i][:5] + "02-30" + stamp2[i][10:]
        elif defect == "future_date":
            stamp2[i] = (AS_OF + timedelta(days=30 + i % 300)).isoformat() + stamp2[i][10:]
        else:
            pid[i] = "X" + pid[i][1:]
    return [
        f"{p},{t},{m},{v},{s}\n"
        for p, t, m, v, s in zip(
            pid.tolist(), stamp2.tolist(), measure.tolist(), value_text.tolist(), side.tolist(), strict=True
        )
    ]
