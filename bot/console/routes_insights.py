"""Routes of the insight pages (statistics, KB proposals, KB gaps).

Included by ``bot.console.app.register``; they use the console's sign-in, roles and
CSRF (``require_staff``).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from bot.console import proposals, stats
from bot.console.access import ticket_for
from bot.console.auth import ConsoleError, CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.insights_models import NEW_ENTRY, NEW_PHRASING, PROPOSAL_STATUSES, PROPOSED, KbProposal
from bot.console.proposals import ProposalError, ProposalRefused
from bot.console.stats_charts import report_charts
from bot.console.web import redirect, render
from bot.kb.proposals_apply import suggest_entry_id
from bot.staff.audit import audit
from bot.store.models import Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket

logger = logging.getLogger(__name__)

router = APIRouter()

NAV: list[tuple[str, str, str]] = [
    ("Statistics", "/console/stats", "supervisor"),
    ("KB gaps", "/console/gaps", "agent"),
    ("KB proposals", "/console/proposals", "agent"),
]

DEFAULT_STATS_DAYS = 30
GAP_DAYS = (7, 30, 90, 365)


# --- Statistics ------------------------------------------------------------------------------


def _period(start: str | None, end: str | None) -> tuple[stats.Period, str | None]:
    """The period asked for, or the last 30 days with a message saying what was wrong."""
    default = stats.Period.last_days(DEFAULT_STATS_DAYS)
    if not start and not end:
        return default, None
    try:
        first = date.fromisoformat(start) if start else default.start
        last = date.fromisoformat(end) if end else utcnow().date()
        return stats.Period(first, last), None
    except ValueError as exc:
        reason = str(exc) if isinstance(exc, stats.PeriodError) else "dates must be written as YYYY-MM-DD"
        return default, f"Showing the last {DEFAULT_STATS_DAYS} days: {reason}."


def _department_names(ctx: ConsoleContext) -> dict[str, str]:
    return {code: dep.name or code for code, dep in ctx.kb().departments.items()}


@router.get("/console/stats", include_in_schema=False)
def stats_page(
    request: Request,
    start: str | None = None,
    end: str | None = None,
    staff: CurrentStaff = Depends(require_staff("supervisor")),
    ctx: ConsoleContext = Depends(get_context),
):
    period, error = _period(start, end)
    with ctx.sessions() as session:
        report = stats.build_report(session, period, default_language=ctx.kb().default_language)
    return render(
        request,
        "stats.html",
        {
            "report": report,
            "charts": report_charts(report, department_names=_department_names(ctx)),
            "error": error,
            "duration": stats.format_duration,
            "presets": [(days, stats.Period.last_days(days)) for days in (7, 30, 90, 365)],
        },
        staff=staff,
        status_code=400 if error else 200,
    )


@router.get("/console/stats.csv", include_in_schema=False)
def stats_csv(
    start: str | None = None,
    end: str | None = None,
    staff: CurrentStaff = Depends(require_staff("supervisor")),
    ctx: ConsoleContext = Depends(get_context),
):
    period, error = _period(start, end)
    if error:
        raise ConsoleError(400, error)
    with ctx.sessions() as session:
        report = stats.build_report(session, period, default_language=ctx.kb().default_language)
    filename = f"statistics-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        stats.report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- KB proposals ----------------------------------------------------------------------------


def _ticket_by_id(session, staff: CurrentStaff, ticket_id: int | None) -> Ticket | None:
    if ticket_id is None:
        return None
    ticket = session.get(Ticket, ticket_id)
    return ticket_for(session, staff, ticket.public_id) if ticket is not None else None


def _source_message(session, staff: CurrentStaff, message_id: str | int | None) -> tuple[Message | None, Ticket | None]:
    """A citizen message to propose from; 404 unless the staff member may see its ticket."""
    if message_id in (None, ""):
        return None, None
    try:
        message = session.get(Message, int(message_id))
    except (TypeError, ValueError):
        message = None
    if message is None or message.direction != "in":
        raise ConsoleError(404, "There is no such message, or it is not in your departments.")
    if message.ticket_id is None:
        if not staff.is_supervisor:
            raise ConsoleError(404, "There is no such message, or it is not in your departments.")
        return message, None
    ticket = session.get(Ticket, message.ticket_id)
    if ticket is None or not staff.can_see(ticket.department):
        raise ConsoleError(404, "There is no such message, or it is not in your departments.")
    return message, ticket


def _question_of(session, ticket: Ticket) -> Message | None:
    """The citizen message a ticket's proposal most likely answers: the latest KB gap on it,
    else the message that opened the ticket."""
    inbound = list(
        session.scalars(
            select(Message)
            .where(Message.ticket_id == ticket.id, Message.direction == "in")
            .order_by(Message.created_at, Message.id)
        )
    )
    gaps = [m for m in inbound if m.intent in proposals.GAP_INTENTS and m.text.strip()]
    if gaps:
        return gaps[-1]
    return next((m for m in inbound if m.text.strip()), None)


def _last_agent_reply(session, ticket: Ticket) -> str | None:
    return session.scalar(
        select(Message.text)
        .where(Message.ticket_id == ticket.id, Message.direction == "out", Message.author.startswith("agent:"))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )


def _entry_choices(ctx: ConsoleContext) -> list[tuple[str, list[tuple[str, str]]]]:
    """KB entries by department for the "new phrasing of" list: (department name, [(id, question)])."""
    kb = ctx.kb()
    names = _department_names(ctx)
    groups: dict[str, list[tuple[str, str]]] = {}
    for entry in kb.entries:
        questions = entry.questions.get(kb.default_language) or next(iter(entry.questions.values()), [])
        groups.setdefault(entry.department, []).append((entry.id, questions[0] if questions else ""))
    return [(names.get(dep, dep), items) for dep, items in sorted(groups.items(), key=lambda g: names.get(g[0], g[0]))]


def _form_page(request, staff, ctx, form: dict, *, error: str | None = None, status_code: int = 200):
    return render(
        request,
        "proposals_new.html",
        {
            "form": form,
            "error": error,
            "departments": sorted(_department_names(ctx).items(), key=lambda d: d[1]),
            "entries": _entry_choices(ctx),
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/console/proposals/new", include_in_schema=False)
def new_proposal(
    request: Request,
    ticket: str | None = None,
    message: str | None = None,
    kind: str = NEW_ENTRY,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    with ctx.sessions() as session:
        source, source_ticket = _source_message(session, staff, message)
        if ticket:
            source_ticket = ticket_for(session, staff, ticket)
            if source is None:
                source = _question_of(session, source_ticket)
        form = {
            "kind": kind if kind in (NEW_ENTRY, NEW_PHRASING) else NEW_ENTRY,
            "question": source.text.strip() if source is not None else "",
            "answer": (_last_agent_reply(session, source_ticket) or "") if source_ticket is not None else "",
            "department": source_ticket.department if source_ticket is not None else "",
            "target_entry_id": "",
            "ticket": source_ticket.public_id if source_ticket is not None else "",
            "message": str(source.id) if source is not None else "",
            "source_text": source.text if source is not None else "",
        }
    return _form_page(request, staff, ctx, form)


@router.post("/console/proposals", include_in_schema=False)
def create_proposal(
    request: Request,
    kind: str = Form(NEW_ENTRY),
    question: str = Form(""),
    answer: str = Form(""),
    department: str = Form(""),
    target_entry_id: str = Form(""),
    ticket: str = Form(""),
    message: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    form = {"kind": kind, "question": question, "answer": answer, "department": department,
            "target_entry_id": target_entry_id, "ticket": ticket, "message": message, "source_text": ""}
    kb = ctx.kb()
    try:
        with ctx.sessions.begin() as session:
            source, source_ticket = _source_message(session, staff, message)
            if ticket:
                source_ticket = ticket_for(session, staff, ticket)
            if source is not None:
                form["source_text"] = source.text
            if kind == NEW_ENTRY and department and department not in kb.departments:
                raise ProposalError(f"unknown department {department!r}")
            proposal = proposals.propose(
                session,
                kind=kind,
                question=question,
                answer=answer,
                department=department if kind == NEW_ENTRY else None,
                target_entry_id=target_entry_id if kind == NEW_PHRASING else None,
                language=kb.default_language,
                ticket=source_ticket,
                source_message_id=source.id if source is not None else None,
                proposed_by=staff.username,
            )
            audit(session, staff, "kb.proposal.create", f"proposal:{proposal.id}", {
                "kind": proposal.kind,
                "department": proposal.department,
                "target_entry_id": proposal.target_entry_id,
                "ticket": source_ticket.public_id if source_ticket is not None else None,
            })
            proposal_id = proposal.id
    except ProposalError as exc:
        return _form_page(request, staff, ctx, form, error=str(exc), status_code=400)
    return redirect(f"/console/proposals?status=proposed&done=created#proposal-{proposal_id}")


DONE = {
    "created": "Your proposal was sent to the supervisors for review.",
    "saved": "Changes saved.",
    "approved": "Approved: the entry is in the knowledge base files. The next training includes it.",
    "rejected": "Proposal rejected.",
}


def _proposals_page(request, staff: CurrentStaff, ctx: ConsoleContext, status: str, *,
                    errors: dict[int, list[str]] | None = None, drafts: dict[int, dict] | None = None,
                    status_code: int = 200):
    if status not in (*PROPOSAL_STATUSES, "all"):
        status = PROPOSED
    kb = ctx.kb()
    with ctx.sessions() as session:
        rows = proposals.list_proposals(
            session,
            status=None if status == "all" else status,
            proposed_by=None if staff.is_supervisor else staff.username,
        )
        tickets = {t.id: t for t in session.scalars(
            select(Ticket).where(Ticket.id.in_([p.ticket_id for p in rows if p.ticket_id]))
        )}
        sources = {m.id: m for m in session.scalars(
            select(Message).where(Message.id.in_([p.source_message_id for p in rows if p.source_message_id]))
        )}
        entries = {e.id: e for e in kb.entries}
        items = []
        for p in rows:
            ticket = tickets.get(p.ticket_id)
            source = sources.get(p.source_message_id)
            items.append({
                "p": p,
                # Another department's ticket is not linked for an agent (they only see their own proposals anyway).
                "ticket": ticket if ticket is not None and staff.can_see(ticket.department) else None,
                "source_text": source.text if source is not None else None,
                "target": entries.get(p.target_entry_id) if p.target_entry_id else None,
                "suggested_id": suggest_entry_id(kb, p.department or "", p.question)
                if p.kind == NEW_ENTRY and p.status == PROPOSED else "",
                "errors": (errors or {}).get(p.id, []),
                "draft": (drafts or {}).get(p.id, {}),
            })
        shown = {item["p"].id for item in items}
        # An error about a proposal not on this list (decided meanwhile) goes to the top of the page.
        elsewhere = [f"Proposal {pid}: {problem}" for pid, problems in (errors or {}).items() if pid not in shown
                     for problem in problems]
        counts = {s: len(proposals.list_proposals(session, status=s, proposed_by=None if staff.is_supervisor
                                                   else staff.username, limit=1000)) for s in PROPOSAL_STATUSES}
    return render(
        request,
        "proposals.html",
        {
            "items": items,
            "status": status,
            "counts": counts,
            "done": DONE.get(request.query_params.get("done", "")),
            "errors_elsewhere": elsewhere,
            "departments": sorted(_department_names(ctx).items(), key=lambda d: d[1]),
            "department_names": _department_names(ctx),
            "entries": _entry_choices(ctx),
            "default_language": kb.default_language,
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/console/proposals", include_in_schema=False)
def proposals_page(
    request: Request,
    status: str = PROPOSED,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    return _proposals_page(request, staff, ctx, status)


@router.post("/console/proposals/{proposal_id}", include_in_schema=False)
def review_proposal(
    request: Request,
    proposal_id: int,
    action: str = Form(...),
    kind: str = Form(None),
    question: str = Form(None),
    answer: str = Form(None),
    department: str = Form(None),
    target_entry_id: str = Form(None),
    entry_id: str = Form(""),
    comment: str = Form(""),
    staff: CurrentStaff = Depends(require_staff("supervisor")),
    ctx: ConsoleContext = Depends(get_context),
):
    if action not in ("save", "approve", "reject"):
        raise ConsoleError(400, "Choose save, approve or reject.")
    draft = {"kind": kind, "question": question, "answer": answer, "department": department,
             "target_entry_id": target_entry_id, "entry_id": entry_id, "comment": comment}
    kb = ctx.kb()
    try:
        with ctx.sessions.begin() as session:
            proposal = session.get(KbProposal, proposal_id)
            if proposal is None:
                raise ConsoleError(404, "There is no such proposal.")
            target = f"proposal:{proposal.id}"
            if action == "reject":
                proposals.reject(session, proposal, reviewer=staff.username, comment=comment)
                audit(session, staff, "kb.proposal.reject", target, {"comment": proposal.review_comment})
            else:
                if department and department not in kb.departments:
                    raise ProposalError(f"unknown department {department!r}")
                changes = proposals.edit(session, proposal, kind=kind, question=question, answer=answer,
                                         department=department, target_entry_id=target_entry_id)
                if changes:
                    audit(session, staff, "kb.proposal.edit", target, {"changes": changes})
                if action == "approve":
                    change = proposals.approve(session, proposal, kb_dir=ctx.settings.kb_dir,
                                               reviewer=staff.username, comment=comment, entry_id=entry_id)
                    audit(session, staff, "kb.proposal.approve", target, {
                        "kind": proposal.kind, "entry_id": change.entry_id, "file": change.file.name,
                        "comment": proposal.review_comment,
                    })
    except (ProposalError, ProposalRefused) as exc:
        problems = exc.problems if isinstance(exc, ProposalRefused) else [str(exc)]
        return _proposals_page(request, staff, ctx, PROPOSED, errors={proposal_id: problems},
                               drafts={proposal_id: draft}, status_code=422)
    done = {"save": "saved", "approve": "approved", "reject": "rejected"}[action]
    status = PROPOSED if action == "save" else {"approve": "approved", "reject": "rejected"}[action]
    return redirect(f"/console/proposals?status={status}&done={done}#proposal-{proposal_id}")


# --- KB gaps ---------------------------------------------------------------------------------


@router.get("/console/gaps", include_in_schema=False)
def gaps_page(
    request: Request,
    days: int = 30,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    days = days if days in GAP_DAYS else 30
    names = _department_names(ctx)
    departments = None if staff.sees_all_departments else staff.visible_departments(sorted(names))
    with ctx.sessions() as session:
        groups = proposals.kb_gaps(session, since=utcnow() - timedelta(days=days), departments=departments)
        proposed = proposals.proposed_message_ids(
            session, [m.id for g in groups for m in g.messages]
        )
    return render(
        request,
        "gaps.html",
        {
            "groups": groups,
            "days": days,
            "day_choices": GAP_DAYS,
            "department_names": names,
            "proposed": proposed,
            "total": sum(g.count for g in groups),
        },
        staff=staff,
    )
