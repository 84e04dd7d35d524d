"""``python -m bot privacy ...``: the retention job by hand (the scheduler runs it too)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def _retention(args: argparse.Namespace) -> int:
    from bot.privacy.retention import run_retention
    from bot.settings import get_settings
    from bot.store.db import session_factory

    settings = get_settings()
    report = run_retention(session_factory(settings.database_url), settings, datetime.now(UTC), dry_run=args.dry_run)
    print("\n".join(report.lines()))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    privacy = subparsers.add_parser("privacy", help="citizens' data: retention")
    commands = privacy.add_subparsers(dest="command", required=True)
    retention = commands.add_parser(
        "retention", help="erase or anonymise what is past its retention period (CRM_RETENTION_*_DAYS)"
    )
    retention.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    retention.set_defaults(func=_retention)
