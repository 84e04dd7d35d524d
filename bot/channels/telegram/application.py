"""The python-telegram-bot Application: built from settings, and run by long polling.

Webhook mode uses the same Application (see ``webhook.py``); only the way
updates arrive differs.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.channels.telegram.handlers import ALLOWED_UPDATES
from bot.channels.telegram.ordering import ChatOrderedUpdateProcessor
from bot.settings import Settings

logger = logging.getLogger(__name__)

# Seconds Telegram holds a getUpdates call open when there is nothing to deliver.
LONG_POLL_SECONDS = 10


def file_url(base_url: str) -> str:
    """Telegram's file URL next to its API URL: .../bot -> .../file/bot."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return base_url.rstrip("/") + "/file"


class _RedactToken(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<bot-token>"), ()
        return True


def _protect_token(settings: Settings) -> None:
    """Telegram's URLs contain the bot token: httpx logs every URL at INFO, and
    python-telegram-bot logs its API URL at DEBUG. Neither may reach a log file."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = settings.telegram_bot_token.get_secret_value()
    for name in ("httpx", "telegram.Bot", "telegram.ext.ExtBot"):
        logger_ = logging.getLogger(name)
        if not any(isinstance(f, _RedactToken) and f.token == token for f in logger_.filters):
            logger_.addFilter(_RedactToken(token))


def build_application(settings: Settings, *, polling: bool) -> Application:
    """Without the updater in webhook mode: updates then come from the API's endpoint."""
    _protect_token(settings)
    timeout = settings.network_timeout_seconds
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(file_url(settings.telegram_base_url))
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .pool_timeout(timeout)
        .get_updates_connect_timeout(timeout)
        # getUpdates waits up to LONG_POLL_SECONDS on Telegram's side, on top of this.
        .get_updates_read_timeout(timeout)
        .get_updates_write_timeout(timeout)
        .get_updates_pool_timeout(timeout)
        .concurrent_updates(ChatOrderedUpdateProcessor())
    )
    if not polling:
        builder = builder.updater(None)
    return builder.build()


def build_bot(settings: Settings) -> Bot:
    """A bot for processes that only send (the API, the delivery worker)."""
    _protect_token(settings)
    timeout = settings.network_timeout_seconds
    request = HTTPXRequest(
        connection_pool_size=16,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_base_url,
        base_file_url=file_url(settings.telegram_base_url),
        request=request,
    )


async def initialize(application: Application, stop: asyncio.Event, *, max_pause: float = 60.0) -> bool:
    """Initialise (getMe), waiting out Telegram being unreachable rather than exiting: the
    runner would otherwise stop the whole assistant. A wrong token is raised at once.
    False if ``stop`` was set first."""
    pause = 1.0
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except InvalidToken:
            raise
        except TelegramError as exc:
            logger.warning("Telegram is not reachable (%s: %s); trying again in %.0f s",
                           type(exc).__name__, exc.message, pause)
        try:
            await asyncio.wait_for(stop.wait(), timeout=pause)
        except asyncio.TimeoutError:
            pass
        pause = min(max_pause, pause * 2)
    return False


async def poll(application: Application, stop: asyncio.Event, *, poll_interval: float = 0.0) -> None:
    """Long polling until ``stop`` is set; what ``Application.run_polling`` does, but
    stoppable from a test and patient with an unreachable Telegram at start-up."""
    if not await initialize(application, stop):
        return
    try:
        await application.start()
        await application.updater.start_polling(
            poll_interval=poll_interval,
            timeout=LONG_POLL_SECONDS,
            allowed_updates=ALLOWED_UPDATES,
            bootstrap_retries=-1,  # deleteWebhook at start-up: keep trying
        )
        me = application.bot.username
        logger.info("Telegram bot @%s is polling for updates", me)
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
