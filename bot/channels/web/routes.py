"""The citizens' web chat's pages and endpoints (``/chat``): public, and protecting itself.

A visitor is a cookie (``bot.channels.web.chat``); every write checks the
CSRF token derived from it and the request's origin, and is rate limited per
cookie and per address. Messages go through the runtime's ``Conversation``,
the same path as ``POST /api/v1/messages``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bot.channels.web import chat
from bot.core.inbound import InboundMessage, KbChoice
from bot.http_security import SecurityHeadersMiddleware, client_ip
from bot.privacy.notice import notice_text
from bot.texts import DEFAULT_LANGUAGE
from bot.texts import text as catalogue_text

if TYPE_CHECKING:
    from bot.channels.contract import ChannelServices
    from bot.core.conversation import Conversation

HERE = Path(__file__).resolve().parent
STATIC_PREFIX = "/chat/static"


class WebChat:
    """What the chat's routes share in one app; ``conversation`` may be replaced (tests' stand-ins)."""

    def __init__(self, services: ChannelServices) -> None:
        self.conversation: Conversation = services.conversation
        self.sessions = services.sessions
        self.cookie_secure = bool(getattr(services.settings, "console_cookie_secure", False))
        # The same notice every channel sends on first contact (bot.privacy.notice), shown in the page.
        self.privacy_notice = notice_text(services.settings)
        self.limiters = chat.rate_limiters(getattr(services, "shared_redis", None))
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=env)


def mount(app: FastAPI, services: ChannelServices) -> WebChat:
    """Serve the web chat from ``app``: its routes, its static files and its security headers."""
    web_chat = WebChat(services)
    app.state.web_chat = web_chat
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="chat-static")
    app.include_router(router)
    app.add_middleware(SecurityHeadersMiddleware, prefixes=("/chat",), static_prefix=STATIC_PREFIX)
    return web_chat


def _web_chat(request: Request) -> WebChat:
    return request.app.state.web_chat


def _chat_error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


router = APIRouter()


@router.get("/chat", include_in_schema=False)
def chat_page(request: Request):
    web_chat = _web_chat(request)
    cookie = request.cookies.get(chat.COOKIE)
    fresh = not chat.valid_visitor(cookie)
    if fresh:
        cookie = chat.new_visitor()
    response = web_chat.templates.TemplateResponse(
        request,
        "chat.html",
        {"token": chat.csrf_token(cookie), "max_chars": chat.MAX_TEXT_CHARS,
         "cookie_days": chat.COOKIE_MAX_AGE_DAYS, "t": catalogue_text, "language": DEFAULT_LANGUAGE,
         "privacy_notice": web_chat.privacy_notice},
    )
    if fresh:
        response.set_cookie(
            chat.COOKIE, cookie, max_age=chat.COOKIE_MAX_AGE_DAYS * 86400, path=chat.COOKIE_PATH,
            httponly=True, secure=web_chat.cookie_secure, samesite="strict",
        )
    return response


def _visitor(request: Request) -> str | JSONResponse:
    """The visitor's cookie after the CSRF checks, or the error response to send."""
    cookie = request.cookies.get(chat.COOKIE)
    if not chat.valid_visitor(cookie):
        return _chat_error(403, "no_session", catalogue_text("web.error.no_session"))
    origin = request.headers.get("origin")
    host = (request.headers.get("host") or "").lower()
    if origin is not None and origin.split("://", 1)[-1].lower() != host:
        return _chat_error(403, "cross_site", catalogue_text("web.error.cross_site"))
    if not chat.token_matches(cookie, request.headers.get(chat.TOKEN_HEADER)):
        return _chat_error(403, "bad_token", catalogue_text("web.error.bad_token"))
    return cookie


@router.post("/chat/messages", include_in_schema=False)
async def chat_send(request: Request):
    cookie = _visitor(request)
    if isinstance(cookie, JSONResponse):
        return cookie
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _chat_error(415, "unsupported_media_type", catalogue_text("web.error.not_json"))
    web_chat = _web_chat(request)
    per_cookie, per_ip = web_chat.limiters
    wait = per_cookie.retry_after(cookie) or per_ip.retry_after(client_ip(request))
    if wait:
        return _chat_error(429, "too_many_messages",
                           catalogue_text("web.too_many_messages", seconds=wait),
                           {"Retry-After": str(wait)})
    body = await request.body()
    if len(body) > chat.MAX_BODY_BYTES:
        return _chat_error(413, "too_large", catalogue_text("web.error.too_large", limit=chat.MAX_TEXT_CHARS))
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _chat_error(400, "invalid_json", catalogue_text("web.error.invalid_json"))
    text = data.get("text") if isinstance(data, dict) else None
    client_id = data.get("client_id") if isinstance(data, dict) else None
    # A "Do you mean ...?" button: ``text`` is its title, what the citizen "said".
    raw_choice = data.get("choice") if isinstance(data, dict) else None
    # The browser's language (the page sends ``navigator.language``): a hint for the core.
    browser_language = data.get("language") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        return _chat_error(422, "empty", catalogue_text("web.error.empty"))
    if len(text) > chat.MAX_TEXT_CHARS:
        return _chat_error(413, "too_large", catalogue_text("web.error.too_large", limit=chat.MAX_TEXT_CHARS))
    if client_id is not None and not chat.valid_client_id(client_id):
        return _chat_error(422, "invalid_client_id", catalogue_text("web.error.invalid_client_id"))
    if browser_language is not None and not chat.valid_language(browser_language):
        return _chat_error(422, "invalid_language", catalogue_text("web.error.invalid_language"))
    choice = None
    if raw_choice is not None:
        choice = KbChoice.decode(raw_choice) if isinstance(raw_choice, str) else None
        if choice is None:
            return _chat_error(422, "invalid_choice", catalogue_text("web.error.invalid_choice"))
    address = chat.sender_address(cookie)
    inbound = InboundMessage(
        channel=chat.CHANNEL,
        sender=address,
        text=text,
        external_id=chat.external_id(address, client_id) if client_id else None,
        metadata={"source": "web_chat"},
        choice=choice,
        language_hint=chat.language_hint(browser_language, request.headers.get("accept-language")),
    )
    handled = await run_in_threadpool(web_chat.conversation.handle_inbound, inbound)
    replies = [{"id": rid, "text": text, "choices": None}
               for rid, text in zip(handled.reply_ids, handled.replies, strict=False)]
    # The core attaches the options to the last reply, the one that asks; worded like it.
    choices = chat.chat_choices(handled.choices, handled.language)
    if replies and choices is not None:
        replies[-1]["choices"] = choices.as_json()
    return JSONResponse({
        "message_id": handled.message_id,
        "duplicate": handled.duplicate,
        "replies": replies,
        "ticket": handled.ticket.id if handled.ticket is not None else None,
    })


@router.get("/chat/messages", include_in_schema=False)
def chat_poll(request: Request, after: int = 0):
    cookie = _visitor(request)
    if isinstance(cookie, JSONResponse):
        return cookie
    address = chat.sender_address(cookie)
    with _web_chat(request).sessions.begin() as session:
        lines = chat.fetch_lines(session, address, after=max(after, 0))
    return JSONResponse({
        "messages": [
            {"id": line.id, "direction": line.direction, "text": line.text, "author": line.author,
             "client_id": line.client_id, "at": line.created_at.isoformat(),
             "choices": line.choices.as_json() if line.choices is not None else None}
            for line in lines
        ]
    })
