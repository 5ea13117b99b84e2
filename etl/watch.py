"""`python -m etl watch DIR`: load files as they arrive in a directory.

Safe against half-written files: a file is loaded only once its size and modification time were the same on two
polls in a row (and it is not empty); dotfiles and `*.part`, `*.tmp`, `*.crdownload`, `*~` are never touched,
so a sender that writes `x.csv.part` and renames it when done is picked up at the rename. Safe against restarts:
a file already loaded (same bytes, same mapping) is a no-op by its sha256, so a restarted watcher goes over the
directory again without loading anything twice. A file that changes after it was loaded is loaded again (a
corrected re-export). Ctrl-C or SIGTERM stops after the file being loaded (a load interrupted by a second
Ctrl-C is rolled back whole).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from etl.mapping import Mapping

SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".json", ".ndjson", ".jsonl"}
PARTIAL = (".part", ".tmp", ".crdownload", ".partial", "~")


def candidates(directory: Path) -> dict[Path, tuple[int, int]]:
    """Files that may be loaded, with their (size, mtime_ns) now."""
    out = {}
    for p in directory.iterdir():
        name = p.name
        if name.startswith(".") or name.endswith(PARTIAL) or p.suffix.lower() not in SUFFIXES:
            continue
        try:
            st = p.stat()
        except OSError:  # renamed or removed meanwhile
            continue
        if p.is_file():
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


class Watcher:
    def __init__(
        self,
        engine,
        directory: Path,
        mapping: Mapping,
        *,
        as_of: date | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.mapping = mapping
        self.as_of = as_of
        self.log = log
        self.stop = threading.Event()
        self.previous: dict[Path, tuple[int, int]] = {}
        self.done: dict[Path, tuple[int, int]] = {}
        self.results: list = []

    def poll(self) -> list:
        """One look at the directory: load the files that are stable and not loaded in this state yet."""
        from etl.load import load_files

        now = candidates(self.directory)
        ready = [
            p
            for p, sig in sorted(now.items())
            if sig[0] > 0 and self.previous.get(p) == sig and self.done.get(p) != sig
        ]
        self.previous = now
        if not ready:
            return []
        results = []
        # one file at a time (patients first), so that a stop request is honoured between files
        from etl.load import order_files

        for p in order_files(ready, self.mapping, None):
            if self.stop.is_set():
                break
            r = load_files(self.engine, [p], mapping=self.mapping, as_of=self.as_of)[0]
            self.done[p] = now[p]
            results.append(r)
            self.log(_line(r))
        self.results.extend(results)
        return results

    def run(self, interval: float, once: bool = False) -> None:
        if once:
            # two looks, `interval` apart: files still being written are left for the next run
            self.poll()
            time.sleep(interval)
            self.poll()
            return
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(interval)


def _line(r) -> str:
    stamp = datetime.now().strftime("%H:%M:%S")
    name = Path(r.file).name
    if r.status == "failed":
        return f"{stamp} {name}: error: {r.message}"
    text = (
        f"{stamp} {name}: {r.kind}, batch {r.batch_id}, {r.status}: {r.rows_read:,} read, {r.rows_inserted:,} new, "
        f"{r.rows_updated:,} updated, {r.rows_unchanged:,} unchanged, {r.rows_rejected:,} rejected"
    )
    return text + (f" - {r.message}" if r.message and r.status != "unchanged" else "")


def cmd_watch(args: argparse.Namespace) -> int:
    from etl.load import exit_code
    from etl.mapping import MappingError, load_mapping
    from warehouse.db import make_engine
    from warehouse.migrate import current_revision, head_revision, upgrade

    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"error: {directory}: not a directory", file=sys.stderr)
        return 2
    try:
        mapping = load_mapping(args.mapping)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(args.db)
    if current_revision(engine) != head_revision():
        upgrade(engine)

    def say(text: str) -> None:
        print(text, flush=True)

    watcher = Watcher(engine, directory, mapping, as_of=args.as_of, log=say)
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum, frame):
            watcher.stop.set()

        previous = signal.signal(signal.SIGTERM, on_term)
    if not args.once:
        say(f"watching {directory} every {args.interval:g} s (Ctrl-C to stop)")
    try:
        watcher.run(args.interval, once=args.once)
    except KeyboardInterrupt:
        watcher.stop.set()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        engine.dispose()
    if not args.once:
        say(f"stopped; {len(watcher.results)} file(s) processed")
        return 0
    return exit_code(watcher.results)


def add_parser(sub, with_db) -> None:
    def _date(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None

    p = with_db(sub.add_parser("watch", help="load new files as they arrive in a directory"))
    p.add_argument("directory", help="directory to watch (not recursive)")
    p.add_argument("--mapping", default=None, help="TOML mapping applied to every file")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two looks (default 2)")
    p.add_argument(
        "--once",
        action="store_true",
        help="look twice (--interval apart), load what is complete, exit with load's exit code",
    )
    p.add_argument("--as-of", type=_date, default=None, help="treat dates after this day as in the future")
    p.set_defaults(func=cmd_watch)
