"""Announcements to subscribed citizens, for supervisors: compose, preview with the count, confirm.

The preview shows the message as citizens will read it (escaped like every text here) and how
many will receive it on which channel; only a confirmed preview is sent, and its messages are
queued throttled (bot.notices.announcements). Nobody subscribed: the supervisor is told, and
nothing is stored or sent. The audit log records who sent what to whom and how many.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import func, select

from bot.console.auth import CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.web import redirect, render
from bot.notices import announcements as service
from bot.notices.models import Announcement
from bot.staff.audit import audit
from bot.store.models import Message

router = APIRouter()
supervisor = require_staff("supervisor")
RECENT = 20


def _audience_value(audience: service.Audience) -> str:
    return f"{audience.kind}:{audience.id}"


def _split(value: str) -> tuple[str, str]:
    kind, _, audience_id = (value or "").partition(":")
    return kind, audience_id


def _recent(session) -> list[dict]:
    rows = list(session.scalars(select(Announcement).order_by(Announcement.id.desc()).limit(RECENT)))
    counts: dict[int, dict[str, int]] = {}
    if rows:
        announcement = Message.meta[service.META_KEY].as_integer()
        for announcement_id, status, count in session.execute(
            select(announcement, Message.delivery_status, func.count())
            .where(Message.direction == "out", Message.author == service.AUTHOR,
                   announcement.in_([row.id for row in rows]))
            .group_by(announcement, Message.delivery_status)
        ):
            counts.setdefault(announcement_id, {})[status or ""] = count
    return [{"row": row, "counts": counts.get(row.id, {})} for row in rows]


def _page(request: Request, staff: CurrentStaff, ctx: ConsoleContext, *, form: dict | None = None,
          error: str | None = None, preview: service.Preview | None = None, status_code: int = 200):
    form = {"audience": "", "text": "", **(form or {})}
    with ctx.sessions() as session:
        recent = _recent(session)
    return render(request, "announcements.html", {
        "form": form, "error": error, "preview": preview, "recent": recent,
        "audiences": [(_audience_value(a), a) for a in service.audiences(ctx.settings)],
        "channels": sorted(ctx.push_channels), "done": request.query_params.get("done") == "sent",
        "rate": ctx.settings.announcement_rate_per_minute,
    }, staff=staff, status_code=status_code)


@router.get("/console/announcements", include_in_schema=False)
def announcements_page(request: Request, staff: CurrentStaff = Depends(supervisor),
                       ctx: ConsoleContext = Depends(get_context)):
    return _page(request, staff, ctx)


@router.post("/console/announcements/preview", include_in_schema=False)
def announcement_preview(
    request: Request,
    audience: str = Form(""),
    text: str = Form(""),
    staff: CurrentStaff = Depends(supervisor),
    ctx: ConsoleContext = Depends(get_context),
):
    form = {"audience": audience, "text": text}
    kind, audience_id = _split(audience)
    try:
        with ctx.sessions() as session:
            shown = service.preview(session, ctx.settings, kind, audience_id, text, ctx.push_channels)
    except service.AnnouncementRefused as exc:
        return _page(request, staff, ctx, form=form, error=str(exc), status_code=400)
    error = None
    if not shown.recipients:
        error = (f"Nobody would receive this announcement: no citizen we can write to is subscribed to "
                 f"{shown.audience.name}. Nothing can be sent.")
    return _page(request, staff, ctx, form=form, preview=shown, error=error)


@router.post("/console/announcements/send", include_in_schema=False)
def announcement_send(
    request: Request,
    audience: str = Form(""),
    text: str = Form(""),
    expected: str = Form(""),
    staff: CurrentStaff = Depends(supervisor),
    ctx: ConsoleContext = Depends(get_context),
):
    """``expected``: the count the supervisor saw; if subscriptions changed meanwhile, preview again."""
    form = {"audience": audience, "text": text}
    kind, audience_id = _split(audience)
    try:
        with ctx.sessions.begin() as session:
            shown = service.preview(session, ctx.settings, kind, audience_id, text, ctx.push_channels)
            changed = str(shown.count) != expected.strip()
            if not changed:
                row, shown = service.send(session, ctx.settings, kind, audience_id, text, ctx.push_channels,
                                          created_by=staff.username)
                audit(session, staff, "announcement.send", f"announcement:{row.id}", {
                    "audience": f"{row.audience_kind}:{row.audience}", "recipients": row.recipients,
                    "by_channel": shown.by_channel, "chars": len(row.text), "text": row.text[:500]})
    except service.AnnouncementRefused as exc:
        return _page(request, staff, ctx, form=form, error=str(exc), status_code=400)
    if changed:  # rendered after the unit of work: SQLite allows one writer, and the page reads
        return _page(request, staff, ctx, form=form, preview=shown, status_code=409,
                     error=f"The number of recipients changed since the preview (now {shown.count}). "
                           "Check the preview and confirm again.")
    return redirect("/console/announcements?done=sent")
