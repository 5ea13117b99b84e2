"""The dashboard over HTTP: a server subprocess, and the patient page's callback requests posted as the browser does.

The request bodies are built from the app's own callback map (`GET /_dash-dependencies`), in the browser's format
(`output`, `outputs`, `inputs`, `changedPropIds`, `parsedChangedPropsIds`, `state`), with the `endId` token the
index page hands out; the browser step captures the bodies Chromium really sends and compares them with these.

A page load is what the renderer does after `/_dash-layout`: the shell's viewer callback and the pages router
(which renders the patient layout) in parallel, then the overview callback, then the trends and sessions callbacks
in parallel with the date range the overview returned.

The server runs as in production (`dashboard.wsgi:create_server()`, login on): the benchmark makes a manager user
`bench-manager` for every clinic (so any random patient is in scope) with a fresh password each run, signs in
through `/login` (`dashboard.auth.client.SignedInOpener`) and sends the session cookie, the `X-CSRFToken` header,
`Origin` and `Sec-Fetch-Site: same-origin` as Chromium does. So every callback pays what it pays in production:
the user re-read, the CSRF and role checks, and for the overview the `patient_view` audit row.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}
VIEWER_OUTPUT = "viewer-scope.children"
ROUTER_OUTPUT = ".._pages_content.children..._pages_store.data.."
# the patient page's callbacks, found in the callback map by an output they own
OVERVIEW_HAS = "patient-header.children"
TRENDS_OUTPUT = "patient-trends.children"
SESSIONS_HAS = "adherence-weekly.figure"


BENCH_USER = "bench-manager"


def ensure_user(engine) -> tuple[str, str]:
    """A manager of every clinic, with a new password: (user name, password)."""
    from sqlalchemy import select

    from dashboard.auth import users as store
    from warehouse.schema import clinics

    with engine.connect() as conn:
        clinic_ids = [r[0] for r in conn.execute(select(clinics.c.clinic_id).order_by(clinics.c.clinic_id))]
    password = secrets.token_urlsafe(24)
    if store.get_user(engine, username=BENCH_USER) is None:
        store.add_user(engine, BENCH_USER, password, "manager", clinic_ids=clinic_ids, actor="bench")
    else:
        store.set_role(engine, BENCH_USER, "manager", clinic_ids=clinic_ids, actor="bench")
        store.set_password(engine, BENCH_USER, password, actor="bench")
        store.set_active(engine, BENCH_USER, True, actor="bench")
    return BENCH_USER, password


class SignIn:
    """A signed-in session: the headers a callback request carries, and GETs with the session."""

    def __init__(self, base: str, username: str, password: str):
        from dashboard.auth.client import SignedInOpener

        self.base = base
        self.opener = SignedInOpener(base, username, password, timeout=60)

    def headers(self) -> dict[str, str]:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.opener.jar)
        return {
            **HEADERS,
            "Cookie": cookies,
            "X-CSRFToken": self.opener.csrf(),
            "Origin": self.base,
            "Sec-Fetch-Site": "same-origin",
        }

    def get(self, path: str) -> str:
        status, text = self.opener.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- server ---------------------------------------------------------------------------------------------------------
class Server:
    """`create_app(engine)` served on 127.0.0.1:<free port> in a subprocess (gunicorn, or werkzeug via
    `python -m dashboard`), stopped by its own pid."""

    def __init__(self, db_url: str, kind: str = "gunicorn", workers: int = 2, log_path: Path | None = None):
        self.db_url, self.kind, self.workers = db_url, kind, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            exe = Path(sys.executable).with_name("gunicorn")
            return [
                str(exe),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "300",
                "dashboard.wsgi:create_server()",
            ]
        return [sys.executable, "-m", "dashboard", "--db", self.db_url, "--port", str(self.port)]

    def start(self, timeout: float = 120) -> None:
        env = {
            **os.environ,
            "OUTCOMES_SECRET_KEY": os.environ.get("OUTCOMES_SECRET_KEY") or secrets.token_urlsafe(48),
            "OUTCOMES_DB_URL": self.db_url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        log = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the dashboard server exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.base + "/login", timeout=5) as r:  # public
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the dashboard server did not answer within {timeout:g} s")

    def pids(self) -> list[int]:
        """The server's processes: the one started, and its children (gunicorn's workers)."""
        if self.proc is None:
            return []
        out = [self.proc.pid]
        try:
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server's processes so far (/proc/<pid>/stat): the server's own work,
        which a busy machine slows down less than the wall-clock latency it causes."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / ticks

    def memory(self) -> dict[str, Any]:
        """RSS and peak RSS (VmHWM) of each server process, MB."""
        procs = []
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            f = {k: int(v) / 1024 for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE)}
            role = "master" if pid == self.proc.pid and self.kind == "gunicorn" else "worker"
            procs.append(
                {
                    "pid": pid,
                    "role": role,
                    "rss_mb": round(f.get("VmRSS", 0), 1),
                    "hwm_mb": round(f.get("VmHWM", 0)),
                }
            )
        workers = [p for p in procs if p["role"] == "worker"]
        return {
            "processes": procs,
            "max_worker_rss_mb": max((p["rss_mb"] for p in workers), default=None),
            "max_worker_hwm_mb": max((p["hwm_mb"] for p in workers), default=None),
            "total_rss_mb": round(sum(p["rss_mb"] for p in procs), 1),
        }

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the browser's requests ------------------------------------------------------------------------------------------
def _outputs(output: str) -> Any:
    def one(spec: str) -> dict[str, str]:
        cid, prop = spec.rsplit(".", 1)
        return {"id": cid, "property": prop}

    if output.startswith(".."):
        return [one(s) for s in output[2:-2].split("...")]
    return one(output)


class CallbackMap:
    """The app's callbacks as the renderer gets them, and request bodies built from them."""

    def __init__(self, deps: list[dict[str, Any]]):
        self.deps = deps

    @classmethod
    def fetch(cls, signin: SignIn) -> CallbackMap:
        return cls(json.loads(signin.get("/_dash-dependencies")))

    def find(self, has: str) -> dict[str, Any]:
        found = [
            d
            for d in self.deps
            if d["output"] == has or f"..{has}.." in d["output"] or f"...{has}" in d["output"]
        ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} callbacks output {has!r}")
        return found[0]

    @staticmethod
    def body(
        cb: dict[str, Any], inputs: list[Any], state: list[Any] | None = None, *, changed: bool = True
    ) -> dict[str, Any]:
        """The JSON the renderer posts for `cb`: `changed` when its inputs were set by another component (a
        location, a callback's output); the initial call of a component that just arrived with a layout names none."""
        ins = [
            {"id": i["id"], "property": i["property"], "value": v}
            for i, v in zip(cb["inputs"], inputs, strict=True)
        ]
        changed_ids = [f"{i['id']}.{i['property']}" for i in cb["inputs"]] if changed else []
        body: dict[str, Any] = {
            "output": cb["output"],
            "outputs": _outputs(cb["output"]),
            "inputs": ins,
            "changedPropIds": changed_ids,
            "parsedChangedPropsIds": changed_ids,
        }
        if cb.get("state"):
            body["state"] = [
                {"id": s["id"], "property": s["property"], "value": v}
                for s, v in zip(cb["state"], state or [], strict=True)
            ]
        return body


def end_id(signin: SignIn, path: str) -> str | None:
    """The signed `endId` token of the page's `_dash-config` (the renderer echoes it on every callback)."""
    html = signin.get(path)
    m = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', html, re.DOTALL)
    if not m:
        return None
    return json.loads(m.group(1)).get("end_id")


class PatientPageClient:
    """Posts one page load's callbacks with two connections (the browser runs two of them at a time here)."""

    def __init__(self, signin: SignIn, token: str | None):
        self.host, self.port = signin.base.removeprefix("http://").split(":")
        self.path = "/_dash-update-component" + (f"?endId={token}" if token else "")
        self.headers = signin.headers()
        self.cmap = CallbackMap.fetch(signin)
        self.viewer = self.cmap.find(VIEWER_OUTPUT)
        self.router = self.cmap.find(ROUTER_OUTPUT)
        self.overview = self.cmap.find(OVERVIEW_HAS)
        self.trends = self.cmap.find(TRENDS_OUTPUT)
        self.sessions = self.cmap.find(SESSIONS_HAS)
        self._local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=2)

    def close(self) -> None:
        self.pool.shutdown()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=120)
        return conn

    def post(self, body: dict[str, Any]) -> tuple[float, dict[str, Any], int]:
        """(ms, response JSON, response bytes) of one callback request."""
        data = json.dumps(body).encode()
        conn = self._conn()
        t0 = time.perf_counter_ns()
        try:
            conn.request("POST", self.path, body=data, headers=self.headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()  # a connection the server closed: once more on a fresh one
            conn.request("POST", self.path, body=data, headers=self.headers)
            resp = conn.getresponse()
            raw = resp.read()
        ms = (time.perf_counter_ns() - t0) / 1e6
        if resp.status != 200:
            raise RuntimeError(f"{body['output'][:60]}: HTTP {resp.status}: {raw[:300]!r}")
        enc = resp.getheader("Content-Encoding", "")
        size = len(raw)
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        return ms, json.loads(raw), size

    def bodies(
        self, pid: str, dates: tuple[str | None, str | None] | None = None, store: Any = None
    ) -> dict[str, dict[str, Any]]:
        path = f"/patients/{pid}"
        out = {
            "viewer": CallbackMap.body(self.viewer, [path]),
            "router": CallbackMap.body(self.router, [path, ""]),
            # the overview's input is a store in the layout the router returned: an initial call, nothing changed
            "overview": CallbackMap.body(self.overview, [pid], changed=False),
        }
        if dates is not None:
            # trends also reads the overview's store (its baselines), as the renderer sends it
            out["trends"] = CallbackMap.body(
                self.trends, list(dates), [pid, store][: len(self.trends["state"])]
            )
            out["sessions"] = CallbackMap.body(self.sessions, list(dates), [pid])
        return out

    def page_load(self, pid: str) -> dict[str, Any]:
        """One page load's callbacks, in the renderer's order; ms of each and of the whole chain."""
        b = self.bodies(pid)
        t0 = time.perf_counter_ns()
        f_viewer = self.pool.submit(self.post, b["viewer"])
        f_router = self.pool.submit(self.post, b["router"])
        (v_ms, _, v_size), (r_ms, _, r_size) = f_viewer.result(), f_router.result()
        o_ms, ov, o_size = self.post(b["overview"])
        resp = ov["response"]
        if resp.get("patient-body", {}).get("hidden", True):
            raise RuntimeError(f"patient {pid}: the page says not found")
        dates = (resp["patient-dates"]["start_date"], resp["patient-dates"]["end_date"])
        b = self.bodies(pid, dates, resp.get("patient-default-dates", {}).get("data"))
        f_trends = self.pool.submit(self.post, b["trends"])
        f_sessions = self.pool.submit(self.post, b["sessions"])
        (t_ms, tr, t_size), (s_ms, _, s_size) = f_trends.result(), f_sessions.result()
        total = (time.perf_counter_ns() - t0) / 1e6
        graphs = len(tr["response"]["patient-trends"]["children"] or [])
        return {
            "ms": {
                "viewer": v_ms,
                "router": r_ms,
                "overview": o_ms,
                "trends": t_ms,
                "sessions": s_ms,
                "data callbacks (overview, then trends || sessions)": o_ms + max(t_ms, s_ms),
                "page load, all callbacks": total,
            },
            "bytes": {
                "viewer": v_size,
                "router": r_size,
                "overview": o_size,
                "trends": t_size,
                "sessions": s_size,
            },
            "trend_graphs": graphs,
            "dates": dates,
        }


def run(
    signin: SignIn, pids: list[str], warmup: list[str], say, server: Server | None = None
) -> dict[str, Any]:
    from bench.dashboard_queries import stats

    token = end_id(signin, f"/patients/{pids[0]}")
    client = PatientPageClient(signin, token)
    try:
        for pid in warmup:
            client.page_load(pid)
        ms: dict[str, list[float]] = {}
        sizes: dict[str, list[int]] = {}
        cpu0 = server.cpu_seconds() if server else None
        t0 = time.perf_counter()
        for i, pid in enumerate(pids, 1):
            r = client.page_load(pid)
            for k, v in r["ms"].items():
                ms.setdefault(k, []).append(v)
            for k, v in r["bytes"].items():
                sizes.setdefault(k, []).append(v)
            if i % 50 == 0:
                say(f"HTTP: {i}/{len(pids)} page loads ({time.perf_counter() - t0:.1f} s)")
        cpu = server.cpu_seconds() - cpu0 if server and cpu0 is not None else None
    finally:
        client.close()
    return {
        "server_cpu_ms_per_page_load": round(cpu * 1000 / len(pids), 1) if cpu is not None else None,
        "patients": len(pids),
        "warmup_patients": len(warmup),
        "end_id_token": token is not None,
        "per_callback": {k: stats(v) for k, v in ms.items()},
        "response_kb_median": {k: round(sorted(v)[len(v) // 2] / 1024, 1) for k, v in sizes.items()},
    }
