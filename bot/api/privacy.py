"""The one-time download of a citizen's data (bot.privacy.requests), at ``/privacy/download/<token>``.

The link opens a page with a button; only the button's POST spends the token. Chat apps
(Telegram, WhatsApp) fetch links to show previews, and a GET that downloaded would be
spent by the preview before the citizen ever tapped it. Every unknown, used or expired
token gets the same page, so tokens cannot be probed.

The page is in the language of the conversation that asked for the link (its ``?lang=``), else
the browser's (``Accept-Language``), else the default: it is opened outside any turn.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape
from sqlalchemy.orm import Session, sessionmaker

from bot.http_security import SECURITY_HEADERS
from bot.privacy.requests import redeem_download
from bot.texts import DEFAULT_LANGUAGE, active_language, languages, override, text

_HEADERS = {**SECURITY_HEADERS, "cache-control": "no-store", "x-robots-tag": "noindex"}


def page_language(lang: str | None, accept_language: str | None) -> str:
    """``lang`` if it has a catalogue; else the browser's most preferred language that has one."""
    known = languages()
    if lang and lang.strip().lower() in known:
        return lang.strip().lower()
    preferred = []
    for position, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            weight = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in known and weight > 0:
            preferred.append((-weight, position, primary))
    return min(preferred)[2] if preferred else DEFAULT_LANGUAGE


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    title = escape(text("rights.download.title"))
    lang = escape(active_language())
    html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def build_privacy_router(sessions: sessionmaker[Session]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/privacy/download/{token}")
    async def download_page(token: str, request: Request, lang: str = "") -> HTMLResponse:
        # Nothing is looked up here: the page is the same for every token, good or bad.
        with override(page_language(lang, request.headers.get("accept-language"))):
            return _page(f'<p>{escape(text("rights.download.intro"))}</p>'
                         f'<form method="post"><button type="submit">{escape(text("rights.download.button"))}'
                         f"</button></form>")

    @router.post("/privacy/download/{token}")
    async def download(token: str, request: Request, lang: str = "") -> Response:
        def redeem() -> tuple[bytes, str] | None:
            with sessions.begin() as session:
                return redeem_download(session, token)

        result = await run_in_threadpool(redeem)
        if result is None:
            with override(page_language(lang, request.headers.get("accept-language"))):
                return _page(f'<p>{escape(text("rights.download.gone"))}</p>', status_code=404)
        data, filename = result
        return Response(data, media_type="application/zip", headers={
            **_HEADERS, "content-disposition": f'attachment; filename="{filename}"'})

    return router
