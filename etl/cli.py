"""`python -m etl` / `outcomes-etl`: a thin command line over the etl and warehouse APIs.

Exit codes of `load`: 0 every row loaded, 3 some rows rejected (see `rejects`), 2 a file could not be read at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from etl.read import CHUNK_ROWS, DEFAULT_CHUNK_ROWS
from warehouse.config import db_url_from_env
from warehouse.db import bulk_session, make_engine
from warehouse.migrate import current_revision, head_revision, upgrade
from warehouse.schema import episode_summary, episodes, etl_batches, etl_rejects, patients, scores, sessions


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _progress_printer(enabled: bool):
    if not enabled:
        return None

    def show(message: str) -> None:
        sys.stderr.write("\r\033[K" + message)
        sys.stderr.flush()

    return show


def _upgrade_and_refresh(engine) -> tuple[str | None, str]:
    """Migrate to head; after an upgrade of an existing warehouse the marts are rebuilt (they are derived data,
    and a new schema may add columns to them)."""
    before = current_revision(engine)
    rev = upgrade(engine)
    if before is not None and before != rev:
        with engine.begin() as conn:
            bulk_session(conn)
            n = rebuild_marts_as_before(conn)
        print(f"schema upgraded {before} -> {rev}: summaries rebuilt for {n:,} episodes", file=sys.stderr)
    return before, rev


def rebuild_marts_as_before(conn: Connection) -> int:
    """Rebuild every patient's marts as of the date they were computed for, today for those without any.

    An upgrade only reshapes derived data: refreshing as of today would turn a warehouse whose data ends in the
    past (an archive, the demo, a benchmark) into one where every patient has had "no data for 14 days".
    """
    from etl.summary import refresh_summaries

    groups: dict[date, list[str]] = {}
    summarised: set[str] = set()
    for patient_id, as_of in conn.execute(
        select(episode_summary.c.patient_id, func.max(episode_summary.c.as_of)).group_by(
            episode_summary.c.patient_id
        )
    ):
        groups.setdefault(as_of, []).append(patient_id)
        summarised.add(patient_id)
    rest = [
        pid
        for pid in conn.execute(select(patients.c.patient_id).order_by(patients.c.patient_id)).scalars()
        if pid not in summarised
    ]
    n = refresh_summaries(conn, rest) if rest else 0
    for as_of, ids in sorted(groups.items()):
        n += refresh_summaries(conn, sorted(ids), as_of=as_of)
    return n


def cmd_init(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    before, rev = _upgrade_and_refresh(engine)
    print(f"warehouse {engine.url.render_as_string(hide_password=True)}: schema {before or 'none'} -> {rev}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from etl.generate import generate

    paths = generate(Path(args.out), args.patients, seed=args.seed, as_of=args.as_of, dirty=not args.clean)
    for kind, path in paths.items():
        print(f"{kind:9} {path}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from etl.load import exit_code, load_files
    from etl.mapping import MappingError, load_mapping

    try:
        mapping = load_mapping(args.mapping)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(args.db)
    if current_revision(engine) != head_revision():
        _upgrade_and_refresh(engine)
    show_progress = not args.json and sys.stderr.isatty() and not args.quiet
    results = load_files(
        engine,
        args.files,
        mapping=mapping,
        kind=args.kind,
        as_of=args.as_of,
        chunk_rows=args.chunk_rows,
        progress=_progress_printer(show_progress),
    )
    if show_progress:
        sys.stderr.write("\r\033[K")
    if args.json:
        print(json.dumps({"batches": [r.as_json() for r in results]}, indent=2))
    else:
        for r in results:
            if r.status == "failed":
                print(f"error: {r.message}", file=sys.stderr)
                continue
            line = (
                f"{Path(r.file).name}: {r.kind}, batch {r.batch_id}, {r.status}: {r.rows_read:,} read, "
                f"{r.rows_inserted:,} new, {r.rows_updated:,} updated, {r.rows_unchanged:,} unchanged, "
                f"{r.rows_rejected:,} rejected ({r.seconds:.1f} s)"
            )
            print(line)
            if r.message:
                print(f"  {r.message}")
            if r.rows_rejected and r.status != "unchanged":
                print(f"  see: python -m etl rejects --batch {r.batch_id}")
    return exit_code(results)


#: A rejected row longer than this is cut on screen (a runaway quote or a pasted document); --json has it whole.
SHOWN_ROW_CHARS = 1000


def _shown_row(raw: str | None) -> str:
    raw = raw or ""
    if len(raw) <= SHOWN_ROW_CHARS:
        return raw
    return f"{raw[:SHOWN_ROW_CHARS]} ... ({len(raw):,} characters in all; --json shows the whole row)"


def _reading_engine(url: str) -> Engine | None:
    """An engine for commands that only read, or None (said on stderr) when the SQLite file does not exist:
    connecting would create an empty one, and `status` then reported a warehouse nobody made."""
    engine = make_engine(url)
    path = engine.url.database
    if engine.dialect.name == "sqlite" and path not in (None, "", ":memory:") and not Path(path).exists():
        print(f"no warehouse at {path}; create it with: python -m etl init --db {url}", file=sys.stderr)
        return None
    return engine


def cmd_rejects(args: argparse.Namespace) -> int:
    engine = _reading_engine(args.db)
    if engine is None:
        return 2
    q = (
        select(
            etl_batches.c.file_name,
            etl_rejects.c.batch_id,
            etl_rejects.c.source_line,
            etl_rejects.c.reasons,
            etl_rejects.c.raw_row,
        )
        .join(etl_batches, etl_batches.c.batch_id == etl_rejects.c.batch_id)
        .order_by(etl_rejects.c.batch_id, etl_rejects.c.source_line)
        .limit(args.limit)
    )
    if args.batch is not None:
        q = q.where(etl_rejects.c.batch_id == args.batch)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if args.json:
        print(json.dumps([r._asdict() for r in rows], indent=2))
        return 0
    if not rows:
        print(_no_rejects(engine, args.batch))
        return 0
    for r in rows:
        print(f"{r.file_name}:{r.source_line} (batch {r.batch_id}): {r.reasons}")
        print(f"    {_shown_row(r.raw_row)}")
    if len(rows) == args.limit:
        print(f"(first {args.limit} shown; use --limit)")
    return 0


def _no_rejects(engine: Engine, batch: int | None) -> str:
    """What to say when there are no rejects to show: for a batch that failed, why (a file that could not be read
    has no rejected rows: nothing of it was read)."""
    if batch is None:
        return "no rejected rows"
    with engine.connect() as conn:
        b = conn.execute(select(etl_batches).where(etl_batches.c.batch_id == batch)).first()
    if b is None:
        return f"no batch {batch}"
    if b.status == "failed":
        return f"batch {batch} ({b.file_name}) failed, nothing of it was loaded: {b.message}"
    return f"no rejected rows in batch {batch} ({b.file_name})"


def cmd_status(args: argparse.Namespace) -> int:
    engine = _reading_engine(args.db)
    if engine is None:
        return 2
    rev = current_revision(engine)
    print(f"warehouse: {engine.url.render_as_string(hide_password=True)} (schema {rev or 'not initialised'})")
    if rev is None:
        print("run: python -m etl init")
        return 1
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (patients, episodes, sessions, scores, episode_summary, etl_rejects)
        }
        batches = conn.execute(
            select(etl_batches).order_by(etl_batches.c.batch_id.desc()).limit(args.limit)
        ).all()
    print("  " + ", ".join(f"{n}: {c:,}" for n, c in counts.items()))
    print(f"last {len(batches)} batches:")
    for b in batches:
        print(
            f"  #{b.batch_id:<4} {b.loaded_at:%Y-%m-%d %H:%M} {b.kind:9} {b.status:20} {b.file_name}: "
            f"{b.rows_read:,} read, {b.rows_inserted:,} new, {b.rows_updated:,} updated, "
            f"{b.rows_unchanged:,} unchanged, {b.rows_rejected:,} rejected"
            + (f" - {b.message}" if b.message else "")
        )
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from etl.summary import refresh_all

    engine = make_engine(args.db)
    with engine.begin() as conn:
        bulk_session(conn)
        n = refresh_all(conn, as_of=args.as_of)
    print(f"refreshed summaries for {n:,} episodes")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from research.cohort import CohortDefinition, CohortError
    from research.deid import ExportKeyError, key_from_env
    from research.export import ExportError, export_bundle

    try:
        key = key_from_env(insecure_demo_key=args.insecure_demo_key)
        definition = None
        if args.cohort:
            definition = CohortDefinition.from_json(Path(args.cohort).read_text(encoding="utf-8"))
        summary = export_bundle(
            make_engine(args.db),
            args.out,
            definition,
            key=key,
            fmt=args.format,
            k=args.k,
            dates=args.dates,
            skip_reasons=args.skip_reasons,
            progress=_progress_printer(not args.json and sys.stderr.isatty()),
        )
    except (ExportKeyError, CohortError, ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
        return 0
    deid = summary.deidentification
    print(f"exported {summary.cohort_name!r} to {summary.out_dir} ({summary.format}, dates {summary.dates})")
    print("  " + ", ".join(f"{t}: {n:,}" for t, n in summary.row_counts.items()))
    print(
        f"  k={summary.k}: {deid['patients_released_unchanged']:,} patients unchanged, "
        f"{deid['patients_generalised']:,} generalised, {deid['patients_suppressed']:,} suppressed"
    )
    for note in summary.notes:
        print(f"  warning: {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m etl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db",
            default=None,
            help="warehouse URL (default: $OUTCOMES_DB_URL or sqlite:///data/warehouse.sqlite)",
        )
        return p

    p = with_db(sub.add_parser("init", help="create or upgrade a warehouse (Alembic) and seed the catalogs"))
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("generate", help="write a synthetic cohort as clinic-export CSV files")
    p.add_argument("--patients", type=int, default=400, help="number of patients (default 400)")
    p.add_argument("--seed", type=int, default=7, help="random seed: same seed and --as-of, same files")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--as-of", type=_date, default=None, help="last day of the data (default: today)")
    p.add_argument("--clean", action="store_true", help="no deliberately dirty rows")
    p.set_defaults(func=cmd_generate)

    p = with_db(sub.add_parser("load", help="validate and load files; patients files go first"))
    p.add_argument("files", nargs="+", help="CSV files (kind recognised from the header)")
    p.add_argument("--mapping", default=None, help="TOML mapping for a clinic's own export format")
    p.add_argument(
        "--kind",
        choices=["patients", "scores", "visits", "sessions"],
        default=None,
        help="force the file kind instead of recognising it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with a summary per batch")
    p.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="treat dates after this day as in the future (default: today)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help=f"rows per chunk, memory vs speed (default: {CHUNK_ROWS['scores']:,} for scores files, "
        f"{DEFAULT_CHUNK_ROWS:,} for the others)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_load)

    p = with_db(sub.add_parser("rejects", help="show rejected rows with file, line and reasons"))
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rejects)

    p = with_db(sub.add_parser("status", help="what the warehouse holds and the latest batches"))
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_status)

    p = with_db(sub.add_parser("refresh", help="recompute the summary tables for every patient"))
    p.add_argument("--as-of", type=_date, default=None)
    p.set_defaults(func=cmd_refresh)

    p = with_db(sub.add_parser("export", help="write a de-identified research bundle of a cohort"))
    p.add_argument("--cohort", default=None, help="cohort definition JSON (default: every episode)")
    p.add_argument("--out", required=True, help="bundle directory (new or empty)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--k", type=int, default=5, help="smallest quasi-identifier group (default 5)")
    p.add_argument(
        "--dates",
        choices=["relative", "shifted"],
        default="relative",
        help="relative: days since episode start + year (Safe Harbor, default); "
        "shifted: per-patient date shift (limited data set / expert determination)",
    )
    p.add_argument("--skip-reasons", choices=["categories", "drop"], default="categories")
    p.add_argument(
        "--insecure-demo-key",
        action="store_true",
        help="without $OUTCOMES_EXPORT_KEY, use a public demo key (synthetic data only)",
    )
    p.add_argument("--json", action="store_true", help="print the export summary as JSON")
    p.set_defaults(func=cmd_export)

    from etl.users import add_parser as add_users_parser  # `users` command group (dashboard logins)

    add_users_parser(sub, with_db)
    from etl.inspect import add_parser as add_inspect_parser  # `inspect`: guess a mapping, dry-run a load
    from etl.watch import add_parser as add_watch_parser  # `watch`: load files as they arrive

    add_inspect_parser(sub, with_db)
    add_watch_parser(sub, with_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "db"):
        args.db = db_url_from_env(args.db)
    try:
        return args.func(args)
    except BrokenPipeError:  # `python -m etl status | head`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
