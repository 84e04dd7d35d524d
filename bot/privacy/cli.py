"""``python -m bot privacy ...``: a data protection officer's export and erasure, the periodic job,
and the retention job by hand (the scheduler runs both jobs too).

Both need the documented request's reason and who acts (``--actor``), which go to the
audit log with counts only. A citizen is named by public id (the console shows it), row
id, or ``channel:address``; an unknown one is an error that says only that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("citizen", help="public id, row id, or channel:address (email:ana@example.org)")
    parser.add_argument("--reason", required=True, help="the documented request, e.g. 'letter of 2026-12-01, ref 42'")
    parser.add_argument("--actor", required=True, help="who carries it out (goes to the audit log)")


def _reason(args: argparse.Namespace) -> str | None:
    reason = " ".join(args.reason.split())
    if not reason:
        print("a reason is required (the documented request)", file=sys.stderr)
        return None
    return reason


def _export(args: argparse.Namespace) -> int:
    from bot.privacy.export import CitizenNotFound, export_citizen, export_zip, find_citizen
    from bot.settings import get_settings
    from bot.staff.audit import audit
    from bot.store.db import session_factory

    reason = _reason(args)
    if reason is None:
        return 2
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"{out} exists; use --force to overwrite", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        with session_factory(settings.database_url).begin() as session:
            citizen = find_citizen(session, args.citizen)
            bundle = export_citizen(session, citizen.id)
            audit(session, f"cli:{args.actor}", "privacy.export", f"citizen:{citizen.public_id}",
                  {"reason": reason[:500], "messages": len(bundle["messages"]), "tickets": len(bundle["tickets"])})
            data = export_zip(bundle, citizen.language)
    except CitizenNotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    out.write_bytes(data)
    print(f"wrote {out} ({len(bundle['messages'])} messages, {len(bundle['tickets'])} tickets)")
    return 0


def _erase(args: argparse.Namespace) -> int:
    from bot.privacy.erase import ErasureRefused, erase_and_purge
    from bot.privacy.export import CitizenNotFound, find_citizen
    from bot.settings import get_settings
    from bot.store.db import session_factory

    reason = _reason(args)
    if reason is None:
        return 2
    settings = get_settings()
    sessions = session_factory(settings.database_url)
    try:
        with sessions() as session:
            citizen_id = find_citizen(session, args.citizen).id
        if not args.yes:
            print("this erases the citizen's data for good; add --yes to do it", file=sys.stderr)
            return 2
        report = erase_and_purge(sessions, settings, citizen_id, actor=f"cli:{args.actor}", reason=reason)
    except (CitizenNotFound, ErasureRefused) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"erased citizen {report.citizen}: {report.messages} messages, {report.tickets} tickets, "
          f"{report.identities} addresses, {report.raw_emails} raw e-mails, "
          f"{report.tracker_events if report.tracker_events is not None else 'no'} tracker events")
    for held in report.held:
        print(f"kept under legal hold: ticket {held.id} ({held.status}, due {held.due_at:%Y-%m-%d %H:%M} UTC); "
              "erased by the periodic job once it is resolved or closed")
    return 0


def _job(_args: argparse.Namespace) -> int:
    from bot.privacy.jobs import job
    from bot.settings import get_settings
    from bot.store.db import session_factory

    settings = get_settings()
    report = job(session_factory(settings.database_url), settings)
    print(f"finished {report.citizens_finished} erasures ({report.tickets_released} tickets released), "
          f"{len(report.still_held)} tickets still held, {report.requests_expired} codes expired, "
          f"{report.downloads_voided} download links voided")
    return 0


def _retention(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bot.privacy.retention import run_retention
    from bot.settings import get_settings
    from bot.store.db import session_factory

    settings = get_settings()
    report = run_retention(session_factory(settings.database_url), settings, datetime.now(UTC), dry_run=args.dry_run)
    print("\n".join(report.lines()))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    privacy = subparsers.add_parser("privacy", help="citizens' data rights: export, erasure, retention")
    commands = privacy.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write everything about a citizen to a zip (JSON + HTML)")
    _common(export)
    export.add_argument("--out", required=True, help="the zip file to write")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.set_defaults(func=_export)
    erase = commands.add_parser("erase", help="erase a citizen's data (tickets still open are kept until closed)")
    _common(erase)
    erase.add_argument("--yes", action="store_true", help="really erase")
    erase.set_defaults(func=_erase)
    run = commands.add_parser("job", help="run the periodic job once: finish erasures whose holds ended")
    run.set_defaults(func=_job)
    retention = commands.add_parser(
        "retention", help="erase or anonymise what is past its retention period (CRM_RETENTION_*_DAYS)"
    )
    retention.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    retention.set_defaults(func=_retention)
