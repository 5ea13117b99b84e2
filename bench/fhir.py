"""`python -m bench.fhir`: load FHIR NDJSON (100,000 Observations by default) - rows/s and peak RSS, streamed.

The input is synthesised in the shape of the Synthea pain observations in ../shared/fhir-samples (LOINC 72514-3,
float values, category vital-signs, encounter reference, meta tag), 100 Observations per Patient, Patients first
as a bulk export writes them; 10 % of the Observations carry an untracked code (body height). Every case loads into
a fresh SQLite warehouse in its own process (`python -m bench.fhir --child`), so its peak RSS (ru_maxrss, which
includes the interpreter and libraries) is its own. Results go to stdout and bench/results/fhir-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "fhir-samples"
AS_OF = "2026-11-20"


def _template() -> dict:
    """One real pain Observation from the samples if they are there, else the same shape written out."""
    for path in sorted(SAMPLES.glob("*_*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")).get("entry", []):
            r = entry.get("resource", {})
            codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
            if r.get("resourceType") == "Observation" and "72514-3" in codes:
                return r
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3", "display": "Pain severity"}]},
        "valueQuantity": {
            "value": 2.31186012545598,
            "unit": "{score}",
            "system": "http://unitsofmeasure.org",
        },
        "meta": {"tag": [{"system": "https://smarthealthit.org/tags", "code": "synthea-5-2019"}]},
    }


def write_input(path: Path, observations: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    tpl = _template()
    patients = max(1, observations // 100)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as fh:
        for p in range(patients):
            fh.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": f"pt-{p:06d}",
                        "gender": rng.choice(["male", "female"]),
                        "birthDate": f"{rng.randint(1940, 2000)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                        "name": [{"use": "official", "family": f"Family{p}", "given": [f"Given{p}"]}],
                    }
                )
                + "\n"
            )
        for i in range(observations):
            p = i % patients
            obs = dict(tpl)
            obs["id"] = f"obs-{i:07d}"
            obs["subject"] = {"reference": f"Patient/pt-{p:06d}"}
            obs["encounter"] = {"reference": f"Encounter/enc-{i // 3:07d}"}
            when = start + timedelta(days=i // patients, minutes=p % 600)
            obs["effectiveDateTime"] = when.isoformat()
            obs["issued"] = when.isoformat()
            if (i // patients) % 10 == 9:  # every patient has tracked and untracked observations
                obs["code"] = {
                    "coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}]
                }
                obs["valueQuantity"] = {"value": round(rng.uniform(150, 200), 1), "unit": "cm"}
            else:
                obs["valueQuantity"] = {**tpl["valueQuantity"], "value": rng.uniform(0, 10)}
            fh.write(json.dumps(obs) + "\n")


def child(path: str, db: str) -> None:
    """Timed part, in its own process: migrate (untimed), then load_file."""
    import resource

    from etl.load import load_file
    from etl.mapping import Mapping
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mapping = Mapping(name="bench", constants={"clinic_id": "C1", "therapist_id": "T1"}, fingerprint="bench")
    t0 = time.perf_counter()
    r = load_file(engine, path, mapping=mapping, as_of=datetime.fromisoformat(AS_OF).date())
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "status": r.status,
                "rows_read": r.rows_read,
                "rows_inserted": r.rows_inserted,
                "rows_rejected": r.rows_rejected,
                "peak_rss_mb": round(peak, 1),
                "rss_before_mb": round(rss_before, 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", type=int, nargs="+", default=[100_000], help="Observations per file (default 100000)"
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--child", nargs=2, metavar=("NDJSON", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
        for n in args.rows:
            src = Path(tmp) / f"obs-{n}.ndjson"
            t0 = time.perf_counter()
            write_input(src, n)
            print(
                f"wrote {n:,} Observations ({src.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            proc = subprocess.run(
                [sys.executable, "-m", "bench.fhir", "--child", str(src), str(Path(tmp) / f"w-{n}.sqlite")],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            out.update(observations=n, file_mb=round(src.stat().st_size / 1e6, 1))
            out["observations_per_s"] = round(n / out["seconds"])
            results.append(out)
    print(
        f"{'observations':>12} {'file MB':>8} {'seconds':>8} {'obs/s':>8} {'peak RSS MB':>12} {'loaded':>8} {'rejected':>8}"
    )
    for r in results:
        print(
            f"{r['observations']:>12,} {r['file_mb']:>8} {r['seconds']:>8.1f} {r['observations_per_s']:>8,} "
            f"{r['peak_rss_mb']:>12} {r['rows_inserted']:>8,} {r['rows_rejected']:>8,}"
        )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (out_dir / f"fhir-{stamp}.json").write_text(json.dumps({"cases": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
