"""The Telegram channel's hooks for the channel registry (bot.channels.registry).

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

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.outbox.delivery import DeliveryService
    from bot.channels.telegram.sender import TelegramSender
    from bot.core.conversation import Conversation
    from bot.settings import Settings

logger = logging.getLogger(__name__)


def build_sender(settings: Settings) -> TelegramSender:
    from bot.channels.telegram.application import build_bot
    from bot.channels.telegram.sender import TelegramSender

    return TelegramSender(build_bot(settings))


def build_router(settings: Settings, conversation: Conversation, delivery: DeliveryService) -> APIRouter | None:
    if settings.telegram_mode != "webhook":
        return None
    from bot.channels.telegram.application import build_application
    from bot.channels.telegram.handlers import TelegramHandlers
    from bot.channels.telegram.webhook import webhook_router

    from bot.store.db import session_factory

    application = build_application(settings, polling=False)
    TelegramHandlers(conversation, delivery, session_factory(settings.database_url),
                     settle_seconds=2 * settings.network_timeout_seconds).install(application)
    return webhook_router(settings, application)


def needs_worker(settings: Settings) -> bool:
    return settings.telegram_mode == "polling"


def run_worker(settings: Settings) -> int:
    if not needs_worker(settings):
        print("Telegram is in webhook mode: the API receives its updates; no worker needed")
        return 2
    return asyncio.run(_poll_until_signalled(settings))


def delivery_service(settings: Settings, sessions, senders) -> DeliveryService:
    from bot.outbox.delivery import DeliveryService

    return DeliveryService(
        sessions,
        senders,
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=settings.delivery_backoff_seconds,
        backoff_max_seconds=settings.delivery_backoff_max_seconds,
    )


async def _poll_until_signalled(settings: Settings) -> int:
    from telegram.error import InvalidToken

    from bot.channels.telegram.application import build_application, poll
    from bot.channels.telegram.handlers import TelegramHandlers
    from bot.channels.telegram.sender import TelegramSender
    from bot.core.conversation import Conversation
    from bot.core.rasa_client import RasaClient
    from bot.store.db import session_factory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sessions = session_factory(settings.database_url)
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)
    try:
        application = build_application(settings, polling=True)
        # Replies go out through the application's own (already initialised) bot.
        delivery = delivery_service(settings, sessions, {"telegram": TelegramSender(application.bot)})
        TelegramHandlers(Conversation(settings, sessions, rasa), delivery, sessions,
                         settle_seconds=2 * settings.network_timeout_seconds).install(application)
        await poll(application, stop, poll_interval=settings.telegram_poll_interval_seconds,
                   retry_unstored_seconds=settings.telegram_retry_unstored_seconds)
    except InvalidToken:
        logger.error("Telegram rejected the bot token: check CRM_TELEGRAM_BOT_TOKEN")
        return 2
    finally:
        rasa.close()
    return 0
