"""``python -m bot model list | current | rollback``: the model history, and going back one model.

These talk to the running Rasa processes (CRM_RASA_URL) with CRM_RASA_TOKEN, so the token
must be in .env (scripts/setup.sh writes one) and `bot run` started with it.
"""

from __future__ import annotations

import argparse
import sys


def _runtime():
    """The runtime, on a database migrated to the newest schema (the tables may be newer than the last `bot run`)."""
    from bot.runtime import build_runtime
    from bot.settings import get_settings
    from bot.store.db import upgrade_database

    settings = get_settings()
    upgrade_database(settings.database_url)
    return build_runtime(settings)


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else "-"


def _list(args: argparse.Namespace) -> int:
    from bot.modelbuilds import service

    with _runtime() as runtime, runtime.sessions() as session:
        switches = service.history(session, limit=args.limit)
        builds = service.recent_builds(session, limit=args.limit)
        print("model switches (newest first):")
        if not switches:
            print("  none recorded yet")
        for s in switches:
            print(f"  #{s.id} {_when(s.switched_at)}  {s.reason:<8} {s.model_version}  by {s.by}  "
                  f"kb {s.kb_commit or '-'} / {s.kb_hash or '-'}  processes: {len(s.processes)}")
        print("training requests (newest first):")
        if not builds:
            print("  none")
        for b in builds:
            merged = f" into #{b.merged_into_id}" if b.merged_into_id else ""
            print(f"  #{b.id} {_when(b.requested_at)}  {b.status}{merged}  {b.reason}  by {b.requested_by}"
                  f"  {b.model_version or ''}")
            if b.error:
                print(f"      error: {b.error.splitlines()[0][:300]}")
    return 0


def _current(_args: argparse.Namespace) -> int:
    from bot.modelbuilds import service
    from bot.modelbuilds.rasa_api import RasaApiError

    status = 0
    with _runtime() as runtime:
        with runtime.sessions() as session:
            active = service.active_switch(session)
            if active is None:
                print("recorded active model: none yet (the trainer records it once Rasa is up)")
            else:
                print(f"recorded active model: {active.model_version} ({active.reason} at {_when(active.switched_at)}, "
                      f"kb {active.kb_commit or '-'} / {active.kb_hash or '-'})")
        for url in runtime.rasa_models.urls:
            try:
                print(f"  {url}: {runtime.rasa_models.current(url) or 'no model loaded'}")
            except RasaApiError as exc:
                print(f"  {url}: {exc}")
                status = 1
    return status


def _rollback(_args: argparse.Namespace) -> int:
    from bot.modelbuilds.rasa_api import RasaApiError
    from bot.modelbuilds.service import NoPreviousModel

    with _runtime() as runtime:
        try:
            switched = runtime.model_loop.rollback(by="cli")
        except NoPreviousModel as exc:
            print(f"not rolled back: {exc}", file=sys.stderr)
            return 2
        except RasaApiError as exc:
            print(f"not rolled back, every Rasa process keeps its model: {exc}", file=sys.stderr)
            return 1
    print(f"rolled back to {switched.model_version} in {len(switched.processes)} Rasa process(es) (switch #{switched.switch_id}); "
          "`bot run` keeps it after a restart until the training inputs change. The KB files are unchanged: "
          "fix or revert the entry too, or the next approval's training brings it back.")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="the model each Rasa process runs, its history, rollback")
    sub = model.add_subparsers(dest="model_command", required=True)
    listing = sub.add_parser("list", help="model switches and training requests, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=_list)
    sub.add_parser("current", help="the recorded active model and what each Rasa process runs").set_defaults(func=_current)
    sub.add_parser("rollback", help="load the previous model into every Rasa process").set_defaults(func=_rollback)
