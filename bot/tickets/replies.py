"""A member of staff answering a citizen on a ticket.

The reply goes back over the channel the citizen last used for this ticket
(they may have started on the web and followed up by e-mail), is stored as a
pending outbound message in the same unit of work as the ticket's public
update, and is delivered by ``bot.outbox.delivery``. The generic web/API
channel has no push: its client fetches pending replies.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.outbox.delivery import queue_outbound
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from bot.tickets.service import add_public_update
from bot.tickets.status import CLOSED


class EmptyReply(ValueError):
    pass


class TicketClosed(ValueError):
    """Closed is final: the citizen's answer to a reply would open a new ticket, not continue this one."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(
            f"ticket {ticket.public_id} is closed; closed tickets take no replies "
            "(reply on the citizen's newer ticket, or ask them to write again)"
        )
        self.ticket = ticket


def reply_identity(session: Session, ticket: Ticket) -> ChannelIdentity:
    """Where the citizen will read a reply: the identity of their latest message on this ticket."""
    identity_id = session.scalar(
        select(Message.identity_id)
        .where(Message.ticket_id == ticket.id, Message.direction == "in")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    return session.get(ChannelIdentity, identity_id or ticket.identity_id)


def citizen_language(session: Session, ticket: Ticket) -> str | None:
    """The language to word a text sent to the ticket's citizen unasked (a notice, "Was it
    solved?"): theirs, the language of their latest message; else the one the ticket was opened
    in. None: the default language."""
    citizen = session.get(Citizen, ticket.citizen_id)
    return (citizen.language if citizen is not None else None) or ticket.language


def reply_to_ticket(
    session: Session, ticket: Ticket, text: str, *, author: str, now: datetime | None = None
) -> Message:
    """Queue ``text`` for the citizen and record it as the ticket's public update.

    ``author`` is "agent:<username>" (or another staff actor); the first such
    reply sets the ticket's first response time.
    """
    if not text.strip():
        raise EmptyReply("a reply must not be empty")
    if ticket.status == CLOSED:
        raise TicketClosed(ticket)
    now = now or utcnow()
    identity = reply_identity(session, ticket)
    message = queue_outbound(session, identity=identity, text=text, author=author, ticket=ticket, now=now)
    event = add_public_update(session, ticket, text, actor=author, now=now)
    event.message_id = message.id
    session.flush()
    return message
