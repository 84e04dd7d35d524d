"""The e-mail channel's own records: which mailbox positions are done, and every
e-mail exactly as it arrived.

``EmailInbound`` is the ledger that makes processing exactly-once: a row is
written (keyed by Message-ID) before the mail is flagged in the mailbox, so a
crash after the flag loses nothing, and a crash before it only makes the worker
fetch the mail again and find the row. Each row then moves from ``received``
to ``handled`` in the same transaction that queues its one reply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, utcnow

RECEIVED, HANDLED, FAILED = "received", "handled", "failed"
INBOUND_STATUSES: tuple[str, ...] = (RECEIVED, HANDLED, FAILED)


class EmailMailbox(Base):
    """Where the worker stands in one IMAP mailbox: UIDs up to ``last_uid`` are stored
    and acknowledged, valid while the server's UIDVALIDITY stays the same."""

    __tablename__ = "email_mailboxes"
    __table_args__ = (UniqueConstraint("account", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "user@host": the same folder name on another account is another mailbox.
    account: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EmailInbound(Base):
    __tablename__ = "email_inbound"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in INBOUND_STATUSES)})", name="status"),
        # The worker's queue: what is stored but not yet handled.
        Index(None, "status", "id"),
        # The per-sender rate limit counts recent replies.
        Index(None, "sender", "handled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The Message-ID (or the parser's stable synthetic one); unique: the same mail is one row.
    message_key: Mapped[str] = mapped_column(String(255), unique=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("email_mailboxes.id"), index=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    # Every header as received (decoded), the body text as received (not quote-stripped),
    # and the attachments as metadata only (name, type, size, sha256).
    headers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Parser notes (charset fallback, MIME defects, missing headers) and how to thread a reply.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw_size: Mapped[int] = mapped_column(Integer)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    # Why no automatic reply may be sent (RFC 3834 checks), decided when stored; None: allowed.
    reply_blocked: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)
    # "replied", "no_reply:<reason>", or the error of a failed row.
    outcome: Mapped[str | None] = mapped_column(String(2000))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The ticket whose ID and commitment our reply told: at most one automatic reply per ticket.
    acknowledged_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The one automatic reply (an outbound row in ``messages``, delivered by the queue).
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when retention blanked the copy (sender, subject, headers, body, attachments, details);
    # the row stays so that the same Message-ID is still recognised and never answered twice.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
