"""`python -m etl users add|list|disable|enable|set-role|set-password|demo`: dashboard users in the warehouse.

A thin command line over `dashboard.auth.users` (argon2id hashes, audit rows for every change). Passwords come
from `--password-stdin` (first line of standard input), or are generated and printed once; `--password` exists for
scripts and demos (it is visible in the process list).
"""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select

from warehouse.db import make_engine
from warehouse.schema import ROLES, clinics, therapists

DEMO_USERS = (
    ("demo-therapist", "therapist"),
    ("demo-manager", "manager"),
    ("demo-researcher", "researcher"),
    ("demo-admin", "admin"),
)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set, and whether it was generated (then it is printed)."""
    from dashboard.auth.passwords import generate_password

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n"), False
    if getattr(args, "password", None):
        return args.password, False
    return generate_password(), True


def _engine(args: argparse.Namespace):
    from dashboard.auth.users import users_table_exists

    engine = make_engine(args.db)
    if not users_table_exists(engine):
        raise SystemExit("error: the warehouse has no users table yet: run `python -m etl init`")
    return engine


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_add(args: argparse.Namespace) -> int:
    from dashboard.auth.passwords import PasswordError
    from dashboard.auth.users import UserError, add_user

    password, generated = _password(args)
    try:
        user = add_user(
            _engine(args),
            args.username,
            password,
            args.role,
            therapist_id=args.therapist,
            clinic_ids=args.clinic or (),
            display_name=args.name,
        )
    except (UserError, PasswordError) as exc:
        return _fail(exc)
    print(f"added {user.username}: {user.describe()}")
    if generated:
        print(f"password: {password}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dashboard.auth.users import list_users

    rows = list_users(_engine(args))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "username": u.username,
                        "role": u.role,
                        "therapist_id": u.therapist_id,
                        "clinic_ids": list(u.clinic_ids),
                        "active": u.is_active,
                        "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                    }
                    for u in rows
                ],
                indent=2,
            )
        )
        return 0
    if not rows:
        print("no users: add one with `python -m etl users add NAME --role admin`")
    for u in rows:
        state = "active" if u.is_active else "disabled"
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
        print(f"{u.username:24} {u.role:11} {state:9} last sign-in {last:16}  {u.describe()}")
    return 0


def cmd_active(args: argparse.Namespace) -> int:
    from dashboard.auth.users import UserError, set_active

    try:
        user = set_active(_engine(args), args.username, args.command_name == "enable")
    except UserError as exc:
        return _fail(exc)
    print(f"{user.username}: {'enabled' if user.is_active else 'disabled (signed out everywhere)'}")
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    from dashboard.auth.users import UserError, set_role

    try:
        user = set_role(
            _engine(args), args.username, args.role, therapist_id=args.therapist, clinic_ids=args.clinic or ()
        )
    except UserError as exc:
        return _fail(exc)
    print(f"{user.username}: now {user.describe()} (signed out everywhere)")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    from dashboard.auth.passwords import PasswordError
    from dashboard.auth.users import UserError, set_password

    password, generated = _password(args)
    try:
        user = set_password(_engine(args), args.username, password)
    except (UserError, PasswordError) as exc:
        return _fail(exc)
    print(f"{user.username}: password changed (signed out everywhere)")
    if generated:
        print(f"password: {password}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """One user per role, scoped to the first therapist and clinic in the warehouse; new random passwords."""
    from dashboard.auth.passwords import generate_password
    from dashboard.auth.users import add_user, get_user, set_password, set_role

    engine = _engine(args)
    with engine.connect() as conn:
        therapist = conn.execute(
            select(therapists.c.therapist_id).order_by(therapists.c.therapist_id)
        ).first()
        clinic = conn.execute(select(clinics.c.clinic_id).order_by(clinics.c.clinic_id)).first()
    if therapist is None or clinic is None:
        return _fail(RuntimeError("load data first (no therapist or clinic in the warehouse)"))
    scopes = {"therapist": {"therapist_id": therapist[0]}, "manager": {"clinic_ids": [clinic[0]]}}
    print("demo users (synthetic data only; passwords change on every run):")
    for username, role in DEMO_USERS:
        password = generate_password()
        if get_user(engine, username=username) is None:
            user = add_user(engine, username, password, role, actor="demo", **scopes.get(role, {}))
        else:
            set_role(engine, username, role, actor="demo", **scopes.get(role, {}))
            user = set_password(engine, username, password, actor="demo")
        print(f"  {user.username:16} {password:22} {user.describe()}")
    return 0


def add_parser(sub, with_db) -> None:
    """The `users` command group, for `etl.cli.build_parser`."""
    users = sub.add_parser(
        "users", help="dashboard users: add, list, disable, enable, set-role, set-password, demo"
    )
    commands = users.add_subparsers(dest="users_command", required=True, metavar="USERS_COMMAND")

    def scope_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--role", required=True, choices=ROLES)
        p.add_argument(
            "--therapist", default=None, help="role therapist: the therapist id whose patients they see"
        )
        p.add_argument(
            "--clinic", action="append", default=None, help="role manager: a clinic id they see (repeatable)"
        )

    def password_options(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        group.add_argument("--password", default=None, help="the password (visible in the process list)")

    p = with_db(
        commands.add_parser("add", help="add a user (prints a generated password without --password*)")
    )
    p.add_argument("username")
    p.add_argument("--name", default=None, help="display name")
    scope_options(p)
    password_options(p)
    p.set_defaults(func=cmd_add)

    p = with_db(commands.add_parser("list", help="users, roles, what they see, last sign-in"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    for name, text in (
        ("disable", "disable a user and end their sessions"),
        ("enable", "enable a user again"),
    ):
        p = with_db(commands.add_parser(name, help=text))
        p.add_argument("username")
        p.set_defaults(func=cmd_active, command_name=name)

    p = with_db(commands.add_parser("set-role", help="change a user's role and scope (ends their sessions)"))
    p.add_argument("username")
    scope_options(p)
    p.set_defaults(func=cmd_set_role)

    p = with_db(commands.add_parser("set-password", help="set a new password (ends their sessions)"))
    p.add_argument("username")
    password_options(p)
    p.set_defaults(func=cmd_set_password)

    p = with_db(
        commands.add_parser("demo", help="one demo user per role with new random passwords (printed)")
    )
    p.set_defaults(func=cmd_demo)
