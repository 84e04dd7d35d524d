"""The alerts sent and the staff e-mails they queue.

``ticket_alerts`` is both the console's list and the guarantee of "once": its unique
constraint (ticket, threshold, recipient) makes a second scheduler, a restart or a job run
twice insert nothing. ``staff_notifications`` is the durable queue of e-mails to staff, written
in the same unit of work as the alert (or the digest) it carries, delivered with retries by the
scheduler's mail job; its unique ``key`` makes a digest once a day per department.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

NEAR_DUE, OVERDUE = "near_due", "overdue"
THRESHOLDS: tuple[str, ...] = (NEAR_DUE, OVERDUE)

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
NOTIFICATION_STATUSES: tuple[str, ...] = (PENDING, SENT, FAILED, SKIPPED)


def staff_recipient(staff_id: int) -> str:
    return f"staff:{staff_id}"


def department_recipient(department: str) -> str:
    return f"department:{department}"


class TicketAlert(Base):
    __tablename__ = "ticket_alerts"
    __table_args__ = (
        UniqueConstraint("ticket_id", "threshold", "recipient"),
        CheckConstraint(in_list("threshold", THRESHOLDS), name="threshold"),
        Index(None, "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    threshold: Mapped[str] = mapped_column(String(16))
    # "department:<code>" or "staff:<id>": who must act (bot.alerts.models.*_recipient).
    recipient: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The ticket's due time when the alert was raised (the ticket's may move on later).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How the recipient is told besides the console: "email" (queued), or why not ("no address", ...).
    delivery: Mapped[str] = mapped_column(String(64), default="console")


class StaffNotification(Base):
    __tablename__ = "staff_notifications"
    __table_args__ = (
        CheckConstraint(in_list("status", NOTIFICATION_STATUSES), name="status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "alert:<ticket_alert id>" or "digest:<department>:<local date>": one e-mail per key, ever.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A sender holds the row until then; after a crash in mid-send it is tried again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
