"""FHIR R4 input: Bundles (transaction, collection, searchset: JSON) and bulk-data NDJSON -> canonical chunks.

A FHIR file carries several kinds at once. It is read in passes, each one streaming for NDJSON (a Bundle is one
JSON document and is parsed whole):

1. index: which Patients there are, `fullUrl` -> resource (for `urn:uuid:` references), the earliest tracked
   Observation of each patient (the episode start when the mapping gives none), untracked codes counted per code;
2. patients, 3. scores (Observations), 4. sessions (Procedures / Encounters whose code the mapping names).

Every pass yields ordinary string chunks (`etl.read.Chunk`), validated and merged by the same code as CSV rows.
`Chunk.lines` is the NDJSON line number or the Bundle entry number (1-based); a rejected resource is stored as its
JSON text (truncated). Malformed resources (invalid JSON, fhir.resources validation errors, a subject that does not
resolve) are rejected by the reader with the reason. Matching is on system|code, never on display text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from etl.kinds import PATIENTS, SCORES, SESSIONS, Kind
from etl.mapping import Mapping

LOINC = "http://loinc.org"
#: Built-in codes (../shared/domain.md, Interoperability); a mapping's [codes] add to and override these.
DEFAULT_CODES: dict[str, str] = {
    f"{LOINC}|72514-3": "pain_leg",  # pain severity 0-10 verbal numeric rating (what Synthea writes)
    f"{LOINC}|38208-5": "pain_leg",  # pain severity, reported
    f"{LOINC}|38214-3": "vas_pain",  # pain severity, visual analog score
    f"{LOINC}|97909-6": "odi",  # Oswestry Disability Index score (also as a component of panel 97908-8)
    f"{LOINC}|77865-4": "promis_pi",  # PROMIS Pain Interference T-score
    f"{LOINC}|77866-2": "promis_pf",  # PROMIS Physical Function T-score
}
#: Observation statuses whose value is not a measurement: skipped and counted, not rejected.
SKIP_STATUSES = {"entered-in-error", "cancelled"}
PROCEDURE_STATUS = {
    "completed": "completed",
    "not-done": "skipped",
    "stopped": "partial",
    "in-progress": "partial",
}
ENCOUNTER_STATUS = {"finished": "completed", "cancelled": "skipped", "in-progress": "partial"}
RAW_MAX_CHARS = 4000
FHIR_CHUNK_ROWS = 10_000
RESOURCE_TYPES = ("Patient", "Observation", "Procedure", "Encounter")


def _models() -> dict[str, Any]:
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError(
            "FHIR input needs the package fhir.resources (pip install 'fhir.resources>=8.3')"
        ) from exc
    return {t: get_fhir_model_class(t) for t in RESOURCE_TYPES}


def _validation_reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            parts.append(f"{loc or 'resource'}: {err.get('msg', '')}".strip())
        return "invalid FHIR R4 resource (" + "; ".join(parts) + ")"
    return f"invalid FHIR R4 resource ({' '.join(str(exc).split())[:300]})"


@dataclass
class Entry:
    line: int
    resource: dict[str, Any] | None
    text: str | None = None  # the resource as it came (NDJSON line); None: dump `resource`
    error: str | None = None
    full_url: str | None = None

    def raw(self) -> str:
        text = self.text if self.text is not None else json.dumps(self.resource, ensure_ascii=False)
        text = text.strip()
        return text if len(text) <= RAW_MAX_CHARS else text[: RAW_MAX_CHARS - 15] + " ...(truncated)"


def is_fhir_head(head: bytes) -> bool:
    """True when a file's first bytes look like FHIR JSON (a Bundle or NDJSON resources)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"resourceType"' in head


class FhirFileError(ValueError):
    """Not FHIR JSON at all (the loader turns this into a file-level error)."""


def _iter_entries(path: Path, want: tuple[str, ...] | None = None) -> Iterator[Entry]:
    """The file's resources in order. `want`: NDJSON lines that cannot be of these types are not even parsed."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first != b"{":
        raise FhirFileError("not FHIR JSON (expected a Bundle or one resource per line)")
    ndjson = path.suffix.lower() in (".ndjson", ".jsonl")
    if not ndjson:
        # A Bundle is one document; NDJSON under a .json name is recognised by a first line that is a whole object.
        first_line = head.split(b"\n", 1)[0].strip().lstrip(b"\xef\xbb\xbf")
        if first_line.endswith(b"}") and b"\n" in head.strip():
            try:
                obj = json.loads(first_line)
                ndjson = isinstance(obj, dict) and obj.get("resourceType") != "Bundle"
            except ValueError:
                ndjson = False
    if ndjson:
        yield from _iter_ndjson(path, want)
        return
    try:
        with path.open("r", encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirFileError(f"not valid JSON ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(doc, dict) or "resourceType" not in doc:
        raise FhirFileError("JSON without a resourceType: not a FHIR Bundle or resource")
    if doc["resourceType"] != "Bundle":
        yield Entry(1, doc)  # a single resource
        return
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise FhirFileError("Bundle.entry is not a list")
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            yield Entry(
                n, None, text=json.dumps(entry)[:RAW_MAX_CHARS], error="Bundle entry without a resource"
            )
            continue
        yield Entry(n, entry["resource"], full_url=entry.get("fullUrl"))


def _iter_ndjson(path: Path, want: tuple[str, ...] | None = None) -> Iterator[Entry]:
    needles = tuple(f'"{t}"' for t in want) if want else ()
    with path.open("r", encoding="utf-8-sig", newline=None) as fh:
        for n, line in enumerate(fh, start=1):
            if needles and not any(x in line for x in needles):
                continue  # cheap pre-filter; the resourceType is checked after parsing
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield Entry(n, None, text=line, error=f"not valid JSON ({' '.join(str(exc).split())[:120]})")
                continue
            if not isinstance(obj, dict) or "resourceType" not in obj:
                yield Entry(n, None, text=line, error="not a FHIR resource (no resourceType)")
                continue
            yield Entry(n, obj, text=line)


def _codings(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [
        f"{c.get('system', '')}|{c.get('code', '')}"
        for c in concept.get("coding") or []
        if isinstance(c, dict) and c.get("code")
    ]


def _number_text(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _value(holder: dict[str, Any]) -> tuple[str | None, str | None]:
    """(value text, unit) of an Observation or component; (None, why) when it has no numeric value."""
    if "valueQuantity" in holder:
        q = holder["valueQuantity"] or {}
        return _number_text(q.get("value")), q.get("code") or q.get("unit")
    if "valueInteger" in holder:
        return _number_text(holder["valueInteger"]), None
    if "valueDecimal" in holder:  # not R4, but written by some exporters
        return _number_text(holder["valueDecimal"]), None
    if "valueString" in holder:  # "7/10" and friends: validation parses them
        return str(holder["valueString"]), None
    if "dataAbsentReason" in holder:
        return None, "no value (dataAbsentReason " + "/".join(_codings(holder["dataAbsentReason"])) + ")"
    present = [k for k in holder if k.startswith("value")]
    return None, f"no numeric value ({present[0]})" if present else "no value"


def _when(resource: dict[str, Any], *keys: str) -> str:
    for key in keys:
        v = resource.get(key)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, dict) and v.get("start"):
            return str(v["start"])
    return ""


def _minutes(period: Any) -> str:
    if not isinstance(period, dict) or not period.get("start") or not period.get("end"):
        return ""
    try:
        start = pd.Timestamp(period["start"])
        end = pd.Timestamp(period["end"])
        minutes = (end - start).total_seconds() / 60
    except (ValueError, TypeError):
        return ""
    return f"{minutes:g}" if 0 <= minutes <= 600 else ""


@dataclass
class _Index:
    #: Patient resource id / fullUrl -> our patient_id.
    patient_refs: dict[str, str] = field(default_factory=dict)
    patient_ids: set[str] = field(default_factory=set)
    #: other resources by fullUrl or Type/id: (type, id, display name) for clinics and therapists
    others: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    first_observation: dict[str, str] = field(default_factory=dict)  # subject reference -> earliest date
    untracked: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    unmapped_sessions: Counter = field(default_factory=Counter)
    resource_types: Counter = field(default_factory=Counter)
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)


def _name(resource: dict[str, Any]) -> str:
    name = resource.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, list) and name and isinstance(name[0], dict):
        n = name[0]
        if n.get("text"):
            return str(n["text"])
        return " ".join([*(n.get("given") or []), n.get("family") or ""]).strip()
    return ""


class FhirSource:
    """One FHIR file as a multi-kind source: segments of (kind, chunks) in load order."""

    format = "fhir"
    batch_kind = "fhir"
    kinds: tuple[Kind, ...] = (PATIENTS, SCORES, SESSIONS)

    def __init__(self, path: Path, mapping: Mapping) -> None:
        self.path = path
        self.mapping = mapping
        self.codes = {**DEFAULT_CODES, **mapping.codes}
        self.index = self._build_index()
        self._models: dict[str, Any] | None = None

    # --- pass 1 -------------------------------------------------------------------------------------------------
    def _build_index(self) -> _Index:
        idx = _Index()
        for e in _iter_entries(self.path):
            r = e.resource
            if r is None:
                idx.unreadable.append((e.line, e.error or "unreadable", e.raw()))
                continue
            rtype = r.get("resourceType")
            idx.resource_types[rtype] += 1
            rid = str(r.get("id") or "")
            if rtype == "Patient":
                pid = self._patient_id(r)
                if pid:
                    idx.patient_ids.add(pid)
                    for ref in (e.full_url, f"Patient/{rid}" if rid else None):
                        if ref:
                            idx.patient_refs[ref] = pid
            elif rtype in ("Organization", "Practitioner", "PractitionerRole"):
                for ref in (e.full_url, f"{rtype}/{rid}" if rid else None):
                    if ref and rid:
                        idx.others[ref] = (rtype, rid, _name(r))
            elif rtype == "Observation":
                if r.get("status") in SKIP_STATUSES:
                    idx.skipped[f"Observation status {r.get('status')}"] += 1
                    continue
                top = _codings(r.get("code"))
                comps = [
                    c
                    for comp in r.get("component") or []
                    if isinstance(comp, dict)
                    for c in _codings(comp.get("code"))
                ]
                if any(c in self.codes for c in top + comps):
                    ref = (
                        (r.get("subject") or {}).get("reference")
                        if isinstance(r.get("subject"), dict)
                        else None
                    )
                    when = _when(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant")[:10]
                    if ref and len(when) == 10:
                        prev = idx.first_observation.get(ref)
                        if prev is None or when < prev:
                            idx.first_observation[ref] = when
                else:
                    idx.untracked[top[0] if top else "(no code)"] += 1
            elif rtype in ("Procedure", "Encounter"):
                codes = (
                    _codings(r.get("code"))
                    if rtype == "Procedure"
                    else [c for t in r.get("type") or [] for c in _codings(t)]
                )
                if not any(c in self.mapping.session_codes for c in codes):
                    idx.unmapped_sessions[rtype] += 1
        return idx

    def _patient_id(self, r: dict[str, Any]) -> str:
        system = self.mapping.patient_identifier_system
        if system:
            for ident in r.get("identifier") or []:
                if isinstance(ident, dict) and ident.get("system") == system and ident.get("value"):
                    return str(ident["value"])
            return ""
        return str(r.get("id") or "")

    def resolve_patient(self, ref: Any) -> str | None:
        """Our patient_id for a subject reference: a urn:uuid inside the file, Patient/<id>, or a full URL."""
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        text = ref["reference"]
        if text in self.index.patient_refs:
            return self.index.patient_refs[text]
        if text.startswith(("urn:uuid:", "urn:oid:", "#")):
            return None  # such a reference can only point inside this file
        parts = text.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Patient":
            local = f"Patient/{parts[-1]}"
            if local in self.index.patient_refs:
                return self.index.patient_refs[local]
            # a patient loaded earlier (bulk export: Patient.ndjson); validation rejects it when unknown
            return parts[-1] if not self.mapping.patient_identifier_system else None
        return None

    def message(self) -> str | None:
        parts = []
        if self.index.untracked:
            total = sum(self.index.untracked.values())
            codes = ", ".join(f"{code} x{n}" for code, n in self.index.untracked.most_common())
            parts.append(f"{total} observations with untracked codes not loaded ({codes})")
        if self.index.skipped:
            parts.append(", ".join(f"{what} x{n} skipped" for what, n in self.index.skipped.items()))
        if self.index.unmapped_sessions:
            what = ", ".join(f"{t} x{n}" for t, n in sorted(self.index.unmapped_sessions.items()))
            parts.append(f"not mapped to sessions: {what} (name their codes in the mapping's [sessions])")
        return "; ".join(parts) or None

    @property
    def untracked(self) -> Counter:
        return self.index.untracked

    # --- passes 2-4 ---------------------------------------------------------------------------------------------
    def segments(self, chunk_rows: int) -> Iterator[tuple[Kind, Iterator]]:
        # a resource row carries its JSON text for the rejects: smaller chunks keep the peak memory low
        chunk_rows = min(chunk_rows, FHIR_CHUNK_ROWS)
        yield PATIENTS, self._chunks("Patient", self._patient_row, chunk_rows)
        yield SCORES, self._chunks("Observation", self._score_rows, chunk_rows)
        if self.mapping.session_codes:
            yield SESSIONS, self._chunks(("Procedure", "Encounter"), self._session_rows, chunk_rows)

    def _validate(self, r: dict[str, Any]) -> str | None:
        if self._models is None:
            self._models = _models()
        model = self._models.get(r.get("resourceType"))
        if model is None:
            return None
        try:
            model.model_validate(r)
        except Exception as exc:  # pydantic.ValidationError and friends: the resource is malformed
            return _validation_reason(exc)
        return None

    def _chunks(self, types, make_rows, chunk_rows: int) -> Iterator:
        from etl.read import Chunk

        types = (types,) if isinstance(types, str) else types
        rows: list[dict[str, str]] = []
        lines: list[int] = []
        raws: dict[int, str] = {}
        rejects: list[tuple[int, str, str]] = []

        def flush():
            frame = pd.DataFrame(rows, dtype=object).fillna("") if rows else pd.DataFrame()
            chunk = Chunk(
                frame=frame.astype(str) if rows else frame,
                lines=pd.Series(lines, index=frame.index, dtype="int64"),
                source_header=["resource"],
                raw=pd.Series(raws, dtype=object),
                rejects=pd.DataFrame(rejects, columns=["line", "reasons", "raw"]),
            )
            return chunk

        if types[0] == "Patient":  # unreadable lines are reported once, with the first kind
            rejects.extend(self.index.unreadable)
        for e in _iter_entries(self.path, types):
            if e.resource is None:
                continue
            if e.resource.get("resourceType") in types:
                made = make_rows(e)
                if made is None:
                    continue  # not for this kind (untracked code, unmapped procedure): counted in the index
                if isinstance(made, str):
                    rejects.append((e.line, made, e.raw()))
                else:
                    for row in made:
                        rows.append(row)
                        lines.append(e.line)
                    raws[e.line] = e.raw()
            if len(lines) + len(rejects) >= chunk_rows:
                yield flush()
                rows, lines, raws, rejects = [], [], {}, []
        if lines or rejects:
            yield flush()

    def _patient_row(self, e: Entry):
        r = e.resource
        bad = self._validate(r)
        if bad:
            return bad
        pid = self._patient_id(r)
        if not pid:
            system = self.mapping.patient_identifier_system
            return (
                f"patient_id: no identifier with system {system!r}"
                if system
                else "patient_id: Patient has no id"
            )
        consts = self.mapping.constants
        row = {"patient_id": pid}
        clinic = self._other(r.get("managingOrganization"), "Organization")
        therapist = self._other((r.get("generalPractitioner") or [None])[0], "Practitioner")
        row["clinic_id"] = clinic[0] if clinic else consts.get("clinic_id", "")
        row["clinic_name"] = clinic[1] if clinic else consts.get("clinic_name", "")
        row["therapist_id"] = therapist[0] if therapist else consts.get("therapist_id", "")
        row["therapist_name"] = therapist[1] if therapist else consts.get("therapist_name", "")
        missing = [
            f"{col}: the Patient names no {what} and the mapping has no [constants] {col}"
            for col, what in (("clinic_id", "managingOrganization"), ("therapist_id", "generalPractitioner"))
            if not row[col]
        ]
        start = consts.get("episode_start") or self._first_observation(e, r)
        if not start:
            missing.append(
                "episode_start: no [constants] episode_start in the mapping and no tracked Observation "
                "of this patient in the file"
            )
        if missing:
            return "; ".join(missing)
        birth = str(r.get("birthDate") or "")
        row["birth_year"] = birth[:4]
        row["sex"] = consts.get("sex", "") if not r.get("gender") else str(r["gender"])
        row["episode_start"] = start
        for col in ("episode_end", "symptom_onset", "side"):
            if col in consts:
                row[col] = consts[col]
        names = [n for n in r.get("name") or [] if isinstance(n, dict)]
        official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
        row["first_name"] = " ".join(official.get("given") or [])
        row["last_name"] = str(official.get("family") or "")
        return [row]

    def _first_observation(self, e: Entry, r: dict[str, Any]) -> str:
        refs = [e.full_url, f"Patient/{r.get('id')}"]
        dates = [self.index.first_observation[x] for x in refs if x in self.index.first_observation]
        # references by full URL (http://server/Patient/id) end in the same Type/id
        if not dates and r.get("id"):
            tail = f"/Patient/{r['id']}"
            dates = [d for ref, d in self.index.first_observation.items() if ref.endswith(tail)]
        return min(dates) if dates else ""

    def _other(self, ref: Any, rtype: str) -> tuple[str, str] | None:
        if not isinstance(ref, dict):
            return None
        text = ref.get("reference")
        if isinstance(text, str):
            hit = self.index.others.get(text)
            if hit is None and "/" in text:
                hit = self.index.others.get("/".join(text.rstrip("/").split("/")[-2:]))
            if hit is not None:
                return hit[1], hit[2] or str(ref.get("display") or "")
            if text.startswith(f"{rtype}/"):
                return text.split("/", 1)[1], str(ref.get("display") or "")
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return str(ident["value"]), str(ref.get("display") or "")
        return None

    def _score_rows(self, e: Entry):
        r = e.resource
        if r.get("status") in SKIP_STATUSES:
            return None
        top = [c for c in _codings(r.get("code")) if c in self.codes]
        holders: list[tuple[str, dict[str, Any]]] = []
        if top:
            holders.append((self.codes[top[0]], r))
        for comp in r.get("component") or []:
            hit = [
                c for c in _codings(comp.get("code") if isinstance(comp, dict) else None) if c in self.codes
            ]
            if hit:
                holders.append((self.codes[hit[0]], comp))
        if not holders:
            return None
        bad = self._validate(r)
        if bad:
            return bad
        pid = self.resolve_patient(r.get("subject"))
        if pid is None:
            ref = (r.get("subject") or {}).get("reference") if isinstance(r.get("subject"), dict) else None
            return f"subject: reference {ref!r} does not resolve to a Patient" if ref else "subject: missing"
        when = _when(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant")
        if not when:
            return "effective[x]: missing (no effectiveDateTime, effectivePeriod.start or effectiveInstant)"
        out = []
        reasons = []
        for measure, holder in holders:
            value, why = _value(holder)
            if value is None:
                if holder is r and len(holders) > 1:
                    continue  # a panel: the components carry the values
                reasons.append(f"{measure}: {why}")
                continue
            out.append(
                {"patient_id": pid, "recorded_at": when, "measure": measure, "value": value, "side": ""}
            )
        if reasons and not out:
            return "; ".join(reasons)
        return out

    def _session_rows(self, e: Entry):
        r = e.resource
        rtype = r["resourceType"]
        concepts = [r.get("code")] if rtype == "Procedure" else list(r.get("type") or [])
        hit = next(
            (
                (c, concept)
                for concept in concepts
                for c in _codings(concept)
                if c in self.mapping.session_codes
            ),
            None,
        )
        if hit is None or r.get("status") == "entered-in-error":
            return None
        bad = self._validate(r)
        if bad:
            return bad
        code, concept = hit
        pid = self.resolve_patient(r.get("subject"))
        if pid is None:
            ref = (r.get("subject") or {}).get("reference") if isinstance(r.get("subject"), dict) else None
            return f"subject: reference {ref!r} does not resolve to a Patient" if ref else "subject: missing"
        if rtype == "Procedure":
            when = _when(r, "performedDateTime", "performedPeriod")
            status = PROCEDURE_STATUS.get(r.get("status"), str(r.get("status") or ""))
            period = r.get("performedPeriod")
            setting = self.mapping.constants.get("setting", "clinic")
        else:
            when = _when(r, "period")
            status = ENCOUNTER_STATUS.get(r.get("status"), str(r.get("status") or ""))
            period = r.get("period")
            klass = r.get("class") or {}
            setting = "home" if klass.get("code") == "HH" else self.mapping.constants.get("setting", "clinic")
        display = next(
            (
                c.get("display")
                for c in concept.get("coding") or []
                if f"{c.get('system', '')}|{c.get('code', '')}" == code
            ),
            None,
        )
        exercise = str(concept.get("text") or display or code.split("|", 1)[1])[:200]
        return [
            {
                "patient_id": pid,
                "session_date": when[:10],
                "setting": setting,
                "exercise": exercise,
                "exercise_type": self.mapping.session_codes[code],
                "status": status,
                "duration_min": _minutes(period),
            }
        ]
