"""Everything the city exchanged with a citizen, for the ticket page.

One timeline across every channel the citizen used: messages in and out (with
their delivery status), the FAQ answers the assistant gave (with the KB entry),
and this ticket's own events (notes, status changes, assignment, priority).
Messages of this ticket are marked, and those that led to the escalation (the
transcript attached when the ticket was opened) are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kb.schema import KnowledgeBase
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import Ticket, TicketEvent

# A citizen writing daily for years would make the page unusable; older items are left out (and said so).
HISTORY_LIMIT = 400

# Ticket events already shown as a message (the reply itself, the citizen's message).
_EVENTS_SHOWN_AS_MESSAGES = frozenset({"created", "citizen_message"})


@dataclass(frozen=True)
class KbRef:
    id: str
    question: str
    department: str


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # "message" or "event"
    at: datetime
    message: Message | None = None
    event: TicketEvent | None = None
    # The message belongs to this ticket / was part of the conversation that opened it.
    in_ticket: bool = False
    in_transcript: bool = False
    # The public ID of another ticket the message belongs to.
    other_ticket: str | None = None
    kb: KbRef | None = None

    @property
    def author(self) -> str:
        if self.message is None:
            return self.event.actor if self.event is not None else ""
        if self.message.direction == "in":
            return "Citizen"
        author = self.message.author or "assistant"
        return "Assistant" if author == "assistant" else author.removeprefix("agent:")


@dataclass(frozen=True)
class CitizenHistory:
    items: list[TimelineItem]
    truncated: bool
    identities: list[ChannelIdentity]
    tickets: list[Ticket]  # every ticket of the citizen, newest first (this one included)


def _kb_ref(kb: KnowledgeBase | None, entry_id: str | None) -> KbRef | None:
    if not entry_id:
        return None
    if kb is not None:
        try:
            entry = kb.entry(entry_id)
        except KeyError:
            pass
        else:
            questions = entry.questions.get(kb.default_language) or next(iter(entry.questions.values()), [])
            return KbRef(entry.id, questions[0] if questions else entry.id, entry.department)
    return KbRef(entry_id, entry_id, "")


def citizen_history(session: Session, ticket: Ticket, kb: KnowledgeBase | None = None) -> CitizenHistory:
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.citizen_id == ticket.citizen_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_LIMIT + 1)
        )
    )
    truncated = len(messages) > HISTORY_LIMIT
    messages = list(reversed(messages[:HISTORY_LIMIT]))
    tickets = list(
        session.scalars(
            select(Ticket).where(Ticket.citizen_id == ticket.citizen_id).order_by(Ticket.created_at.desc(), Ticket.id)
        )
    )
    public_ids = {t.id: t.public_id for t in tickets}
    events = list(
        session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.created_at, TicketEvent.id)
        )
    )
    created = next((e for e in events if e.kind == "created"), None)
    # The conversation that opened the ticket: its messages up to the one that was escalated.
    transcript_until = created.message_id if created is not None and created.message_id else None

    items: list[TimelineItem] = []
    for message in messages:
        in_ticket = message.ticket_id == ticket.id
        items.append(
            TimelineItem(
                kind="message",
                at=message.created_at,
                message=message,
                in_ticket=in_ticket,
                in_transcript=in_ticket and transcript_until is not None and message.id <= transcript_until,
                other_ticket=public_ids.get(message.ticket_id) if message.ticket_id and not in_ticket else None,
                kb=_kb_ref(kb, message.kb_entry_id) if message.handling == "kb_answer" else None,
            )
        )
    for event in events:
        if event.kind in _EVENTS_SHOWN_AS_MESSAGES or (event.kind == "public_update" and event.message_id):
            continue
        items.append(TimelineItem(kind="event", at=event.created_at, event=event, in_ticket=True))
    items.sort(key=lambda item: (item.at, 0 if item.kind == "message" else 1))
    identities = list(
        session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.citizen_id == ticket.citizen_id)
            .order_by(ChannelIdentity.created_at, ChannelIdentity.id)
        )
    )
    return CitizenHistory(items=items, truncated=truncated, identities=identities, tickets=tickets)
