"""The python-telegram-bot Application: built from settings, and run by long polling.

Webhook mode uses the same Application (see ``webhook.py``); only the way
updates arrive differs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Awaitable, Callable

from telegram import Bot
from telegram.error import InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from bot.channels.telegram.handlers import ALLOWED_UPDATES
from bot.channels.telegram.ordering import ChatOrderedUpdateProcessor
from bot.channels.telegram.unstored import RetryWindow, unstored_updates
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
    """No Updater: ``poll`` fetches updates itself (it confirms them only once handled), and
    in webhook mode they come from the API's endpoint."""
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
    del polling  # kept for callers' clarity; both modes build the same Application
    return builder.updater(None).build()


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
    return await retry_until_done(
        stop, application.initialize,
        lambda exc: f"Telegram is not reachable ({type(exc).__name__}: {exc.message})", max_pause=max_pause,
    )


async def retry_until_done(stop: asyncio.Event, call: Callable[[], Awaitable[object]],
                           describe: Callable[[TelegramError], str], *, max_pause: float = 60.0,
                           retry_invalid_token: bool = False) -> bool:
    """Await ``call()`` until it succeeds (True) or ``stop`` is set (False).

    A Telegram error is logged (``describe`` says what failed) and the call made again
    after a pause that doubles from 1 s up to ``max_pause``; setting ``stop`` ends the
    pause and the retrying. A wrong token is raised at once unless ``retry_invalid_token``;
    any other exception is raised as it is.
    """

    def worth_retrying(exc: BaseException) -> bool:
        return isinstance(exc, TelegramError) and (retry_invalid_token or not isinstance(exc, InvalidToken))

    def log(state: RetryCallState) -> None:
        pause = state.next_action.sleep if state.next_action else 0.0
        logger.warning("%s; trying again in %.0f s", describe(state.outcome.exception()), pause)

    async for attempt in AsyncRetrying(retry=retry_if_exception(worth_retrying), wait=wait_exponential(max=max_pause),
                                       sleep=functools.partial(_sleep, stop), before_sleep=log):
        if stop.is_set():
            return False
        with attempt:
            await call()
    return True


async def poll(application: Application, stop: asyncio.Event, *, poll_interval: float = 0.0,
               retry_unstored_seconds: float = 900.0) -> None:
    """Long polling until ``stop`` is set, confirming updates only once they are handled.

    python-telegram-bot's Updater confirms a batch to Telegram (the next getUpdates
    ``offset``) as soon as it has fetched it, before any handler has stored a message:
    a crash then loses those updates. Here each batch is handled first (through the
    application's update processor, so one chat stays in order and chats run side by
    side) and confirmed after. A crash makes Telegram send the batch again, and the
    store's idempotency on ``chat:message`` ids keeps it from being answered twice.

    An update whose message could not be stored (the database is down) is not confirmed
    either: the next getUpdates starts at it, after a pause that grows to 30 s, and
    Telegram sends it again with everything after it (those are already stored and are
    not answered again). Only after ``retry_unstored_seconds`` of failures is it given up
    and logged as lost, so that one message that can never be stored does not hold back
    the others for the 24 hours Telegram keeps updates.
    """
    if not await initialize(application, stop):
        return
    bot = application.bot
    try:
        await application.start()
        await retry_until_done(stop, lambda: bot.delete_webhook(drop_pending_updates=False),
                               lambda exc: f"deleteWebhook failed ({exc.message})")
        logger.info("Telegram bot @%s is polling for updates", bot.username)
        offset: int | None = None
        pause = 1.0
        window = RetryWindow(retry_unstored_seconds)
        retry_pause = 1.0
        while not stop.is_set():
            try:
                updates = await _unless_stopped(
                    stop, bot.get_updates(offset=offset, timeout=LONG_POLL_SECONDS, allowed_updates=ALLOWED_UPDATES)
                )
                if updates is None:
                    break
            except RetryAfter as exc:
                await _sleep(stop, _seconds(exc.retry_after))
                continue
            except InvalidToken:
                raise
            except TelegramError as exc:
                logger.warning("getUpdates failed (%s: %s); trying again in %.0f s", type(exc).__name__, exc.message, pause)
                await _sleep(stop, pause)
                pause = min(60.0, pause * 2)
                continue
            pause = 1.0
            if updates:
                processor = application.update_processor
                await asyncio.gather(
                    *(processor.process_update(update, application.process_update(update)) for update in updates)
                )
                offset = updates[-1].update_id + 1
                batch = [u.update_id for u in updates]
                held = next((u for u in unstored_updates(application, batch) if window.keep(u)), None)
                window.done(u for u in batch if held is None or u < held)
                if held is not None:
                    offset = held
                    logger.warning("Telegram update %s could not be stored; fetching it again in %.0f s",
                                   held, retry_pause)
                    await _sleep(stop, retry_pause)
                    retry_pause = min(30.0, retry_pause * 2)
                    continue
                retry_pause = 1.0
            if poll_interval:
                await _sleep(stop, poll_interval)
        if offset is not None:
            # Confirm the last batch, so a restart does not fetch it again.
            try:
                await bot.get_updates(offset=offset, timeout=0, allowed_updates=ALLOWED_UPDATES)
            except TelegramError:
                pass
    finally:
        if application.running:
            await application.stop()
        await application.shutdown()


async def _unless_stopped(stop: asyncio.Event, call):
    """The call's result, or None as soon as ``stop`` is set (a long poll is then abandoned)."""
    fetch = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not fetch.done():
        fetch.cancel()
        try:
            await fetch
        except (asyncio.CancelledError, TelegramError):
            pass
        return None
    return fetch.result()


def _seconds(value: object) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)  # type: ignore[union-attr]


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
