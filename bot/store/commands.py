"""``python -m bot db ...``: database maintenance from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.engine import make_url


def _upgrade(args: argparse.Namespace) -> int:
    from bot.settings import get_settings
    from bot.store.db import upgrade_database

    url = args.url or get_settings().database_url
    upgrade_database(url)
    # Never echo the password into terminals and CI logs.
    print(f"database at {make_url(url).render_as_string(hide_password=True)} is at the newest migration")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from bot.store.backup import (
        BackupError,
        backend_of,
        backup_postgresql,
        backup_sqlite,
        pg_dump_command,
        resolve_target,
    )

    if args.url:
        url = args.url
    else:
        from bot.settings import get_settings

        url = get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    backend = backend_of(url)
    try:
        if backend == "sqlite":
            database = make_url(url).database
            if not database or database == ":memory:":
                raise BackupError(f"{shown} is not a database file")
            target = backup_sqlite(Path(database), resolve_target(Path(args.path), ".db"))
        elif backend == "postgresql":
            if args.print_only:
                print(pg_dump_command(url, Path(args.path)).shown())
                return 0
            target = backup_postgresql(url, resolve_target(Path(args.path), ".dump"))
        else:
            raise BackupError(f"backups of {backend} databases are not supported; use the database's own tools")
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup of {shown} written to {target} ({target.stat().st_size:,} bytes)")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = subparsers.add_parser("db", help="interaction store maintenance")
    commands = db.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="run the migrations up to the newest schema")
    upgrade.add_argument("--url", help="database URL (default: CRM_DATABASE_URL from the settings)")
    upgrade.set_defaults(func=_upgrade)
    backup = commands.add_parser(
        "backup", help="copy the live database to PATH (SQLite online backup API; PostgreSQL: pg_dump -Fc)"
    )
    backup.add_argument("path", help="the backup file to write, or a directory for a time-stamped file")
    backup.add_argument("--url", help="database URL (default: CRM_DATABASE_URL from the settings)")
    backup.add_argument("--print", dest="print_only", action="store_true",
                        help="PostgreSQL: print the pg_dump command instead of running it")
    backup.set_defaults(func=_backup)
