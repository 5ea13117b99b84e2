"""De-identification for research exports (HIPAA Safe Harbor by default; see ../shared/domain.md).

- Pseudonyms: HMAC-SHA256 of the warehouse id under a secret key (env OUTCOMES_EXPORT_KEY). The same key gives the
  same pseudonym in every bundle, so bundles link; the key never leaves the warehouse side.
- Dates: days since the episode start plus the start year (default), or a per-patient shift of 1-364 days back
  derived from the keyed hash ("limited data set / expert determination", an explicit option).
- Ages: ten-year bands at the episode start, everything over 89 as "90+".
- Free text: skip reasons are mapped to a fixed list of categories (or dropped); names are never read.
- Small cells: k-anonymity over (age band, sex, clinic, start year), by generalising step by step, then suppressing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

KEY_ENV = "OUTCOMES_EXPORT_KEY"
MIN_KEY_CHARS = 16
#: A public, well-known key for demos and tests only. A bundle made with it says so in its manifest.
INSECURE_DEMO_KEY = b"insecure-demo-key: public, never use for real patients"
MAX_SHIFT_DAYS = 364
WITHHELD = "*"  # a quasi-identifier generalised away to protect a small cell

DATE_MODES = {
    "relative": "HIPAA Safe Harbor: days since the episode start plus the start year",
    "shifted": "limited data set / expert determination: full dates shifted 1-364 days back per patient",
}


class ExportKeyError(RuntimeError):
    """No usable pseudonymisation key: the export refuses to run."""


@dataclass(frozen=True)
class ExportKey:
    """The pseudonymisation secret. Its repr never shows the secret; `fingerprint` identifies it safely."""

    secret: bytes = field(repr=False)
    source: str  # "env", "insecure-demo-key" or "explicit"

    @property
    def fingerprint(self) -> str:
        """A short keyed hash of a constant: tells two bundles made with the same key apart from others."""
        return hmac.new(self.secret, b"sciatica-outcomes key fingerprint", hashlib.sha256).hexdigest()[:12]

    @property
    def is_demo(self) -> bool:
        return self.secret == INSECURE_DEMO_KEY


def key_from_env(environ: Mapping[str, str] | None = None, *, insecure_demo_key: bool = False) -> ExportKey:
    """The key from OUTCOMES_EXPORT_KEY; the public demo key only when explicitly asked for."""
    environ = os.environ if environ is None else environ
    value = environ.get(KEY_ENV, "")
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise ExportKeyError(f"{KEY_ENV} is too short: use at least {MIN_KEY_CHARS} random characters")
        return ExportKey(value.encode("utf-8"), "env")
    if insecure_demo_key:
        return ExportKey(INSECURE_DEMO_KEY, "insecure-demo-key")
    raise ExportKeyError(
        f"no pseudonymisation key: set {KEY_ENV} to a secret of at least {MIN_KEY_CHARS} characters "
        "(kept out of the bundle), or pass --insecure-demo-key for synthetic demo data only"
    )


class Pseudonymizer:
    """Keyed-hash pseudonyms and date offsets. Prefixes tell the kind: p_ patient, c_ clinic, t_ therapist,
    e_ episode (an episode's natural key: patient and start date, so a rebuilt warehouse gives the same one)."""

    LENGTH = 16  # hex characters (64 bits): collisions are negligible at clinic scale
    #: Kinds repeated on many rows (every session names its therapist) are cached; patients and episodes are
    #: hashed once per export each, and caching them would grow with the cohort (~40 MB at 100k patients).
    CACHED = frozenset({"clinic", "therapist"})

    def __init__(self, key: ExportKey):
        self._key = key.secret
        self._cache: dict[tuple[str, str], str] = {}

    def _digest(self, kind: str, value: str) -> str:
        msg = f"{kind}\x1f{value}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def _pseudonym(self, kind: str, prefix: str, value: object) -> str | None:
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            return None
        if kind not in self.CACHED:
            return prefix + self._digest(kind, str(value))[: self.LENGTH]
        k = (kind, str(value))
        out = self._cache.get(k)
        if out is None:
            out = prefix + self._digest(kind, str(value))[: self.LENGTH]
            if len(self._cache) < 100_000:
                self._cache[k] = out
        return out

    def patient(self, patient_id: object) -> str | None:
        return self._pseudonym("patient", "p_", patient_id)

    def clinic(self, clinic_id: object) -> str | None:
        return self._pseudonym("clinic", "c_", clinic_id)

    def therapist(self, therapist_id: object) -> str | None:
        return self._pseudonym("therapist", "t_", therapist_id)

    def episode(self, patient_id: object, start_date: object) -> str | None:
        return self._pseudonym("episode", "e_", f"{patient_id}\x1f{start_date}")

    def shift_days(self, patient_id: object) -> int:
        """Days to move this patient's dates back: 1..364, the same for every row of the patient."""
        return 1 + int(self._digest("date-shift", str(patient_id))[:12], 16) % MAX_SHIFT_DAYS

    def map(self, kind: str, values: Iterable) -> list[str | None]:
        fn = getattr(self, kind)
        return [fn(v) for v in values]


# --- free text ------------------------------------------------------------------------------------------------
SKIP_REASON_CATEGORIES = ("pain", "no_time", "forgot", "felt_better", "illness", "other")
_SKIP_REASON_MAP = {
    "pain": "pain",
    "painful": "pain",
    "too much pain": "pain",
    "hurt": "pain",
    "no time": "no_time",
    "busy": "no_time",
    "too busy": "no_time",
    "forgot": "forgot",
    "forgotten": "forgot",
    "felt better": "felt_better",
    "feeling better": "felt_better",
    "better": "felt_better",
    "illness": "illness",
    "ill": "illness",
    "sick": "illness",
}
SKIP_REASON_MODES = ("categories", "drop")


def skip_reason_category(text: object) -> str | None:
    """A fixed category for a logged skip reason; anything not recognised exactly is "other" (the text is never
    kept). Blank -> None."""
    if text is None or (isinstance(text, float) and text != text) or text is pd.NA:
        return None
    norm = re.sub(r"[^a-z ]+", " ", str(text).lower())
    norm = " ".join(norm.split())
    if not norm:
        return None
    return _SKIP_REASON_MAP.get(norm, "other")


# --- small cells ------------------------------------------------------------------------------------------------
QUASI_IDENTIFIERS = ("age_band", "sex", "clinic_id", "start_year")
WIDE_AGE_BANDS = {
    "0-17": "0-39",
    "18-29": "0-39",
    "30-39": "0-39",
    "40-49": "40-59",
    "50-59": "40-59",
    "60-69": "60-79",
    "70-79": "60-79",
    "80-89": "80+",
    "90+": "80+",
}
#: Generalisation steps, applied only to patients whose group is still smaller than k. Start year is never
#: generalised: a patient whose group stays small after the last step is suppressed (left out of the bundle).
LEVELS = (
    "as recorded (10-year age band, sex, clinic, start year)",
    "age widened to 20-year bands",
    "clinic withheld (and therapist with it)",
    "sex withheld",
    "age band withheld",
)


def _at_level(qi: pd.DataFrame, level: int) -> pd.DataFrame:
    out = qi.copy()
    if level >= 1:
        out["age_band"] = out["age_band"].map(lambda b: WIDE_AGE_BANDS.get(b, b))
    if level >= 2:
        out["clinic_id"] = WITHHELD
    if level >= 3:
        out["sex"] = WITHHELD
    if level >= 4:
        out["age_band"] = WITHHELD
    return out


@dataclass
class KAnonymityReport:
    k: int
    patients_in: int = 0
    released_by_level: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0

    @property
    def generalised(self) -> int:
        return sum(n for lvl, n in self.released_by_level.items() if lvl != LEVELS[0])

    def as_json(self) -> dict:
        return {
            "k": self.k,
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
            "patients_considered": self.patients_in,
            "patients_released_unchanged": self.released_by_level.get(LEVELS[0], 0),
            "patients_generalised": self.generalised,
            "patients_suppressed": self.suppressed,
            "released_by_level": [
                {"level": i, "meaning": label, "patients": self.released_by_level.get(label, 0)}
                for i, label in enumerate(LEVELS)
            ],
        }


def k_anonymise(qi: pd.DataFrame, k: int) -> tuple[pd.DataFrame, KAnonymityReport]:
    """Generalise, then suppress, so every combination of QUASI_IDENTIFIERS occurs at least k times.

    `qi` has one row per patient (any index) with the QUASI_IDENTIFIERS columns. Returns the released rows (same
    index, generalised values, plus `deid_level`) without the suppressed ones, and a report of what was done.
    Groups are formed level by level among the patients still in small groups; a group released at one level
    can never share its values with a group released at another (the generalised values differ), so every
    released combination has at least k patients.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    report = KAnonymityReport(k=k, patients_in=len(qi))
    cols = list(QUASI_IDENTIFIERS)
    remaining = qi[cols].astype(object)
    released: list[pd.DataFrame] = []
    for level, label in enumerate(LEVELS):
        if remaining.empty:
            report.released_by_level[label] = 0
            continue
        cur = _at_level(remaining, level)
        size = cur.groupby(cols, dropna=False)[cols[0]].transform("size")
        ok = size >= k
        part = cur[ok].copy()
        part["deid_level"] = level
        released.append(part)
        report.released_by_level[label] = int(ok.sum())
        remaining = remaining[~ok.to_numpy()]
    report.suppressed = len(remaining)
    out = pd.concat(released) if released else qi[cols].iloc[:0].assign(deid_level=0)
    return out.reindex(qi.index[qi.index.isin(out.index)]), report


def k_anonymise_counts(combos: pd.DataFrame, k: int) -> tuple[pd.DataFrame, KAnonymityReport]:
    """k_anonymise over distinct quasi-identifier combinations with their patient counts (column `n`).

    Patients who share all quasi-identifiers share every group at every level, so they are always released or
    suppressed together: grouping first gives exactly k_anonymise's result while holding one row per combination
    (bounded by the quasi-identifiers' domain: bands x sexes x clinics x years) instead of one per patient. The
    export streams its patients through this. Returns `combos`' index with the released (generalised) values and
    `deid_level` (0-4), or `deid_level` -1 for suppressed combinations, and the report counted in patients.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    cols = list(QUASI_IDENTIFIERS)
    n = combos["n"].astype("int64")
    report = KAnonymityReport(k=k, patients_in=int(n.sum()))
    remaining = combos[cols].astype(object)
    out = remaining.copy()
    out["deid_level"] = -1
    for level, label in enumerate(LEVELS):
        if remaining.empty:
            report.released_by_level[label] = 0
            continue
        cur = _at_level(remaining, level)
        size = n.loc[cur.index].groupby([cur[c] for c in cols], dropna=False).transform("sum")
        ok = (size >= k).to_numpy()
        done = cur.index[ok]
        out.loc[done, cols] = cur.loc[done, cols]
        out.loc[done, "deid_level"] = level
        report.released_by_level[label] = int(n.loc[done].sum())
        remaining = remaining[~ok]
    report.suppressed = int(n.loc[remaining.index].sum())
    out["deid_level"] = out["deid_level"].astype("int64")
    return out, report


def smallest_group(df: pd.DataFrame) -> int:
    """The size of the rarest quasi-identifier combination in a released patients table (0 when empty)."""
    if df.empty:
        return 0
    return int(df.groupby(list(QUASI_IDENTIFIERS), dropna=False).size().min())
