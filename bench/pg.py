"""A throwaway PostgreSQL server for the benchmark (trust auth, fsync off, 127.0.0.1, a free port).

As in the test suite: the binaries `pg_config --bindir` names, run as the `postgres` system user when we are root
(pg_ctl refuses root), in a temp dir chowned to it; stopped and deleted in `close()`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_USER = "postgres"


def bindir() -> Path | None:
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


def unavailable_reason() -> str | None:
    if bindir() is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found via `pg_config --bindir`"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no `{PG_USER}` system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is not on PATH"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.bin = bindir()
        self.base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.port = 0
        self.version = ""
        self._names = 0

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(
            cmd, cwd=self.base, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        init = self._run(
            "initdb", "-D", str(self.datadir), "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-500:]}")
        last = ""
        for _ in range(3):  # the port may be taken between probing and binding
            self.port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            log = str(self.base / "postgres.log")
            started = self._run(
                "pg_ctl", "-D", str(self.datadir), "-l", log, "-w", "-t", "60", "-o", opts, "start"
            )
            if started.returncode == 0:
                self.version = self._version()
                return
            last = started.stderr.strip() or started.stdout.strip()
        raise RuntimeError(f"pg_ctl start failed: {last[-500:]}")

    def _version(self) -> str:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={db}"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, prefix: str) -> str:
        import psycopg

        self._names += 1
        name = f"{prefix}_{self._names}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
