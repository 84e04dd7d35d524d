"""`python -m bot train`, `run`, `channel <name>` (a channel's own worker), `deliveries` and `trainer`: the commands that start processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading

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
        channel_workers=worker_channels(settings),
        deliveries=bool(sending_channels(settings)),
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


def _channel(args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    with build_runtime() as runtime:
        channel = next((c for c in runtime.channels if c.name == args.name), None)
        if channel is None:
            print(f"the {args.name} channel is off: its settings are not given (see README, 'Channels')")
            return 2
        if channel.run_worker is None:
            print(f"the {args.name} channel has no worker of its own: the API serves it")
            return 2
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return int(channel.run_worker(runtime) or 0)


def _deliveries(_args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = build_runtime()
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


# --- KB learning loop -------------------------------------------------------------------------
def _trainer(_args: argparse.Namespace) -> int:
    """Trains approved KB changes one at a time and loads each new model into every Rasa process."""
    from bot.runtime import build_runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with build_runtime() as runtime:
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
    channel = subparsers.add_parser("channel", help="run one channel's worker (Telegram polling, e-mail reader)")
    channel.add_argument("name", choices=CHANNELS)
    channel.set_defaults(func=_channel)
    deliveries = subparsers.add_parser("deliveries", help="deliver queued outbound messages, retrying failures")
    deliveries.set_defaults(func=_deliveries)
    trainer = subparsers.add_parser("trainer", help="train approved KB changes and load the model into every Rasa process")
    trainer.set_defaults(func=_trainer)
