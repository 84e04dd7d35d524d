"""Telling a citizen that one of their tickets changed, when they asked for it ("notify me").

Which changes: assigned to a person (the first time only: a reassignment is the city's own
business), waiting for the citizen, and reopened. "Opened" is already said in the reply that
gives the ticket ID; "resolved" is said by the "Was it solved?" question (bot.feedback), so
neither is sent twice.

A notice goes where a reply would (the identity of the citizen's latest message on the ticket),
through the outbox, so each channel's rules apply (WhatsApp's 24-hour window: a template, held
text or another channel). It carries the ``notifications`` consent as a delivery condition:
"stop" after it was queued means it is not sent. One notice per ticket event: the event is a
unique key, so code that runs twice for one change (a retried request) tells the citizen once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.identity.consent import has_consent, needs_consent
from bot.kb.loader import load_departments
from bot.notices.models import ASSIGNED, REOPENED, WAITING, TicketNotice
from bot.outbox.delivery import queue_outbound
from bot.settings import Settings
from bot.store.models import Message
from bot.store.types import utcnow
from bot.texts import override, resolve_language
from bot.texts import text as catalogue_text
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.replies import citizen_language, reply_identity, reply_to_ticket
from bot.tickets.status import OPEN, PENDING_CITIZEN, RESOLVED

NOTIFICATIONS = "notifications"
AUTHOR = "notices"
# In the meta of a notice: which kind, and the event it tells of.
META_KEY = "ticket_notice"
MAX_QUESTION = 2000


def notice_kind(session: Session, ticket: Ticket, event: TicketEvent) -> str | None:
    """Which notice ``event`` calls for, if any."""
    if event.kind == "status_changed":
        if event.to_status == PENDING_CITIZEN:
            return WAITING
        if event.from_status == RESOLVED and event.to_status == OPEN:
            return REOPENED
        return None
    if event.kind == "assigned" and ticket.assignee_id is not None:
        told = session.scalar(
            select(TicketNotice.id).where(TicketNotice.ticket_id == ticket.id, TicketNotice.kind == ASSIGNED).limit(1)
        )
        return ASSIGNED if told is None else None
    return None


def _already_told(session: Session, event: TicketEvent) -> bool:
    return session.scalar(select(TicketNotice.id).where(TicketNotice.event_id == event.id)) is not None


def _department_name(settings: Settings, department: str) -> str:
    found = load_departments(settings.kb_dir).departments.get(department)
    return found.name if found is not None else department


def _text(kind: str, ticket: Ticket, settings: Settings) -> str:
    if kind == ASSIGNED:
        return catalogue_text("notices.assigned", ticket_id=ticket.public_id,
                              department=_department_name(settings, ticket.department))
    if kind == WAITING:
        return catalogue_text("notices.waiting", ticket_id=ticket.public_id)
    return catalogue_text("notices.reopened", ticket_id=ticket.public_id)


def notify_ticket_event(
    session: Session, ticket: Ticket, event: TicketEvent, settings: Settings, *, question: str = "",
    now: datetime | None = None,
) -> Message | None:
    """Queue what ``event`` tells the citizen, if anything; returns it for immediate delivery.

    ``question`` (waiting for the citizen only): the agent's question. It is an answer to the
    citizen's own request, so it goes to them whether or not they asked for notices, as a reply
    (a public update of the ticket); it is then also the event's notice."""
    now = now or utcnow()
    session.flush()  # the event's id is the notice's key
    kind = notice_kind(session, ticket, event)
    if kind is None or _already_told(session, event):
        return None
    question = " ".join(question.split())[:MAX_QUESTION]
    # Sent from the console or a job, outside the citizen's turn: worded in their language here.
    language = citizen_language(session, ticket)
    if kind == WAITING and question:
        with override(language):
            text = catalogue_text("notices.waiting_question", ticket_id=ticket.public_id, question=question)
        message = reply_to_ticket(session, ticket, text, author=event.actor, now=now)
    elif has_consent(session, ticket.citizen_id, NOTIFICATIONS):
        with override(language):
            text = _text(kind, ticket, settings)
        message = queue_outbound(
            session, identity=reply_identity(session, ticket), text=text, author=AUTHOR,
            ticket=ticket, meta={META_KEY: {"kind": kind, "event_id": event.id}, **needs_consent([NOTIFICATIONS])},
            now=now,
        )
    else:
        return None
    message.language = resolve_language(language)
    session.add(TicketNotice(ticket_id=ticket.id, event_id=event.id, kind=kind, message_id=message.id, created_at=now))
    session.flush()
    return message
