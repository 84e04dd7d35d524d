"""Loading a ticket for a member of staff: the one place department authorisation is decided.

Every route that takes a ticket ID (URL or form) goes through ``ticket_for``.
A ticket of a department the agent does not work answers exactly like a ticket
that does not exist (404), so IDs cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import ConsoleError, CurrentStaff
from bot.tickets import ids
from bot.tickets.models import Ticket

NOT_FOUND = "There is no such ticket, or it is not in your departments."


def ticket_for(session: Session, staff: CurrentStaff, public_id: str, *, lock: bool = False) -> Ticket:
    """``lock``: for a change, hold the row until the unit of work ends, so two agents acting on
    the same ticket at once (both taking it, both resolving it) are serialised, not interleaved."""
    canonical = ids.normalize(public_id or "")
    ticket = None
    if canonical is not None:
        query = select(Ticket).where(Ticket.public_id == canonical)
        if lock:
            query = query.with_for_update()
        ticket = session.scalars(query).one_or_none()
    if ticket is None or not staff.can_see(ticket.department):
        raise ConsoleError(404, NOT_FOUND)
    return ticket
