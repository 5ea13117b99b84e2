"""`python -m dashboard [--db URL] [--host 127.0.0.1] [--port 8050] [--no-auth]` (console script `outcomes-dashboard`).

With login (the default) the warehouse must hold at least one active user (`python -m etl users add`), and off a
loopback address `$OUTCOMES_SECRET_KEY` must be set. `--no-auth` serves one local viewer without login, on a loopback
address only.
"""

from __future__ import annotations

import argparse
import sys

from dashboard.runtime import one_blas_thread_per_worker
from warehouse.config import db_url_from_env
from warehouse.db import make_engine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outcomes-dashboard", description="Serve the therapist dashboard (development server)."
    )
    parser.add_argument(
        "--db", default=None, help="warehouse URL (default: $OUTCOMES_DB_URL or the demo SQLite file)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--debug", action="store_true", help="Dash debug mode: reloader and error overlay")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="no login: one clinic-wide viewer on this computer (loopback hosts only)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    one_blas_thread_per_worker()  # before numpy loads (dashboard/runtime.py)
    from dashboard.app import create_app
    from dashboard.auth import AuthConfig, AuthError
    from dashboard.auth.config import is_loopback
    from dashboard.auth.users import count_active

    local = is_loopback(args.host)
    if args.no_auth and not local:
        print(
            f"error: --no-auth serves on a loopback address only (127.0.0.1, ::1), not {args.host}",
            file=sys.stderr,
        )
        return 2
    if args.debug and not local:
        print("error: --debug runs the interactive debugger: loopback addresses only", file=sys.stderr)
        return 2
    engine = make_engine(db_url_from_env(args.db))
    try:
        auth = AuthConfig.from_env(mode="no_auth" if args.no_auth else "login", production=not local)
        if auth.login and count_active(engine) == 0:
            raise AuthError(
                "no users configured: the dashboard will not run open. Add one with "
                "`python -m etl users add NAME --role admin` (or `make demo`), or for one person on this computer "
                "use `python -m dashboard --no-auth`"
            )
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_auth:
        print(
            "WARNING: no login (--no-auth): every clinic's patients, for whoever uses this computer",
            file=sys.stderr,
        )
    app = create_app(engine, auth=auth)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
