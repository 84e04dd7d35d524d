"""What was announced, and which ticket events a citizen was told about.

Neither table holds anything about a citizen beyond ids: an announcement is the city's own
text, and a ticket notice points at the event and the message (erasure blanks the message).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

TOPIC, DEPARTMENT = "topic", "department"
AUDIENCES: tuple[str, ...] = (TOPIC, DEPARTMENT)

ASSIGNED, WAITING, REOPENED = "assigned", "waiting", "reopened"
NOTICE_KINDS: tuple[str, ...] = (ASSIGNED, WAITING, REOPENED)


class Announcement(Base):
    __tablename__ = "announcements"
    __table_args__ = (CheckConstraint(in_list("audience_kind", AUDIENCES), name="audience_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The supervisor's username (the audit log has the rest).
    created_by: Mapped[str] = mapped_column(String(100))
    # A topic of knowledge_base/topics.yml, or a department (every topic of that department).
    audience_kind: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer)
    # The throttled queue: the first message is due at the first time, the last at the second.
    first_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_due_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TicketNotice(Base):
    """One ticket event told to the citizen: the unique event makes a notice once per event."""

    __tablename__ = "ticket_notices"
    __table_args__ = (CheckConstraint(in_list("kind", NOTICE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
