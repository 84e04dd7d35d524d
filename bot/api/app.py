"""The generic channel API: the city's website chat, an SMS gateway or any other
integration posts citizen messages here and gets the replies back.

Every rejection is a 4xx with a JSON body ``{"error": ..., "detail": ...}``
that says what to fix; a message that passes validation is stored before
anything else happens to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api.errors import ApiError
from bot.api.observability import RequestIdMiddleware
from bot.api.observability import build_router as build_metrics_router
from bot.api.privacy import build_privacy_router
from bot.api.schemas import HandlingOut, MessageIn, MessageOut, OptionOut, ReplyOut, TicketOut, printable
from bot.api.tickets import build_router as build_tickets_router
from bot.channels.web.routes import mount as mount_web_chat
from bot.console.app import register as register_console
from bot.core.conversation import Conversation, HandledMessage
from bot.core.inbound import InboundMessage, language_tag
from bot.runtime import Runtime
from bot.store.messages import inbound_text

logger = logging.getLogger(__name__)

# Deepest nesting of arrays and objects a request body may have: far more than any message needs,
# far less than what overflows the parser's (or later the JSON column serializer's) stack.
MAX_JSON_DEPTH = 32
# Python refuses to convert longer integer literals (sys.get_int_max_str_digits()).
MAX_INT_DIGITS = 4300


class _BadJson(ValueError):
    """A body that is JSON but that the API will not take apart; the message is for the client."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Parsers disagree on which of two equal keys wins ("text" twice): refuse rather than guess."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _BadJson(f"duplicate key {printable(key)[:60]!r}")
            seen.add(key)
    return obj


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadJson(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json_body(decoded: str) -> Any:
    """``json.loads`` with the limits the API documents, each a 400 ``invalid_json`` with its reason."""
    try:
        data = json.loads(decoded, object_pairs_hook=_reject_duplicate_keys, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except _BadJson as exc:
        raise ApiError(400, "invalid_json", f"request body is not acceptable JSON: {exc}") from None
    except RecursionError:  # nested deeper than the interpreter's stack allows
        pass
    else:
        if _depth(data) <= MAX_JSON_DEPTH:
            return data
    raise ApiError(400, "invalid_json", f"request body is nested more than {MAX_JSON_DEPTH} levels deep")


def idempotency_key(key_tag: str, message_id: str) -> str:
    """The stored form of a client's ``message_id``: namespaced by the API key that sent it, so
    that two integrations (or a client and a provider's own ids) never share a key; scoping to
    the sender is the store's unique constraint (identity, direction, external_id)."""
    return f"api:{key_tag}:{message_id}"


def _key_tag(key: bytes) -> str:
    """Eight hex digits of a hash: tells a handful of keys apart without storing anything
    that would help to guess one."""
    return hashlib.sha256(b"crm-idempotency-scope:" + key).hexdigest()[:8]


# How often the API looks for "Do you mean ...?" questions that timed out (bot.core.clarification).
OFFER_EXPIRY_POLL_SECONDS = 20.0


async def _expire_offers_forever(conversation: Conversation, stop: asyncio.Event) -> None:
    """Unanswered offers become tickets even when nobody writes again; several API processes may
    run this at once (each offer is claimed once)."""
    while not stop.is_set():
        try:
            await run_in_threadpool(conversation.expire_offers)
        except Exception:  # the database went away for a moment; try again on the next pass
            logger.exception("expiring unanswered offers failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=OFFER_EXPIRY_POLL_SECONDS)
        except asyncio.TimeoutError:
            pass


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": printable(detail)}, status_code=status, headers=headers)


def create_app(runtime: Runtime) -> FastAPI:
    """The API (and the console and web chat it serves) on ``runtime``'s services; closes them at shutdown."""
    settings = runtime.settings
    sessions = runtime.sessions
    conversation = runtime.conversation
    delivery = runtime.delivery
    api_keys = [key.encode() for key in settings.api_key_list]
    key_tags = {key: _key_tag(key) for key in api_keys}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = asyncio.Event()
        expiry = asyncio.create_task(_expire_offers_forever(conversation, stop))
        yield
        stop.set()
        await expiry
        runtime.close()

    app = FastAPI(
        title="Citizen relationship assistant API",
        version="1.0",
        description="Send a citizen's message from any channel; get the assistant's replies and how "
        "the message was handled (answered from the knowledge base, or escalated as a ticket).",
        lifespan=lifespan,
    )

    # Every request runs under a request id (X-Request-ID in and out; docs/observability.md).
    app.add_middleware(RequestIdMiddleware)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            location = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
            problems.append({"field": location or "body", "message": err.get("msg", "invalid")})
        return _error(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", exc.detail)

    async def require_api_key(request: Request) -> None:
        """Also notes which key it was (``request.state.key_tag``): idempotency keys are scoped to it."""
        supplied = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization") or ""
        if not supplied and auth.lower().startswith("bearer "):
            supplied = auth[7:].strip()
        if not supplied:
            raise ApiError(401, "unauthorized", "missing API key: send it in the X-API-Key header",
                           {"WWW-Authenticate": "Bearer"})
        candidate = supplied.encode("utf-8", "surrogateescape")
        matched = [key for key in api_keys if secrets.compare_digest(candidate, key)]
        if not matched:
            raise ApiError(401, "unauthorized", "invalid API key", {"WWW-Authenticate": "Bearer"})
        request.state.key_tag = key_tags[matched[0]]

    async def parsed_body(request: Request) -> MessageIn:
        """Parse by hand so that size, encoding and JSON errors each get a precise message."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise ApiError(413, "payload_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.max_body_bytes:
                raise ApiError(413, "payload_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
        try:
            decoded = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "invalid_encoding", f"request body is not valid UTF-8 (byte {exc.start})") from None
        data = parse_json_body(decoded)
        try:
            return MessageIn.model_validate(data, context={"channels": settings.channel_list})
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise RequestValidationError(exc.errors()) from None  # type: ignore[attr-defined]

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        """Liveness: the process answers. Messages are accepted (and kept) from this moment on."""
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        """Readiness: Rasa has loaded its model. Before that a message is stored and escalated
        ("can't process your message right now"), so a load balancer should wait for this."""
        if await run_in_threadpool(runtime.rasa.ready):
            return JSONResponse({"status": "ready"})
        return _error(503, "not_ready", "the assistant (Rasa) is not answering yet; messages are escalated until it is")

    @app.post(
        "/api/v1/messages",
        response_model=MessageOut,
        dependencies=[Depends(require_api_key)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": MessageIn.model_json_schema()}},
            }
        },
        responses={
            400: {"description": "body is not UTF-8 JSON"},
            401: {"description": "missing or wrong API key"},
            409: {"description": "this sender already sent a different text with this message_id"},
            413: {"description": "body too large"},
            422: {"description": "a field is missing or invalid"},
        },
        summary="Handle a citizen's message",
    )
    async def post_message(request: Request) -> MessageOut:
        payload = await parsed_body(request)
        inbound = InboundMessage(
            channel=payload.channel,
            sender=payload.sender,
            text=payload.text,
            external_id=None if payload.message_id is None else idempotency_key(request.state.key_tag, payload.message_id),
            metadata=payload.metadata or {},
            language_hint=language_tag(payload.language),
        )
        handled = await run_in_threadpool(conversation.handle_inbound, inbound)
        # Checked after the fact, on the row the store kept: two racing requests with one key
        # then still get one message and, for the one whose text differs, a 409.
        if handled.duplicate and await run_in_threadpool(stored_text, handled.message_id) != payload.text:
            raise ApiError(
                409,
                "message_id_reused",
                f"message_id {payload.message_id!r} was already used by this sender for a different text; "
                "send a new message_id for a new message",
            )
        return _to_out(handled)

    def stored_text(message_id: int) -> str | None:
        with sessions() as session:
            return inbound_text(session, message_id)

    # Staff replies, ticket detail, and replies fetched by pull-only clients (bot/api/tickets.py).
    app.include_router(build_tickets_router(settings, sessions, delivery), dependencies=[Depends(require_api_key)])

    # GET /metrics (Prometheus), for loopback and private addresses or with CRM_METRICS_TOKEN.
    app.include_router(build_metrics_router(runtime))
    # A citizen's one-time download of their data (bot/api/privacy.py): the token is the key.
    app.include_router(build_privacy_router(sessions))

    # Webhooks of the channels that are on (WhatsApp; Telegram in webhook mode).
    for router in runtime.routers():
        app.include_router(router)

    # The citizens' web chat (/chat), through this same Conversation, and the agent console (/console).
    mount_web_chat(app, runtime)
    register_console(app, runtime)

    return app


def _to_out(handled: HandledMessage) -> MessageOut:
    ticket = None
    if handled.ticket is not None:
        ticket = TicketOut(
            id=handled.ticket.id,
            status=handled.ticket.status,
            department=handled.ticket.department,
            priority=handled.ticket.priority,
            due_at=handled.ticket.due_at,
            created=handled.ticket.created,
        )
    return MessageOut(
        message_id=handled.message_id,
        duplicate=handled.duplicate,
        replies=[ReplyOut(text=text, options=_options(handled) if i == len(handled.replies) - 1 else None)
                 for i, text in enumerate(handled.replies)],
        handling=HandlingOut(
            kind=handled.handling,
            intent=handled.intent,
            confidence=handled.confidence,
            kb_entry_id=handled.kb_entry_id,
            ticket=ticket,
            offered_kb_entries=handled.offered_entries if handled.choices else [],
        ),
    )


def _options(handled: HandledMessage) -> list[OptionOut] | None:
    if not handled.choices:
        return None
    options = [OptionOut(number=o["n"], title=o["title"], kb_entry_id=o["entry"]) for o in handled.choices["options"]]
    return options + [OptionOut(number=0, title=handled.choices["none"]["title"], kb_entry_id=None)]
