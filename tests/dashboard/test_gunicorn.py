"""Production-style serving smoke test: gunicorn with two workers serves the pages from one warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from etl.generate import generate
from etl.load import load_files
from tests.etl.helpers import AS_OF
from warehouse.db import make_engine
from warehouse.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def test_gunicorn_two_workers_serve_the_dashboard(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed in this environment")
    url = f"sqlite:///{tmp_path}/w.sqlite"
    engine = make_engine(url)
    upgrade(engine)
    load_files(
        engine, list(generate(tmp_path / "gen", 20, seed=1, as_of=AS_OF, dirty=False).values()), as_of=AS_OF
    )
    from dashboard.auth.users import add_user

    add_user(engine, "manager", "a long enough password", "manager", clinic_ids=["C01", "C02", "C03"])
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "OUTCOMES_DB_URL": url, "OUTCOMES_SECRET_KEY": "s" * 40}
    proc = subprocess.Popen(
        [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "dashboard.wsgi:server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(
                        f"gunicorn did not start: {proc.stdout.read() if proc.poll() is not None else ''}"
                    )
                time.sleep(0.3)
        assert (
            status == 200 and "Sign in" in body
        )  # login first: the session cookie is shared by both workers
        from dashboard.auth.client import SignedInOpener

        client = SignedInOpener(f"http://127.0.0.1:{port}", "manager", "a long enough password")
        assert "_dash-config" in client.get("/")[1]
        for _ in range(4):  # several requests, so both workers answer
            assert client.get("/_dash-layout")[0] == 200
            assert client.get("/patients/P000001")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
