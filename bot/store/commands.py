"""``python -m bot db ...``: database maintenance from the command line."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import make_url


def _upgrade(args: argparse.Namespace) -> int:
    from bot.settings import get_settings
    from bot.store.db import upgrade_database

    url = args.url or get_settings().database_url
    upgrade_database(url)
    # Never echo the password into terminals and CI logs.
    print(f"database at {make_url(url).render_as_string(hide_password=True)} is at the newest migration")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = subparsers.add_parser("db", help="interaction store maintenance")
    commands = db.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="run the migrations up to the newest schema")
    upgrade.add_argument("--url", help="database URL (default: CRM_DATABASE_URL from the settings)")
    upgrade.set_defaults(func=_upgrade)
