"""The webhook inbox: signed deliveries from Meta, kept until they are fully handled.

Meta expects a quick 200 and redelivers for days without one. Writing the raw
delivery here is the whole of what happens before the 200, so an acknowledged
delivery survives any crash that follows; handling it (the assistant, replies,
status updates) happens afterwards and is retried from this table. A handled
delivery is deleted: the messages themselves live in ``messages``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, utcnow

INBOX_STATUSES: tuple[str, ...] = ("pending", "processing", "failed")


class WhatsAppWebhook(Base):
    __tablename__ = "whatsapp_webhooks"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processing', 'failed')", name="status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The request body exactly as signed by Meta (UTF-8 JSON).
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while a process handles the delivery; an expired lease means that process died.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
