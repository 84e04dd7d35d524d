"""`python -m bot channel <name>` (a channel's own worker) and `python -m bot deliveries`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal


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


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from bot.channels.registry import CHANNELS

    channel = subparsers.add_parser("channel", help="run one channel's worker (Telegram polling, e-mail reader)")
    channel.add_argument("name", choices=CHANNELS)
    channel.set_defaults(func=_channel)
    deliveries = subparsers.add_parser("deliveries", help="deliver queued outbound messages, retrying failures")
    deliveries.set_defaults(func=_deliveries)
