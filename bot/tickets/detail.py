"""A ticket as staff see it: where it stands, what was said both ways, and whether replies arrived.

Shared by the API and the agent console so both read the same facts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Message
from bot.tickets import ids
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.replies import reply_identity


class TicketNotFound(LookupError):
    """No ticket under this ID; ``mistyped`` when the check symbol already says the ID is wrong."""

    def __init__(self, raw_id: str, *, mistyped: bool) -> None:
        self.raw_id = raw_id
        self.mistyped = mistyped
        if mistyped:
            reason = "is not a valid ticket ID (a symbol is wrong or missing; IDs look like K7M-39Q-XD2)"
        else:
            reason = "does not match any ticket"
        super().__init__(f"{raw_id!r} {reason}")


def find_ticket(session: Session, raw_id: str, *, for_update: bool = False) -> Ticket:
    """The ticket for an ID as a person typed it (case, dashes, O/0 and I/1 forgiven)."""
    canonical = ids.normalize(raw_id)
    if canonical is None or not ids.is_valid(canonical):
        raise TicketNotFound(raw_id, mistyped=True)
    query = select(Ticket).where(Ticket.public_id == canonical)
    if for_update:
        query = query.with_for_update()
    ticket = session.scalars(query).one_or_none()
    if ticket is None:
        raise TicketNotFound(canonical, mistyped=False)
    return ticket


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    # Every message in and out on this ticket, oldest first; outbound rows carry their delivery state.
    messages: list[Message]
    events: list[TicketEvent]
    # Where a reply written now would go.
    reply_channel: str


def ticket_detail(session: Session, ticket: Ticket) -> TicketDetail:
    messages = list(
        session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.created_at, Message.id))
    )
    events = list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.created_at, TicketEvent.id)
        )
    )
    return TicketDetail(ticket=ticket, messages=messages, events=events, reply_channel=reply_identity(session, ticket).channel)
