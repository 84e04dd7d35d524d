"""``python -m bot console ...``: the first admin and password recovery.

Passwords are never taken as command-line arguments (they would end up in the
shell history and in ``ps``): they come from a prompt, from standard input
(``--password-stdin``) or from the environment variable CRM_CONSOLE_PASSWORD.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

PASSWORD_ENV = "CRM_CONSOLE_PASSWORD"


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        print(f"no terminal to ask for a password: use --password-stdin or set {PASSWORD_ENV}", file=sys.stderr)
        return None
    first = getpass.getpass("Password (at least 12 characters): ")
    second = getpass.getpass("Same password again: ")
    if first != second:
        print("the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def _create_admin(args: argparse.Namespace) -> int:
    from bot.console.staff import create_staff
    from bot.settings import get_settings
    from bot.store.db import session_scope, upgrade_database

    settings = get_settings()
    upgrade_database(settings.database_url)
    password = _read_password(args)
    if password is None:
        return 2
    try:
        with session_scope(settings.database_url) as session:
            user = create_staff(
                session, "system", username=args.username, display_name=args.display_name or args.username,
                password=password, role="admin",
            )
            username = user.username
    except ValueError as exc:  # StaffError, WeakPassword
        print(f"not created: {exc}", file=sys.stderr)
        return 1
    print(f"admin {username!r} created; sign in at http://{settings.api_host}:{settings.api_port}/console/")
    return 0


def _reset_password(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.console.staff import reset_password
    from bot.settings import get_settings
    from bot.staff.models import StaffUser
    from bot.store.db import session_scope

    settings = get_settings()
    password = _read_password(args)
    if password is None:
        return 2
    try:
        with session_scope(settings.database_url) as session:
            user = session.scalars(select(StaffUser).where(StaffUser.username == args.username.strip().lower())).first()
            if user is None:
                print(f"there is no account {args.username!r}", file=sys.stderr)
                return 1
            reset_password(session, "system", user, password)
            user.active = True
    except ValueError as exc:
        print(f"not changed: {exc}", file=sys.stderr)
        return 1
    print(f"password of {args.username!r} reset; the account is active and its sessions were ended")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = subparsers.add_parser("console", help="agent console: accounts")
    commands = console.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create-admin", help="create an admin account (the first one, or another)")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", default="")
    create.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    create.set_defaults(func=_create_admin)

    reset = commands.add_parser("reset-password", help="set a new password for an account (and reactivate it)")
    reset.add_argument("--username", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    reset.set_defaults(func=_reset_password)
