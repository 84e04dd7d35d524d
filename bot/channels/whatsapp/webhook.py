"""The webhook Meta calls: ``GET`` for the subscription handshake, ``POST`` for events.

A POST is trusted only with a valid ``X-Hub-Signature-256``; the signature is
checked on the raw body before anything parses it, and a request without one
is refused before anything is stored. A signed delivery is written to the
inbox and acknowledged; answering it happens after the 200 (processing.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot.channels.whatsapp import signature
from bot.channels.whatsapp.processing import WebhookProcessor

logger = logging.getLogger(__name__)

PATH = "/webhooks/whatsapp"


def _refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def make_router(
    *,
    processor: WebhookProcessor,
    app_secret: str,
    verify_token: str,
    max_body_bytes: int,
    sweep: bool = True,
) -> APIRouter:
    @asynccontextmanager
    async def lifespan(_app: Any):
        """Deliveries left over by a crash or a failed attempt are handled by a sweeper."""
        stop = asyncio.Event()
        task = asyncio.create_task(processor.run_sweeper(stop)) if sweep else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task

    router = APIRouter(lifespan=lifespan, include_in_schema=False)

    @router.get(PATH)
    async def verify(request: Request) -> Response:
        params = request.query_params
        token = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), verify_token.encode("utf-8")
        ):
            logger.info("WhatsApp webhook subscription verified")
            return PlainTextResponse(params.get("hub.challenge", ""), headers={"X-Content-Type-Options": "nosniff"})
        logger.warning("WhatsApp webhook verification refused (wrong mode or verify token)")
        return _refuse(403, "forbidden", "verification failed")

    @router.post(PATH)
    async def receive(request: Request, background: BackgroundTasks) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return _refuse(413, "payload_too_large", f"request body exceeds {max_body_bytes} bytes")
        header = request.headers.get(signature.HEADER)
        if not header:
            logger.warning("WhatsApp webhook without %s refused", signature.HEADER)
            return _refuse(401, "unauthorized", f"missing {signature.HEADER} header")
        if not signature.is_valid(body, header, app_secret):
            logger.warning("WhatsApp webhook with a wrong signature refused")
            return _refuse(403, "forbidden", "invalid signature")
        try:
            text = body.decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            # Signed by Meta yet unreadable: nothing to store; say so loudly.
            logger.error("signed WhatsApp webhook is not UTF-8 JSON (%s); dropped", type(exc).__name__)
            return _refuse(400, "invalid_json", "request body is not UTF-8 JSON")
        row_id = await run_in_threadpool(processor.store, text)
        background.add_task(processor.process, row_id)
        return JSONResponse({"status": "received"})

    return router
