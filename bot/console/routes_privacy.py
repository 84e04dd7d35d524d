"""Citizens' data requests, for supervisors: a copy of a citizen's data, or its erasure.

Staff act on a documented request (a letter, a form at the counter, the data protection
officer's instruction); its reference is the required reason, and both go to the audit
log with counts only. The citizen is named by one of their ticket IDs (what staff see),
their ``channel:address``, or their public id; a reference that matches nobody says only
that.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.web import render
from bot.privacy.erase import ErasureRefused, erase_and_purge
from bot.privacy.export import CitizenNotFound, export_citizen, export_zip, find_citizen
from bot.staff.audit import audit
from bot.store.models import Citizen
from bot.tickets import ids
from bot.tickets.models import Ticket

router = APIRouter()
supervisor = require_staff("supervisor")
NOT_FOUND = "No citizen matches that reference."


def _citizen(session: Session, ref: str) -> Citizen:
    ref = ref.strip()[:400]
    if not ref:
        raise CitizenNotFound(NOT_FOUND)
    canonical = ids.normalize(ref) if ":" not in ref else None
    if canonical is not None:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == canonical)).one_or_none()
        if ticket is not None:
            return session.get(Citizen, ticket.citizen_id)
    try:
        return find_citizen(session, ref)
    except CitizenNotFound:
        raise CitizenNotFound(NOT_FOUND) from None


def _page(request: Request, staff: CurrentStaff, *, form: dict | None = None, error: str | None = None,
          report=None, status_code: int = 200):
    form = {"citizen": "", "reason": "", **(form or {})}
    return render(request, "privacy.html", {"form": form, "error": error, "report": report},
                  staff=staff, status_code=status_code)


@router.get("/console/privacy", include_in_schema=False)
def privacy_page(request: Request, staff: CurrentStaff = Depends(supervisor)):
    return _page(request, staff)


@router.post("/console/privacy/export", include_in_schema=False)
def privacy_export(
    request: Request,
    citizen: str = Form(""),
    reason: str = Form(""),
    staff: CurrentStaff = Depends(supervisor),
    ctx: ConsoleContext = Depends(get_context),
):
    form = {"citizen": citizen, "reason": reason}
    reason = " ".join(reason.split())[:500]
    if not reason:
        return _page(request, staff, form=form, error="Give the request's reference as the reason.", status_code=400)
    try:
        with ctx.sessions.begin() as session:
            row = _citizen(session, citizen)
            bundle = export_citizen(session, row.id)
            # The copy is for the citizen: its page in their language.
            data = export_zip(bundle, row.language)
            audit(session, staff, "privacy.export", f"citizen:{row.public_id}",
                  {"reason": reason, "messages": len(bundle["messages"]), "tickets": len(bundle["tickets"])})
    except CitizenNotFound:
        return _page(request, staff, form=form, error=NOT_FOUND, status_code=404)
    return Response(data, media_type="application/zip", headers={
        "content-disposition": f'attachment; filename="citizen-{bundle["citizen"]["id"][:8]}.zip"',
        "cache-control": "no-store"})


@router.post("/console/privacy/erase", include_in_schema=False)
def privacy_erase(
    request: Request,
    citizen: str = Form(""),
    reason: str = Form(""),
    confirm: str = Form(""),
    staff: CurrentStaff = Depends(supervisor),
    ctx: ConsoleContext = Depends(get_context),
):
    form = {"citizen": citizen, "reason": reason}
    reason = " ".join(reason.split())[:500]
    if not reason:
        return _page(request, staff, form=form, error="Give the request's reference as the reason.", status_code=400)
    if confirm != "yes":
        return _page(request, staff, form=form, error="Tick the box to confirm: an erasure cannot be undone.",
                     status_code=400)
    try:
        with ctx.sessions() as session:
            citizen_id = _citizen(session, citizen).id
        report = erase_and_purge(ctx.sessions, ctx.settings, citizen_id, actor=staff, reason=reason)
    except (CitizenNotFound, ErasureRefused):
        return _page(request, staff, form=form, error=NOT_FOUND, status_code=404)
    return _page(request, staff, report=report)
