"""The audit log, for supervisors and admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from bot.console.auth import CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.web import render
from bot.staff.audit import audit_entries

router = APIRouter()
PAGE = 100


@router.get("/console/audit", include_in_schema=False)
def audit_page(
    request: Request,
    actor: str = "",
    action: str = "",
    target: str = "",
    before: int = 0,
    staff: CurrentStaff = Depends(require_staff("supervisor")),
    ctx: ConsoleContext = Depends(get_context),
):
    actor, action, target = actor.strip()[:100], action.strip()[:64], target.strip()[:200]
    with ctx.sessions() as session:
        rows = audit_entries(session, actor=actor, action=action, target=target, before_id=before or None,
                             limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "filters": {"actor": actor, "action": action, "target": target},
            "older": rows[-1].id if more and rows else None,
        },
        staff=staff,
    )
