"""Webhook mode: Telegram POSTs updates to the API, which hands them to the Application.

Every request must carry the secret we registered with setWebhook in
``X-Telegram-Bot-Api-Secret-Token``; anything else is refused before its body
is read, so nobody who merely knows the URL can speak for a citizen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import Application

from bot.channels.telegram.application import initialize, retry_until_done
from bot.channels.telegram.handlers import ALLOWED_UPDATES
from bot.channels.telegram.unstored import RetryWindow, unstored_updates
from bot.settings import Settings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/channels/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def secret_matches(supplied: str | None, expected: str) -> bool:
    if not supplied:
        return False
    return secrets.compare_digest(supplied.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


@dataclass
class _State:
    application: Application | None = None
    ready: bool = False


async def register_webhook(application: Application, settings: Settings, stop: asyncio.Event) -> bool:
    """Initialise the bot and tell Telegram where to post, retrying while Telegram is unreachable."""
    if not await initialize(application, stop):
        return False

    async def register() -> None:
        await application.bot.set_webhook(
            url=settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
        await application.start()

    if not await retry_until_done(stop, register, lambda exc: f"setWebhook failed ({type(exc).__name__}: {exc.message})",
                                  retry_invalid_token=True):
        return False
    logger.info("Telegram webhook registered for @%s", application.bot.username)
    return True


def webhook_router(settings: Settings, application: Application) -> APIRouter:
    state = _State(application=application)
    window = RetryWindow(settings.telegram_retry_unstored_seconds)
    expected = settings.telegram_webhook_secret.get_secret_value()

    @asynccontextmanager
    async def lifespan(_app: object):
        stop = asyncio.Event()

        async def start() -> None:
            try:
                state.ready = await register_webhook(application, settings, stop)
            except InvalidToken:
                logger.error("Telegram rejected the bot token (check CRM_TELEGRAM_BOT_TOKEN); "
                             "Telegram's webhook calls are refused until it is fixed")

        # The API serves other channels too: it starts at once, and Telegram (which
        # retries on 503) is served as soon as the webhook is registered.
        starting = asyncio.create_task(start())
        try:
            yield
        finally:
            stop.set()
            await starting
            state.ready = False
            if application.running:
                await application.stop()  # finishes the updates already accepted
            await application.shutdown()

    router = APIRouter(lifespan=lifespan)

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> JSONResponse:
        if not secret_matches(request.headers.get(SECRET_HEADER), expected):
            logger.warning("Telegram webhook call without the right secret token from %s",
                           request.client.host if request.client else "?")
            return JSONResponse({"error": "forbidden", "detail": "missing or wrong secret token"}, status_code=403)
        if not state.ready:
            return JSONResponse({"error": "unavailable", "detail": "Telegram is starting"}, status_code=503,
                                headers={"Retry-After": "5"})
        declared = request.headers.get("content-length") or ""
        if declared.isdigit() and int(declared) > settings.max_body_bytes:
            return JSONResponse({"error": "payload_too_large", "detail": "update too large"}, status_code=413)
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return JSONResponse({"error": "payload_too_large", "detail": "update too large"}, status_code=413)
        try:
            update = Update.de_json(json.loads(body), application.bot)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("unreadable Telegram update: %s", type(exc).__name__)
            return JSONResponse({"error": "invalid_update", "detail": "not a Telegram update"}, status_code=400)
        if update is None:
            return JSONResponse({"error": "invalid_update", "detail": "not a Telegram update"}, status_code=400)
        # Handled before answering (one chat at a time, chats side by side): a 200 tells
        # Telegram it may forget the update, so it must be stored first. A crash before the
        # 200 makes Telegram resend it; the store's idempotency prevents a second answer.
        processor = application.update_processor
        await processor.process_update(update, application.process_update(update))
        if unstored_updates(application, [update.update_id]) and window.keep(update.update_id):
            # Not stored (the database is down): Telegram retries a failed delivery later.
            return JSONResponse({"error": "unavailable", "detail": "the update could not be stored"},
                                status_code=503, headers={"Retry-After": "30"})
        window.done([update.update_id])
        return JSONResponse({"ok": True})

    return router
