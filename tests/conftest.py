"""Project-wide fixtures: a fresh warehouse per test on SQLite and on a throwaway PostgreSQL, and the browser set-up.

Warehouses (each one already migrated to head with the catalogs seeded):
    sqlite_url / sqlite_engine   a new SQLite file under the test's tmp_path
    pg_url / pg_engine           a new PostgreSQL database, copied from a template migrated once per session
    engine / db_url              parametrized over both backends: ids `sqlite` and `pg` (the latter marked `postgres`)
    pg_server                    the session's PostgreSQL server, for tests that need an empty database:
                                 `pg_server.create_database()` returns a name, `pg_server.url(name)` its URL

PostgreSQL runs as the `postgres` system user (pg_ctl refuses root) from the binaries `pg_config --bindir` names.
Without them the PostgreSQL tests are skipped with the reason, unless REQUIRE_POSTGRES=1 turns that into a failure.
Tests marked `browser` (or using dash_duo / dash_br) are skipped without `chromium` and `chromedriver` on PATH,
unless REQUIRE_BROWSER=1; `pytest_setup_options` makes Dash's browser fixtures run headless Chromium.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from warehouse.db import make_engine
from warehouse.migrate import upgrade

_PG_TIMINGS: list[PgServer] = []  # servers started this session, for the terminal summary
PG_USER = "postgres"
PG_TEMPLATE = "warehouse_template"
INITDB_FLAGS = ("--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
BROWSER_FIXTURES = frozenset({"dash_duo", "dash_br", "dash_duo_mp"})
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1280,900",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def _required(env_var: str) -> bool:
    return os.environ.get(env_var, "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str, env_var: str) -> None:
    """Skip with `reason`, or fail when the environment says this dependency is required."""
    if _required(env_var):
        pytest.fail(f"{reason} ({env_var}=1)", pytrace=False)
    pytest.skip(reason)


# --- SQLite --------------------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite warehouse file, migrated to head."""
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated SQLite warehouse (WAL, foreign keys, busy timeout)."""
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


# --- PostgreSQL ----------------------------------------------------------------------------------------------------
def _pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name))
    candidates.extend(reversed(versions))
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _as_root() -> bool:
    return os.geteuid() == 0


def pg_unavailable_reason() -> str | None:
    """Why a throwaway PostgreSQL cannot be started here, or None when it can."""
    if _pg_bindir() is None:
        return (
            "PostgreSQL binaries (initdb, pg_ctl) not found via `pg_config --bindir` or /usr/lib/postgresql"
        )
    if _as_root():
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and no `{PG_USER}` system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` (util-linux) is not on PATH"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A PostgreSQL cluster private to this test session (trust auth, fsync off, 127.0.0.1 only)."""

    bindir: Path
    base: Path
    host: str = "127.0.0.1"
    port: int = 0
    user: str = PG_USER
    startup_seconds: float = 0.0
    template_seconds: float = 0.0
    server_version: int = 0
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        return self.base / "postgres.log"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    # running the binaries as the postgres user when we are root
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if _as_root():
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(
            cmd, cwd=self.base, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def start(self) -> None:
        t0 = time.perf_counter()
        if _as_root():
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        init = self._run("initdb", "-D", str(self.datadir), "-U", self.user, *INITDB_FLAGS)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        last = ""
        for _attempt in range(3):  # the free port can be taken between probing and binding
            self.port = _free_port()
            opts = (
                f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            log = str(self.logfile)
            started = self._run(
                "pg_ctl", "-D", str(self.datadir), "-l", log, "-w", "-t", "60", "-o", opts, "start"
            )
            if started.returncode == 0:
                self.startup_seconds = time.perf_counter() - t0
                return
            last = f"{started.stdout}\n{started.stderr}\n{self._log_tail()}"
        raise RuntimeError(f"pg_ctl start failed:\n{last}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def execute(self, sql: str) -> None:
        """Run one statement in autocommit on the maintenance database (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            if not self.server_version:
                self.server_version = conn.info.server_version
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new database (empty, or a copy of `template`); returns its name."""
        name = f"test_{next(self._names)}"
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
            if self.server_version >= 150000:
                sql += " STRATEGY FILE_COPY"  # 25 ms instead of 120 ms (WAL_LOG) for the small template
        self.execute(sql)
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's throwaway PostgreSQL; skipped (or failed with REQUIRE_POSTGRES=1) when it cannot run here."""
    reason = pg_unavailable_reason()
    if reason:
        _skip_or_fail(reason, "REQUIRE_POSTGRES")
    base = Path(tempfile.mkdtemp(prefix="pytest-pg-"))  # under /tmp: pytest's tmp dirs are 0700 root
    server = PgServer(bindir=_pg_bindir(), base=base)  # type: ignore[arg-type]
    previous = _interrupt_on_sigterm()
    try:
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            pytest.fail(f"could not start the throwaway PostgreSQL: {exc}", pytrace=False)
        _PG_TIMINGS.append(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_sigterm():
    """Let `timeout` / a CI cancel (SIGTERM) unwind like Ctrl-C, so the server is stopped, not orphaned."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> str:
    """Name of a template database migrated to head once per session; tests get copies of it."""
    t0 = time.perf_counter()
    pg_server.execute(f'CREATE DATABASE "{PG_TEMPLATE}"')
    engine = make_engine(pg_server.url(PG_TEMPLATE))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    # No one may connect to it any more: CREATE DATABASE ... TEMPLATE needs it idle.
    pg_server.execute(f'ALTER DATABASE "{PG_TEMPLATE}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
    pg_server.template_seconds = time.perf_counter() - t0
    return PG_TEMPLATE


@pytest.fixture
def pg_url(pg_server: PgServer, pg_template: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL warehouse (a copy of the migrated template), dropped after the test."""
    name = pg_server.create_database(template=pg_template)
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated PostgreSQL warehouse."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="pg", marks=pytest.mark.postgres),
]


@pytest.fixture(params=_BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    """A fresh migrated warehouse, once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture(params=_BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh migrated warehouse, once on SQLite and once on PostgreSQL (for CLI-level tests)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for server in _PG_TIMINGS:
        template = (
            f", template migrated in {server.template_seconds:.2f} s" if server.template_seconds else ""
        )
        terminalreporter.write_line(
            f"throwaway PostgreSQL: initdb + start in {server.startup_seconds:.2f} s{template}"
        )


# --- browser -------------------------------------------------------------------------------------------------------
def _chrome_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_unavailable_reason() -> str | None:
    """Why headless Chromium tests cannot run here, or None when they can."""
    found = {"chromium": _chrome_binary(), "chromedriver": shutil.which("chromedriver")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return f"{' and '.join(missing)} not on PATH (apt-get install chromium chromium-driver)"
    return None


def require_browser() -> None:
    """Skip the calling test without a browser (fail with REQUIRE_BROWSER=1)."""
    reason = browser_unavailable_reason()
    if reason:
        _skip_or_fail(reason, "REQUIRE_BROWSER")


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Guard before Dash's fixtures: without a driver they retry for 30 s and then fail obscurely.
    if item.get_closest_marker("browser") or BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
        require_browser()


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]


@pytest.hookimpl(optionalhook=True)
def pytest_setup_options():
    """Dash's hook: Chrome options for dash_duo / dash_br. Called per browser; must return a fresh object
    (Dash appends its own arguments to it). Dash then adds --no-sandbox etc. again, which is harmless."""
    webdriver = _CONFIG[0].getoption("webdriver", "Chrome") if _CONFIG else "Chrome"
    if webdriver != "Chrome":
        return None
    from selenium.webdriver.chrome.options import Options

    options = Options()
    binary = _chrome_binary()
    if binary:
        options.binary_location = binary
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    return options
