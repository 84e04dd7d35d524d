"""Mounting the console into the API app: routers, static files, error pages, security headers."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from bot.console.auth import ConsoleError, NotSignedIn
from bot.console.context import STATIC_DIR, ConsoleContext, _KbCache
from bot.console.web import make_templates, render
from bot.http_security import SecurityHeadersMiddleware

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)

BASE_NAV: list[tuple[str, str, str]] = [
    ("Queues", "/console/", "agent"),
    ("Alerts", "/console/alerts", "agent"),
    ("Audit log", "/console/audit", "supervisor"),
    ("Data requests", "/console/privacy", "supervisor"),
    ("Announcements", "/console/announcements", "supervisor"),
    ("Staff", "/console/admin/staff", "admin"),
    ("Departments", "/console/admin/departments", "admin"),
    ("Model", "/console/admin/model", "admin"),
]


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/console/api/") or "application/json" in request.headers.get("accept", "")


def _insights_module():
    try:
        return importlib.import_module("bot.console.routes_insights")
    except ModuleNotFoundError as exc:
        if exc.name == "bot.console.routes_insights":
            return None
        raise


def register(app: FastAPI, runtime: Runtime) -> ConsoleContext:
    """Serve the console (and the other console modules' routes) from ``app``, on ``runtime``'s services."""
    from bot.console import (
        routes_admin,
        routes_announcements,
        routes_audit,
        routes_auth,
        routes_privacy,
        routes_queue,
        routes_ticket,
    )

    settings = runtime.settings
    insights = _insights_module()
    nav = list(BASE_NAV)
    if insights is not None:
        extra = list(getattr(insights, "NAV", []))
        nav = nav[:1] + extra + nav[1:]
    context = ConsoleContext(
        settings=settings,
        sessions=runtime.sessions,
        templates=make_templates(settings.console_timezone),
        delivery=runtime.delivery,
        nav=nav,
        push_channels=frozenset(c.name for c in runtime.channels),
        _kb_cache=_KbCache(settings.kb_dir),
    )
    app.state.console = context

    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for module in (routes_auth, routes_queue, routes_ticket, routes_admin, routes_audit, routes_privacy,
                   routes_announcements):
        app.include_router(module.router)
    if insights is not None:
        app.include_router(insights.router)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _exc: NotSignedIn):
        if _wants_json(request):
            return JSONResponse({"error": "not_signed_in", "detail": "sign in again"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError):
        if _wants_json(request):
            return JSONResponse({"error": "console_error", "detail": exc.message}, status_code=exc.status)
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status_code=exc.status)

    app.add_middleware(SecurityHeadersMiddleware, prefixes=("/console",), static_prefix="/console/static")
    return context
