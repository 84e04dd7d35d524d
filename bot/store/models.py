"""The interaction store: who wrote, what they wrote, and what the city did about it.

Addresses (phone numbers, e-mail addresses) live only in ChannelIdentity; every
other system, Rasa included, sees the identity's random ``public_id``.
Vocabularies that the workflow depends on (direction, status, priority) are
enforced by check constraints so that a bad write fails in every client, not
only in this code base.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

DIRECTIONS: tuple[str, ...] = ("in", "out")

# Delivery of an outbound message (bot.outbox.delivery). NULL for inbound messages.
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sending", "sent", "failed")

# What the assistant did with an inbound message; free to grow, so not a DB constraint.
HANDLINGS: tuple[str, ...] = (
    "kb_answer", "escalated", "ticket_joined", "small_talk", "status", "error",
    "attachment_added", "attachment_unhandled", "identity_link",
    "privacy_notice", "consent_given", "consent_withdrawn", "consent_unchanged",
)


def _new_public_id() -> str:
    return uuid.uuid4().hex



class Citizen(Base):
    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_new_public_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    display_name: Mapped[str | None] = mapped_column(String(200))
    # (No consent_given_at: handling a citizen's messages rests on the city's public task, not on
    # consent; the consents that the law does need are per purpose, in bot.identity.models.Consent.)
    # Set when the citizen's personal data has been erased on request; the row stays
    # so that tickets and statistics keep their foreign keys.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # On record as vulnerable, set by an agent with the citizen's consent (purpose
    # "vulnerability_record", bot.identity.vulnerability): it counts only while that consent holds.
    vulnerable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    vulnerable_by: Mapped[str | None] = mapped_column(String(64))
    # The language of the citizen's latest message (ISO 639-1, bot.nlu.language): what a short
    # "ok" or a notice sent later is worded in.
    language: Mapped[str | None] = mapped_column(String(8))

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="citizen")


class ChannelIdentity(Base):
    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(320))
    # The Rasa sender id: lets the conversation engine track a person without learning the address.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_new_public_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When this address was sent the privacy notice (bot.privacy.notice): once per identity.
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    citizen: Mapped[Citizen] = relationship(back_populates="identities")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(in_list("direction", DIRECTIONS), name="direction"),
        # Channels redeliver; the provider's message id makes ingestion idempotent, per sender.
        UniqueConstraint("identity_id", "direction", "external_id"),
        Index(None, "channel", "direction", "external_id"),  # receipts name only the provider's id
        Index(None, "citizen_id", "created_at"),
        Index(None, "identity_id", "created_at"),
        CheckConstraint(in_list("delivery_status", DELIVERY_STATUSES), name="delivery_status"),
        # The delivery worker's queue: what is due next.
        Index(None, "delivery_status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    external_id: Mapped[str | None] = mapped_column(String(255))
    intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    handling: Mapped[str | None] = mapped_column(String(32))
    kb_entry_id: Mapped[str | None] = mapped_column(String(128))
    # An inbound message's language as decided on arrival (bot.nlu.language); an outbound
    # message's, the language it is worded in.
    language: Mapped[str | None] = mapped_column(String(8))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # An outbound message points at the inbound message it answers.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Who wrote an outbound message: "assistant", or "agent:<username>".
    author: Mapped[str | None] = mapped_column(String(100))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while a worker holds the message ("sending"); an expired lease means the worker died.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_error: Mapped[str | None] = mapped_column(Text)
    # Set when retention (bot.privacy.retention) replaced the text and metadata: the row stays
    # for the statistics (channel, direction, handling, time), the words are gone.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    identity: Mapped[ChannelIdentity] = relationship()
    # Resolved by name (bot.tickets.models): the store sits below the tickets and never imports them.
    ticket: Mapped[Ticket | None] = relationship(viewonly=True)  # noqa: F821
    parts: Mapped[list[MessagePart]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )


class MessagePart(Base):
    """A later part of an outbound message the provider took as several (a long WhatsApp reply).

    Receipts name the part's own id; this table finds the message by index, where a
    search of the messages' metadata would scan every recent reply for each receipt.
    """

    __tablename__ = "message_parts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))

    message: Mapped[Message] = relationship(back_populates="parts")


# What became of a "Do you mean ...?" question (bot.core.clarification).
OFFER_STATUSES: tuple[str, ...] = ("pending", "answered", "declined", "superseded", "expired")


class KbOffer(Base):
    """One "Do you mean ...?" turn: the KB questions a citizen was offered, and what became of it.

    The store, not Rasa's tracker, is the truth about an open question, so that a pick
    is checked against what this citizen was really offered, and the time-out that turns
    an unanswered offer into a ticket survives restarts."""

    __tablename__ = "kb_offers"
    __table_args__ = (
        CheckConstraint(in_list("status", OFFER_STATUSES), name="status"),
        # The time-out worker's queue: pending offers by deadline.
        Index(None, "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Random and unguessable: it travels in button payloads (Telegram callback data, WhatsApp ids).
    token: Mapped[str] = mapped_column(String(16), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), index=True)
    # The citizen's question that was not answered outright.
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    # The KB entry ids offered, in the order shown (option 1 first).
    entries: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The entry the citizen picked (answered), if any.
    chosen_entry: Mapped[str | None] = mapped_column(String(128))
    # The inbound message that settled it (a pick, "none", a new question); NULL for a time-out.
    settled_by_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    # The ticket opened (or joined) when the citizen declined, moved on or did not answer.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
