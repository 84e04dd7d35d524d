"""Messages exchanged with citizens, stored exactly as sent and received.

The stored text is evidence (complaints, legal deadlines), so it is never
trimmed or reformatted. The only exception is text no database can hold; see
``_storable``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.models import ChannelIdentity, Message
from bot.store.types import HasId

# Characters PostgreSQL text and UTF-8 cannot hold: NUL, and lone surrogates
# (which JSON escapes like "\ud800" can produce).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _storable(text: str, meta: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Replace unstorable characters with U+FFFD, and say so in ``meta``.

    Refusing the message would lose the rest of what the citizen wrote; the
    flag keeps the alteration visible to anyone reading the record.
    """
    meta = dict(meta or {})
    cleaned, count = _UNSTORABLE.subn(REPLACEMENT, text)
    if count:
        meta["replaced_unstorable_chars"] = count
    return cleaned, meta


def _find_inbound(session: Session, identity: ChannelIdentity, external_id: str) -> Message | None:
    return session.scalars(
        select(Message).where(
            Message.identity_id == identity.id, Message.direction == "in", Message.external_id == external_id
        )
    ).one_or_none()


def inbound_text(session: Session, message_id: int) -> str | None:
    """The stored text of an inbound message: a client reusing an idempotency key is compared with it."""
    return session.scalar(select(Message.text).where(Message.id == message_id, Message.direction == "in"))


def record_inbound(
    session: Session,
    identity: ChannelIdentity,
    text: str,
    *,
    external_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[Message, bool]:
    """Store a message from a citizen; ``(message, created)``.

    Channels redeliver webhooks. With the provider's ``external_id`` a
    redelivery returns the message already stored (``created`` False) so the
    caller can skip answering twice; the SAVEPOINT covers two deliveries racing.
    The id counts per identity (channel and sender): the same id from another
    sender is another message, never that sender's stored one.
    """
    if external_id is not None:
        existing = _find_inbound(session, identity, external_id)
        if existing is not None:
            return existing, False
    stored_text, stored_meta = _storable(text, meta)
    message = Message(
        citizen_id=identity.citizen_id,
        identity_id=identity.id,
        channel=identity.channel,
        direction="in",
        text=stored_text,
        external_id=external_id,
        meta=stored_meta,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        existing = _find_inbound(session, identity, external_id) if external_id is not None else None
        if existing is None:
            raise
        return existing, False
    return message, True


def record_outbound(
    session: Session, *, inbound: Message, text: str, meta: dict[str, Any] | None = None
) -> Message:
    """Store a reply, tied to the message it answers and to that message's ticket."""
    stored_text, stored_meta = _storable(text, meta)
    message = Message(
        citizen_id=inbound.citizen_id,
        identity_id=inbound.identity_id,
        channel=inbound.channel,
        direction="out",
        text=stored_text,
        ticket_id=inbound.ticket_id,
        reply_to_id=inbound.id,
        meta=stored_meta,
    )
    session.add(message)
    session.flush()
    return message


def recent_conversation(session: Session, identity: ChannelIdentity, *, since: datetime) -> list[Message]:
    """Both directions on one identity since ``since``, oldest first: the current conversation."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.identity_id == identity.id, Message.created_at >= since)
            .order_by(Message.created_at, Message.id)
        )
    )


def citizen_history(session: Session, citizen_id: int) -> list[Message]:
    """Everything exchanged with a citizen on every channel, oldest first."""
    return list(
        session.scalars(
            select(Message).where(Message.citizen_id == citizen_id).order_by(Message.created_at, Message.id)
        )
    )


def record_handling(
    message: Message,
    *,
    intent: str | None,
    confidence: float | None,
    handling: str,
    kb_entry_id: str | None = None,
    ticket: HasId | None = None,
) -> None:
    """What the assistant did with an inbound message, on its row (the statistics read it)."""
    message.intent = intent
    message.confidence = confidence
    message.handling = handling
    message.kb_entry_id = kb_entry_id
    if ticket is not None:
        message.ticket_id = ticket.id
