"""The Telegram channel as the runtime sees it (``bot.channels.contract.ChannelAdapter``).

Long polling (the default) runs in a process of its own, ``python -m bot channel
telegram``; webhook mode (production behind HTTPS) is served by the API. Either
way replies go out through the delivery queue, so failed sends are retried by
``python -m bot deliveries``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from bot.channels.contract import ChannelAdapter

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.channels.contract import ChannelServices
    from bot.channels.telegram.sender import TelegramSender
    from bot.settings import Settings

logger = logging.getLogger(__name__)


def build_sender(settings: Settings) -> TelegramSender:
    from bot.channels.telegram.application import build_bot
    from bot.channels.telegram.sender import TelegramSender

    return TelegramSender(build_bot(settings))


def build_router(services: ChannelServices) -> APIRouter | None:
    settings = services.settings
    if settings.telegram_mode != "webhook":
        return None
    from bot.channels.telegram.application import build_application
    from bot.channels.telegram.handlers import TelegramHandlers
    from bot.channels.telegram.webhook import webhook_router

    application = build_application(settings, polling=False)
    TelegramHandlers(services.conversation, services.delivery, services.sessions,
                     settle_seconds=2 * settings.network_timeout_seconds).install(application)
    return webhook_router(settings, application)


def needs_worker(settings: Settings) -> bool:
    return settings.telegram_mode == "polling"


def run_worker(services: ChannelServices) -> int:
    if not needs_worker(services.settings):
        print("Telegram is in webhook mode: the API receives its updates; no worker needed")
        return 2
    return asyncio.run(_poll_until_signalled(services))


async def _poll_until_signalled(services: ChannelServices) -> int:
    from telegram.error import InvalidToken

    from bot.channels.telegram.application import build_application, poll
    from bot.channels.telegram.handlers import TelegramHandlers
    from bot.channels.telegram.sender import TelegramSender
    settings = services.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        application = build_application(settings, polling=True)
        # Replies go out through the application's own (already initialised) bot.
        delivery = services.delivery_service({"telegram": TelegramSender(application.bot)})
        TelegramHandlers(services.conversation, delivery, services.sessions,
                         settle_seconds=2 * settings.network_timeout_seconds).install(application)
        await poll(application, stop, poll_interval=settings.telegram_poll_interval_seconds,
                   retry_unstored_seconds=settings.telegram_retry_unstored_seconds)
    except InvalidToken:
        logger.error("Telegram rejected the bot token: check CRM_TELEGRAM_BOT_TOKEN")
        return 2
    return 0


ADAPTER = ChannelAdapter(
    name="telegram",
    build_sender=build_sender,
    build_router=build_router,
    run_worker=run_worker,
    needs_worker=needs_worker,
)
