"""Rendering pages: the Jinja2 environment (autoescaped), its filters, and ``render``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.console.context import TEMPLATES_DIR
from bot.console.languages import language_label, language_name
from bot.store.types import utcnow


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_duration(delta: timedelta) -> str:
    """Whole minutes, hours and days as an agent reads them at a glance: "2 d 3 h", "5 h 10 min", "7 min"."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def time_left(due_at: datetime, now: datetime | None = None) -> tuple[str, bool]:
    """("3 h 20 min left", False) or ("overdue by 2 h", True)."""
    delta = due_at - (now or utcnow())
    if delta.total_seconds() < 0:
        return f"overdue by {format_duration(delta)}", True
    return f"{format_duration(delta)} left", False


def make_templates(timezone: str = "UTC") -> Jinja2Templates:
    zone = _zone(timezone)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        # Everything is escaped unless a template says otherwise, and none of ours does for citizen text.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime(fmt)

    def iso(value: datetime | None) -> str:
        return "" if value is None else value.isoformat()

    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["duration"] = format_duration
    env.filters["hours"] = lambda value: "" if value is None else f"{float(value):g}"
    env.filters["language_name"] = language_name
    env.filters["language_label"] = language_label
    env.globals["time_left"] = time_left
    env.globals["timezone_name"] = zone.key
    return Jinja2Templates(env=env)


def nav_for(request: Request, staff: Any) -> list[tuple[str, str]]:
    if staff is None:
        return []
    ctx = request.app.state.console
    return [(label, path) for label, path, role in ctx.nav if staff.has_role(role)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    staff: Any = None,
    status_code: int = 200,
):
    """A page with the signed-in staff member, their CSRF token and the navigation in its context."""
    ctx = request.app.state.console
    staff = staff if staff is not None else getattr(request.state, "staff", None)
    full = {
        "staff": staff,
        "csrf_token": staff.csrf_token if staff is not None else "",
        "nav": nav_for(request, staff),
        "current_path": request.url.path,
        "poll_seconds": ctx.settings.console_poll_seconds,
        **(context or {}),
    }
    return ctx.templates.TemplateResponse(request, template, full, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    """After a POST: 303 so the browser GETs the result (no resubmission on reload)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/console/") -> str:
    """Only a path inside the console: ``next=//evil.example`` must not become an open redirect."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return default
    return target
