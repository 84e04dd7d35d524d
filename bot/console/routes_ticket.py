"""A ticket: the citizen's history, and what staff do with it (reply, note, status, assignment, priority)."""

from __future__ import annotations

import logging
from typing import Callable

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console import ticket_actions
from bot.console.access import ticket_for
from bot.console.auth import CurrentStaff, require_staff
from bot.console.canned import canned_by_id, canned_for, search
from bot.console.context import ConsoleContext, get_context
from bot.console.history import KbRef, _kb_ref, citizen_history
from bot.console.ticket_actions import ActionRefused
from bot.console.web import redirect, render, time_left
from bot.core.escalation import CITIZEN_OFFER_KEY, KB_SUGGESTIONS_KEY
from bot.identity.consent import current_consents
from bot.identity.vulnerability import on_record
from bot.staff.models import StaffUser
from bot.store.models import Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from bot.tickets.priority import PRIORITIES
from bot.tickets.replies import citizen_language
from bot.tickets.status import ALLOWED_TRANSITIONS, STATUSES

logger = logging.getLogger(__name__)

router = APIRouter()

DONE_MESSAGES = {
    "reply": "Reply queued for the citizen.",
    "note": "Internal note added.",
    "status": "Status changed.",
    "resolved_notified": "Ticket resolved; the citizen is being told.",
    "status_notified": "Status changed; the citizen is being told.",
    "assign": "Assignment changed.",
    "priority": "Priority changed.",
    "vulnerable": "Vulnerable flag changed; the due time was recomputed.",
    "citizen_vulnerable": "The citizen's record was changed.",
}


def _url(public_id: str, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items() if value)
    return f"/console/tickets/{public_id}" + (f"?{query}" if query else "")


def _ticket_page(
    request: Request,
    staff: CurrentStaff,
    ctx: ConsoleContext,
    public_id: str,
    *,
    error: str | None = None,
    drafts: dict[str, str] | None = None,
    status_code: int = 200,
):
    kb = ctx.kb()
    now = utcnow()
    with ctx.sessions() as session:
        ticket = ticket_for(session, staff, public_id)
        history = citizen_history(session, ticket, kb)
        assignee = session.get(StaffUser, ticket.assignee_id) if ticket.assignee_id else None
        last_reply = session.scalar(
            select(Message.text)
            .where(Message.ticket_id == ticket.id, Message.direction == "out", Message.author.startswith("agent:"))
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        )
        done = request.query_params.get("done", "")
        # Canned answers in the citizen's language, like everything they are sent.
        reply_language = citizen_language(session, ticket)
        suggested = canned_by_id(kb, _kb_suggestions(session, ticket.id), reply_language)
        return render(
            request,
            "ticket.html",
            {
                "ticket": ticket,
                "history": history,
                "offered": _offered(history, kb),
                "assignee": assignee,
                "assignable": ticket_actions.assignable_staff(session, ticket.department) if staff.is_supervisor else [],
                "transitions": [s for s in STATUSES if s in ALLOWED_TRANSITIONS.get(ticket.status, ())],
                "priorities": PRIORITIES,
                "canned": canned_for(kb, ticket.department, reply_language),
                "reply_language": reply_language or kb.default_language,
                "suggested": suggested,
                "department_name": kb.departments[ticket.department].name
                if ticket.department in kb.departments else ticket.department,
                "time_left": time_left(ticket.due_at, now),
                "now": now,
                "done": DONE_MESSAGES.get(done),
                "error": error,
                "drafts": drafts or {},
                "last_reply": last_reply,
                "push_channels": ctx.push_channels,
                "citizen_on_record": on_record(session, ticket.citizen_id),
                # What the citizen agreed to be sent unasked: the agent sees whether a status change is told.
                "consents": sorted(current_consents(session, ticket.citizen_id).values(), key=lambda c: c.purpose),
                "consent_channels": ticket_actions.consent_channels(session, ticket),
                "default_resolution": ticket_actions.default_resolution_message(session, ticket),
                "ticket_language": ticket.language or kb.default_language,
            },
            staff=staff,
            status_code=status_code,
        )


def _offered(history, kb) -> dict[int, list[KbRef]]:
    """The KB questions a citizen's message was answered with "Do you mean ...?" (message id -> entries).

    Kept in the message's meta when the assistant asks, whatever happened next, so the agent
    sees what the citizen was offered before choosing "none" or writing something else."""
    offered: dict[int, list[KbRef]] = {}
    for item in history.items:
        message = item.message
        if message is None or message.direction != "in" or not isinstance(message.meta, dict):
            continue
        entries = message.meta.get(CITIZEN_OFFER_KEY)
        if isinstance(entries, list):
            refs = [_kb_ref(kb, entry) for entry in entries if isinstance(entry, str) and entry]
            if refs:
                offered[message.id] = refs
    return offered


def _kb_suggestions(session: Session, ticket_id: int) -> list[str]:
    """The assistant's closest KB entries for the ticket's latest escalated message."""
    recent = session.scalars(
        select(Message.meta)
        .where(Message.ticket_id == ticket_id, Message.direction == "in")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(20)
    )
    for meta in recent:
        entries = (meta or {}).get(KB_SUGGESTIONS_KEY)
        if isinstance(entries, list) and entries:
            return entries
    return []


@router.get("/console/tickets/{public_id}", include_in_schema=False)
def ticket_page(
    request: Request,
    public_id: str,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    return _ticket_page(request, staff, ctx, public_id)


async def _deliver(ctx: ConsoleContext, message_id: int) -> None:
    """Try the channel at once; if it fails the delivery worker retries, and the page shows the status."""
    try:
        await ctx.delivery.deliver(message_id)
    except Exception:  # the reply is stored and queued; a delivery problem must not lose the agent's page
        logger.exception("immediate delivery of message %s failed; the delivery worker will retry", message_id)


@router.post("/console/tickets/{public_id}/reply", include_in_schema=False)
async def post_reply(
    request: Request,
    public_id: str,
    text: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    def work() -> tuple[int | None, str | None]:
        try:
            with ctx.sessions.begin() as session:
                ticket = ticket_for(session, staff, public_id, lock=True)
                return ticket_actions.reply(session, staff, ticket, text).id, None
        except ActionRefused as exc:
            return None, str(exc)

    message_id, error = await run_in_threadpool(work)
    if error is not None:
        return await run_in_threadpool(
            _ticket_page, request, staff, ctx, public_id, error=error, drafts={"reply": text}, status_code=400
        )
    await _deliver(ctx, message_id)
    return redirect(_url(public_id, done="reply") + f"#message-{message_id}")


def _act(
    request: Request,
    staff: CurrentStaff,
    ctx: ConsoleContext,
    public_id: str,
    action: Callable[[Session, Ticket], None],
    *,
    done: str,
    status_code: int,
    drafts: dict[str, str] | None = None,
):
    """One console action on the locked ticket in its own unit of work. A refusal rolls it back
    and shows the page again with the reason and what the agent typed; success redirects, so a
    reload does not post twice."""
    try:
        with ctx.sessions.begin() as session:
            action(session, ticket_for(session, staff, public_id, lock=True))
    except ActionRefused as exc:
        return _ticket_page(request, staff, ctx, public_id, error=str(exc), drafts=drafts, status_code=status_code)
    return redirect(_url(public_id, done=done))


@router.post("/console/tickets/{public_id}/note", include_in_schema=False)
def post_note(
    request: Request,
    public_id: str,
    text: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    return _act(
        request, staff, ctx, public_id, lambda session, ticket: ticket_actions.note(session, staff, ticket, text),
        done="note", status_code=400, drafts={"note": text},
    )


@router.post("/console/tickets/{public_id}/status", include_in_schema=False)
async def post_status(
    request: Request,
    public_id: str,
    status: str = Form(""),
    notify: str = Form(""),
    message: str = Form(""),
    question: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    def work() -> tuple[int | None, str | None]:
        try:
            with ctx.sessions.begin() as session:
                ticket = ticket_for(session, staff, public_id, lock=True)
                sent = ticket_actions.set_status(
                    session, staff, ticket, status, notify=notify in ("1", "on", "true"), message=message,
                    question=question, settings=ctx.settings,
                )
                return (sent.id if sent is not None else None), None
        except ActionRefused as exc:
            return None, str(exc)

    sent_id, error = await run_in_threadpool(work)
    if error is not None:
        return await run_in_threadpool(_ticket_page, request, staff, ctx, public_id, error=error, status_code=409)
    if sent_id is not None:
        await _deliver(ctx, sent_id)
        return redirect(_url(public_id, done="resolved_notified" if status == "resolved" else "status_notified"))
    return redirect(_url(public_id, done="status"))


@router.post("/console/tickets/{public_id}/assign", include_in_schema=False)
def post_assign(
    request: Request,
    public_id: str,
    assignee: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    def assign(session: Session, ticket: Ticket) -> None:
        if assignee == "me":
            target: int | None = staff.user_id
        elif assignee in ("", "none"):
            target = None
        elif assignee.isdigit():
            target = int(assignee)
        else:
            raise ActionRefused("Choose whom to assign the ticket to.")
        ticket_actions.assign(session, staff, ticket, target, settings=ctx.settings)

    return _act(request, staff, ctx, public_id, assign, done="assign", status_code=409)


@router.post("/console/tickets/{public_id}/priority", include_in_schema=False)
def post_priority(
    request: Request,
    public_id: str,
    priority: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    return _act(
        request, staff, ctx, public_id,
        lambda session, ticket: ticket_actions.set_priority(session, staff, ticket, priority, ctx.settings),
        done="priority", status_code=400,
    )


@router.post("/console/tickets/{public_id}/vulnerable", include_in_schema=False)
def post_vulnerable(
    request: Request,
    public_id: str,
    vulnerable: str = Form(""),
    reason: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    flag = vulnerable in ("1", "on", "true")
    return _act(
        request, staff, ctx, public_id,
        lambda session, ticket: ticket_actions.set_vulnerable(session, staff, ticket, flag, reason, ctx.settings),
        done="vulnerable", status_code=400, drafts={"vulnerable_reason": reason},
    )


@router.post("/console/tickets/{public_id}/citizen-vulnerable", include_in_schema=False)
def post_citizen_vulnerable(
    request: Request,
    public_id: str,
    action: str = Form(""),
    consent: str = Form(""),
    channel: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    def act(session: Session, ticket: Ticket) -> None:
        if action == "record":
            ticket_actions.record_citizen_vulnerable(
                session, staff, ticket, consented=consent in ("1", "on", "true"), channel=channel,
                settings=ctx.settings,
            )
        elif action == "clear":
            ticket_actions.clear_citizen_vulnerable(session, staff, ticket)
        else:
            raise ActionRefused("Choose whether to record or clear it.")

    return _act(request, staff, ctx, public_id, act, done="citizen_vulnerable", status_code=400)


@router.get("/console/api/tickets/{public_id}/deliveries", include_in_schema=False)
def deliveries(
    public_id: str,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    """Delivery status of the ticket's outbound messages, for the page to refresh without reloading."""
    with ctx.sessions() as session:
        ticket = ticket_for(session, staff, public_id)
        rows = session.scalars(
            select(Message).where(Message.citizen_id == ticket.citizen_id, Message.direction == "out")
        )
        return {
            "messages": [
                {"id": m.id, "status": m.delivery_status or "", "error": m.delivery_error or "",
                 "attempts": m.delivery_attempts}
                for m in rows
            ]
        }


@router.get("/console/api/kb", include_in_schema=False)
def kb_search(
    q: str = "",
    department: str = "",
    language: str = "",
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    """Canned replies: the KB is public information, so every department's entries may be searched.
    ``language``: the citizen's; an entry without an answer in it (or an unknown one) gives the main language's."""
    results = search(ctx.kb(), q[:200], department=department or None, language=language[:8] or None)
    return {"results": [{"id": c.id, "department": c.department, "question": c.question, "text": c.text}
                        for c in results]}
