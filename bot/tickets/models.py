"""Tickets and their history: what the city owes a citizen, and what it has done about it.

Status and priority are enforced by check constraints from the vocabularies in
``bot.tickets.status`` and ``bot.tickets.priority``, so a bad write fails in
every client. A ticket refers to the citizen's records in ``bot.store.models``
and to the member of staff working it in ``bot.staff.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.staff.models import StaffUser
from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow
from bot.tickets.priority import NORMAL, PRIORITIES
from bot.tickets.status import NEW, STATUSES


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(in_list("status", STATUSES), name="status"),
        CheckConstraint(in_list("priority", PRIORITIES), name="priority"),
        # The agents' queue: a department's open tickets by deadline.
        Index(None, "department", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Short, checksummed, non-enumerable ID told to the citizen (bot.tickets.ids).
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    # The channel the ticket came in on, so that updates can go back the same way.
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16), default=NORMAL)
    status: Mapped[str] = mapped_column(String(32), default=NEW)
    reason: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the ticket is "near due" (CRM_ALERT_NEAR_DUE_PERCENT of its commitment has run): set
    # with due_at by bot.tickets.schedule; NULL for tickets opened before alerts existed.
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when retention replaced the ticket's texts (subject, events): counts stay, words go.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Vulnerable citizen: the shorter commitment and first in its queue (bot.tickets.vulnerable).
    # The reason is a rule's name, "agent <username>: <why>" or "citizen record"; by/at say who
    # changed the flag last (set also when an agent removed it, so the assistant does not set it again).
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    vulnerable_reason: Mapped[str | None] = mapped_column(Text)
    vulnerable_by: Mapped[str | None] = mapped_column(String(64))
    vulnerable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The language the citizen wrote in when the ticket was opened: agents see it and queues filter by it.
    language: Mapped[str | None] = mapped_column(String(8), index=True)
    # The member of staff working the ticket; NULL: anyone in the queue.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"), index=True)

    assignee: Mapped[StaffUser | None] = relationship()
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="(TicketEvent.created_at, TicketEvent.id)"
    )


class TicketEvent(Base):
    """Append-only history of a ticket; ``public`` events are what the citizen may be told."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
