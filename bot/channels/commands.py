"""`python -m bot channel <name>` (a channel's own worker) and `python -m bot deliveries`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal


def _channel(args: argparse.Namespace) -> int:
    from bot.channels.registry import adapter, enabled_channels
    from bot.settings import get_settings

    settings = get_settings()
    if args.name not in enabled_channels(settings):
        print(f"the {args.name} channel is off: its settings are not given (see README, 'Channels')")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(adapter(args.name).run_worker(settings) or 0)


def _deliveries(_args: argparse.Namespace) -> int:
    from bot.outbox.delivery import DeliveryService
    from bot.channels.registry import preparers, senders
    from bot.settings import get_settings
    from bot.store.db import session_factory

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = DeliveryService(
        session_factory(settings.database_url),
        senders(settings),
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=settings.delivery_backoff_seconds,
        backoff_max_seconds=settings.delivery_backoff_max_seconds,
        preparers=preparers(settings),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run_forever(stop)

    asyncio.run(main())
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from bot.channels.registry import CHANNELS

    channel = subparsers.add_parser("channel", help="run one channel's worker (Telegram polling, e-mail reader)")
    channel.add_argument("name", choices=CHANNELS)
    channel.set_defaults(func=_channel)
    deliveries = subparsers.add_parser("deliveries", help="deliver queued outbound messages, retrying failures")
    deliveries.set_defaults(func=_deliveries)
