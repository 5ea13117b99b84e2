"""`python -m dashboard [--db URL] [--host 127.0.0.1] [--port 8050]` (console script `outcomes-dashboard`)."""

from __future__ import annotations

import argparse
import sys

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
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dashboard.app import create_app

    engine = make_engine(db_url_from_env(args.db))
    app = create_app(engine)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
