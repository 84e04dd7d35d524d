"""`python -m bot train`, `run`, and the commands that start one process each: `api`, `rasa`,
`actions`, `channel <name>` (a channel's own worker), `deliveries`, `scheduler` and `trainer`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import threading
from pathlib import Path

from bot.settings import PROJECT_ROOT


def _train(args: argparse.Namespace) -> int:
    from bot.training import TrainingError, train

    try:
        train(force=args.force)
    except TrainingError as exc:
        print(exc)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from bot.channels.registry import enabled_channels, sending_channels, worker_channels
    from bot.modelbuilds.trainer import start_model
    from bot.runtime import build_runtime
    from bot.settings import get_settings
    from bot.stack import Stack, StackConfig
    from bot.store.db import upgrade_database

    # This process only supervises the others; each of them builds its own runtime.
    settings = get_settings()
    upgrade_database(settings.database_url)
    # --- KB learning loop: after a rollback the active model, else train as before (bot.modelbuilds.trainer) ---
    with build_runtime(settings) as runtime:
        model, why = start_model(runtime.sessions, kb_dir=settings.kb_dir, models_dir=settings.models_dir)
    print(f"model: {why}", flush=True)
    # --- end of the KB learning loop ---
    config = StackConfig(
        model=model,
        database_url=settings.database_url,
        api_key=settings.api_key_list[0],
        kb_dir=settings.kb_dir,
        api_port=settings.api_port,
        host=settings.api_host,
        action_port=settings.action_server_port,
        tracker_url=settings.tracker_url,
        redis_url=settings.redis_url,
        rasa_processes=settings.rasa_processes,
        action_servers=settings.action_servers,
        api_workers=settings.api_workers,
        channel_workers=worker_channels(settings),
        deliveries=bool(sending_channels(settings)),
        scheduler=True,
        trainer=True,
        rasa_token=settings.rasa_token.get_secret_value() if settings.rasa_token is not None else None,
    )
    channels = enabled_channels(settings)
    print(f"channels on: generic API and web chat{''.join(', ' + c for c in channels)}", flush=True)
    stack = Stack(config)
    print("starting the action server, Rasa and the API (Rasa needs about half a minute) ...", flush=True)
    stack.start()
    print(
        f"\nThe assistant is running.\n"
        f"  API:     {config.api_url}/api/v1/messages   (OpenAPI: {config.api_url}/docs)\n"
        f"  API key: in {PROJECT_ROOT / '.env'} (CRM_API_KEYS)\n"
        f"  Console: {config.api_url}/console/   (first admin: python -m bot console create-admin --username admin)\n"
        f"  Logs:    {config.log_dir}\n"
        f"Try:\n"
        f"  curl -s {config.api_url}/api/v1/messages -H \"X-API-Key: $(grep CRM_API_KEYS .env | cut -d= -f2)\" \\\n"
        f"       -H 'Content-Type: application/json' \\\n"
        f"       -d '{{\"channel\": \"web\", \"sender\": \"demo\", \"text\": \"When is my bin collected?\"}}'\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    return stack.wait()


def _api(_args: argparse.Namespace) -> int:
    """The API (generic channel, webhooks, web chat, console) with CRM_API_WORKERS workers."""
    from bot.settings import get_settings
    from bot.stack import APP_PYTHON

    settings = get_settings()
    command = [
        str(APP_PYTHON), "-m", "uvicorn", "bot.api.main:create", "--factory",
        "--host", settings.api_host, "--port", str(settings.api_port), "--workers", str(settings.api_workers),
        "--no-access-log", "--log-level", "warning",
    ]
    os.execv(command[0], command)


def _rasa(args: argparse.Namespace) -> int:
    """One Rasa process, configured from the settings (its tracker, lock and action server)."""
    from bot.settings import get_settings
    from bot.stack import rasa_server_command

    settings = get_settings()
    command, env = rasa_server_command(
        settings, port=args.port, model=args.model, host=args.host or settings.api_host, log_file=args.log_file,
        enable_api=args.enable_api,
    )
    os.chdir(PROJECT_ROOT)  # endpoints.yml and credentials.yml
    os.execve(command[0], command, env)


def _actions(args: argparse.Namespace) -> int:
    """One action server. rasa-sdk listens on every interface unless told otherwise, and it has
    no authentication: it listens where the API does (loopback unless CRM_API_HOST or --host
    says otherwise; in a container, on the internal network only)."""
    from bot.settings import get_settings
    from bot.stack import APP_PYTHON

    os.environ["SANIC_HOST"] = args.host or get_settings().api_host
    os.environ.setdefault("PYTHONPATH", str(PROJECT_ROOT))
    os.chdir(PROJECT_ROOT)
    command = [str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(args.port), "--quiet"]
    os.execv(command[0], command)


def _channel(args: argparse.Namespace) -> int:
    from bot.observability.logs import setup_logging
    from bot.runtime import build_runtime

    with build_runtime() as runtime:
        channel = next((c for c in runtime.channels if c.name == args.name), None)
        if channel is None:
            print(f"the {args.name} channel is off: its settings are not given (see README, 'Channels')")
            return 2
        if channel.run_worker is None:
            print(f"the {args.name} channel has no worker of its own: the API serves it")
            return 2
        setup_logging(runtime.settings.log_format, runtime.settings.log_level)
        return int(channel.run_worker(runtime) or 0)


def _deliveries(_args: argparse.Namespace) -> int:
    from bot.observability.logs import setup_logging
    from bot.runtime import build_runtime

    runtime = build_runtime()
    setup_logging(runtime.settings.log_format, runtime.settings.log_level)
    service = runtime.delivery

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run_forever(stop)

    with runtime:
        asyncio.run(main())
    return 0


# --- scheduler (commitment alerts; bot/scheduler) ---------------------------------------------
def _scheduler(args: argparse.Namespace) -> int:
    from bot.observability.logs import setup_logging
    from bot.runtime import build_runtime

    with build_runtime() as runtime:
        setup_logging(runtime.settings.log_format, runtime.settings.log_level)
        if args.once:
            runtime.scheduler.announce()
            results = runtime.scheduler.run_once()
            runtime.scheduler.release()
            print("\n".join(f"{name}: {result}" for name, result in results.items()))
            return 1 if any(isinstance(r, Exception) for r in results.values()) else 0
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        runtime.scheduler.run_forever(stop)
    return 0
# --- end scheduler -------------------------------------------------------------------------


# --- KB learning loop -------------------------------------------------------------------------
def _trainer(_args: argparse.Namespace) -> int:
    """Trains approved KB changes one at a time and loads each new model into every Rasa process."""
    from bot.observability.logs import setup_logging
    from bot.runtime import build_runtime

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with build_runtime() as runtime:
        setup_logging(runtime.settings.log_format, runtime.settings.log_level)
        runtime.model_loop.run_forever(stop, poll_seconds=runtime.settings.trainer_poll_seconds)
    return 0
# --- end of the KB learning loop ---


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from bot.channels.registry import CHANNELS

    train_parser = subparsers.add_parser("train", help="compile the KB and train the Rasa model if inputs changed")
    train_parser.add_argument("--force", action="store_true", help="train even if a model for these inputs exists")
    train_parser.set_defaults(func=_train)
    run_parser = subparsers.add_parser("run", help="start the action server, Rasa and the API")
    run_parser.set_defaults(func=_run)
    api = subparsers.add_parser("api", help="run the API alone (CRM_API_HOST, CRM_API_PORT, CRM_API_WORKERS)")
    api.set_defaults(func=_api)
    rasa = subparsers.add_parser("rasa", help="run one Rasa process (tracker, lock store, action server from the settings)")
    rasa.add_argument("--port", type=int, default=5005)
    rasa.add_argument("--host", default=None, help="interface to listen on (default: CRM_API_HOST, loopback)")
    rasa.add_argument("--model", type=Path, default=PROJECT_ROOT / "models",
                      help="model file, or a directory whose newest model is loaded (default: models/)")
    rasa.add_argument("--log-file", type=Path, default=None)
    rasa.add_argument("--enable-api", action="store_true", help=argparse.SUPPRESS)
    rasa.set_defaults(func=_rasa)
    actions = subparsers.add_parser("actions", help="run one action server")
    actions.add_argument("--port", type=int, default=5055)
    actions.add_argument("--host", default=None, help="interface to listen on (default: CRM_API_HOST, loopback)")
    actions.set_defaults(func=_actions)
    channel = subparsers.add_parser("channel", help="run one channel's worker (Telegram polling, e-mail reader)")
    channel.add_argument("name", choices=CHANNELS)
    channel.set_defaults(func=_channel)
    deliveries = subparsers.add_parser("deliveries", help="deliver queued outbound messages, retrying failures")
    deliveries.set_defaults(func=_deliveries)
    scheduler = subparsers.add_parser("scheduler", help="run the periodic jobs: commitment alerts, staff e-mail")
    scheduler.add_argument("--once", action="store_true", help="run every job once and exit")
    scheduler.set_defaults(func=_scheduler)
    trainer = subparsers.add_parser("trainer", help="train approved KB changes and load the model into every Rasa process")
    trainer.set_defaults(func=_trainer)
