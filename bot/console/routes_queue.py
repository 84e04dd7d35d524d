"""The start page (departments with their counts), a department's queue, and its JSON for live updates."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request

from bot.console.alerts import alert_count, alert_rows
from bot.console.auth import ConsoleError, CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.languages import language_name
from bot.console.queues import (
    STATUS_FILTERS,
    QueueFilters,
    channels_in_use,
    department_overview,
    languages_in_use,
    queue_counts,
    queue_rows,
)
from bot.console.web import render, time_left
from bot.store.types import utcnow
from bot.tickets.priority import PRIORITIES

router = APIRouter()


def _department_names(ctx: ConsoleContext) -> dict[str, str]:
    return {code: department.name for code, department in ctx.kb().departments.items()}


def _visible_department(ctx: ConsoleContext, staff: CurrentStaff, department: str) -> str:
    names = _department_names(ctx)
    if department not in names or not staff.can_see(department):
        raise ConsoleError(404, "There is no such queue, or it is not one of your departments.")
    return names[department]


@router.get("/console/", include_in_schema=False)
def overview(
    request: Request,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    names = _department_names(ctx)
    visible = staff.visible_departments(list(names))
    with ctx.sessions() as session:
        counts = department_overview(session, visible, staff_id=staff.user_id)
        alerts = alert_count(session, staff.user_id, visible)
    departments = [(code, names[code], counts[code]) for code in visible]
    return render(request, "overview.html", {"departments": departments, "alert_count": alerts}, staff=staff)


@router.get("/console/alerts", include_in_schema=False)
def alerts_page(
    request: Request,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    """Tickets near or past their due time that concern this member of staff, newest alert first."""
    names = _department_names(ctx)
    visible = staff.visible_departments(list(names))
    mine = request.query_params.get("mine", "") in ("1", "on", "true")
    with ctx.sessions() as session:
        rows = alert_rows(session, staff.user_id, visible, mine_only=mine)
    return render(request, "alerts.html", {"rows": rows, "names": names, "mine": mine, "now": utcnow(),
                                           "main_language": ctx.kb().default_language}, staff=staff)


def _filters(request: Request) -> QueueFilters:
    q = request.query_params
    return QueueFilters.parse(
        status=q.get("status", "active"), priority=q.get("priority", ""), channel=q.get("channel", ""),
        mine=q.get("mine", ""), unassigned=q.get("unassigned", ""), overdue=q.get("overdue", ""),
        language=q.get("language", ""),
    )


def configured_languages(ctx: ConsoleContext) -> list[str]:
    """``CRM_LANGUAGES``, or when it is empty every language the KB has text in."""
    return ctx.settings.language_list or ctx.kb().languages


@router.get("/console/queue/{department}", include_in_schema=False)
def queue_page(
    request: Request,
    department: str,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    name = _visible_department(ctx, staff, department)
    filters = _filters(request)
    now = utcnow()
    main = ctx.kb().default_language
    with ctx.sessions() as session:
        rows = queue_rows(session, department, filters, staff_id=staff.user_id, now=now, default_language=main)
        counts = queue_counts(session, department, staff_id=staff.user_id, now=now)
        channels = channels_in_use(session, department)
        languages = languages_in_use(session, department, configured=configured_languages(ctx), default_language=main)
        alerts = alert_count(session, staff.user_id, [department])
    return render(
        request,
        "queue.html",
        {
            "department": department,
            "department_name": name,
            "filters": filters,
            "rows": rows,
            "counts": counts,
            "now": now,
            "channels": channels,
            "languages": languages,
            "status_filters": STATUS_FILTERS,
            "priorities": PRIORITIES,
            "alert_count": alerts,
            "api_url": f"/console/api/queue/{department}?{urlencode(filters.query_params())}",
        },
        staff=staff,
    )


@router.get("/console/api/queue/{department}", include_in_schema=False)
def queue_json(
    request: Request,
    department: str,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    """What the queue page's script polls; texts are data here and the script inserts them as text."""
    _visible_department(ctx, staff, department)
    filters = _filters(request)
    now = utcnow()
    with ctx.sessions() as session:
        rows = queue_rows(session, department, filters, staff_id=staff.user_id, now=now,
                          default_language=ctx.kb().default_language)
        counts = queue_counts(session, department, staff_id=staff.user_id, now=now)
    when = ctx.templates.env.filters["when"]
    return {
        "counts": {
            "active": counts.active, "overdue": counts.overdue, "unassigned": counts.unassigned,
            "mine": counts.mine, **counts.by_status,
        },
        "tickets": [
            {
                "id": row.public_id,
                "url": f"/console/tickets/{row.public_id}",
                "subject": row.subject,
                "status": row.status,
                "priority": row.priority,
                "reason": row.reason,
                "channel": row.channel,
                "language": row.language,
                "language_name": language_name(row.language),
                "created": when(row.created_at),
                "due": when(row.due_at),
                "due_at": row.due_at.isoformat(),
                "time_left": time_left(row.due_at, now)[0],
                "overdue": row.overdue,
                "assignee": row.assignee or "",
                "vulnerable": row.vulnerable,
                "vulnerable_reason": row.vulnerable_reason or "",
            }
            for row in rows
        ],
    }
