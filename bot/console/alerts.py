"""The commitment alerts a member of staff sees: their own (as assignee) and their departments'.

An alert stays on the list while its ticket is still being worked on; resolving or closing the
ticket is what clears it, so the count on the queue pages is "tickets that need you now".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.alerts.models import TicketAlert, department_recipient, staff_recipient
from bot.tickets.models import Ticket
from bot.tickets.status import OPEN_STATUSES

LIST_LIMIT = 200


@dataclass(frozen=True)
class AlertRow:
    public_id: str
    department: str
    status: str
    priority: str
    threshold: str
    recipient: str
    raised_at: datetime
    due_at: datetime
    delivery: str
    mine: bool
    # None: the KB's main language (a ticket opened before languages were recorded).
    language: str | None = None


def _visible(staff_id: int, departments: list[str]):  # noqa: ANN202 - SQL conditions
    """Their departments' alerts, and their own while the ticket is still theirs (not after a reassignment)."""
    return (
        or_(
            TicketAlert.recipient.in_([department_recipient(d) for d in departments]),
            and_(TicketAlert.recipient == staff_recipient(staff_id), Ticket.assignee_id == staff_id),
        ),
        Ticket.status.in_(OPEN_STATUSES),
    )


def alert_count(session: Session, staff_id: int, departments: list[str]) -> int:
    """Tickets still open with at least one alert for this member of staff or their departments."""
    return int(
        session.scalar(
            select(func.count(func.distinct(TicketAlert.ticket_id)))
            .join(Ticket, Ticket.id == TicketAlert.ticket_id)
            .where(*_visible(staff_id, departments))
        )
        or 0
    )


def alert_rows(session: Session, staff_id: int, departments: list[str], *, mine_only: bool = False) -> list[AlertRow]:
    query = (
        select(TicketAlert, Ticket)
        .join(Ticket, Ticket.id == TicketAlert.ticket_id)
        .where(*_visible(staff_id, departments))
        .order_by(TicketAlert.created_at.desc(), TicketAlert.id.desc())
        .limit(LIST_LIMIT)
    )
    if mine_only:
        query = query.where(or_(TicketAlert.recipient == staff_recipient(staff_id), Ticket.assignee_id == staff_id))
    return [
        AlertRow(
            public_id=ticket.public_id, department=ticket.department, status=ticket.status, priority=ticket.priority,
            threshold=alert.threshold, recipient=alert.recipient, raised_at=alert.created_at, due_at=ticket.due_at,
            delivery=alert.delivery, mine=alert.recipient == staff_recipient(staff_id), language=ticket.language,
        )
        for alert, ticket in session.execute(query)
    ]
