"""A message written in a ticket's thread joins that ticket.

Some channels know when a citizen writes about a case already open: an e-mail
answering ours carries the ticket ID in its subject. The channel passes what it
read as a hint (``InboundMessage.thread_ticket``); whether the hint holds, and the
joining itself, are decided here, once, for every channel that gives one.

These functions never commit: the caller owns the unit of work.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.inbound import InboundMessage
from bot.settings import Settings
from bot.store.citizens import find_identity
from bot.store.messages import record_handling
from bot.store.models import Message
from bot.tickets import ids
from bot.tickets.models import Ticket
from bot.tickets.service import attach_to_ticket
from bot.tickets.status import OPEN_STATUSES

JOINED = "ticket_joined"


def thread_ticket(session: Session, citizen_id: int, hint: str | None) -> Ticket | None:
    """The ticket ``hint`` names, if the citizen may write into it: theirs and still open.

    The ID alone proves nothing (anyone can copy a subject), so a ticket of another
    citizen is treated exactly like no ticket: the message is then handled as new."""
    public_id = ids.normalize(hint) if hint else None
    if public_id is None:
        return None
    ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one_or_none()
    if ticket is None or ticket.citizen_id != citizen_id or ticket.status not in OPEN_STATUSES:
        return None
    return ticket


def hinted_ticket(session: Session, inbound: InboundMessage) -> Ticket | None:
    """``thread_ticket`` for a message not stored yet: a sender we have never seen has no tickets,
    and asking must not make a citizen out of them."""
    if inbound.thread_ticket is None:
        return None
    identity = find_identity(session, inbound.channel, inbound.sender)
    return thread_ticket(session, identity.citizen_id, inbound.thread_ticket) if identity is not None else None


def join_thread(session: Session, message: Message, ticket: Ticket, settings: Settings) -> None:
    """Add ``message`` to ``ticket`` as the citizen's next word on it.

    Safe to repeat for a message handled again after a crash: it is added once."""
    if message.ticket_id != ticket.id:
        attach_to_ticket(session, ticket, message, settings=settings)
    record_handling(message, intent=None, confidence=None, handling=JOINED, ticket=ticket)
