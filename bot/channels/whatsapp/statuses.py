"""Delivery receipts from Meta (sent, delivered, read, failed) on our stored messages.

The Graph API's answer only says Meta accepted a message; whether it reached
the phone arrives later as a status webhook. Every status is kept with its time
in ``meta["whatsapp"]["statuses"]``; ``failed`` also fails the delivery, with
Meta's reason, so the agent sees that the citizen did not get the reply. A
reply longer than WhatsApp's limit goes out in parts, each with its own wamid:
a later part's statuses are kept per part, and its failure fails the message.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.whatsapp.payload import CHANNEL, StatusUpdate, describe_errors
from bot.outbox.delivery import FAILED
from bot.store.models import Message, MessagePart
from bot.store.types import utcnow

logger = logging.getLogger(__name__)


def apply_status(session: Session, update: StatusUpdate) -> bool:
    """Record one status on the outbound message it is about; False if we do not know the message."""
    message = session.scalars(
        select(Message).where(
            Message.channel == CHANNEL, Message.direction == "out", Message.external_id == update.wamid
        )
    ).one_or_none()
    part = False
    if message is None:
        message = _message_with_part(session, update.wamid)
        part = message is not None
    if message is None:
        # Sent from elsewhere (the WhatsApp Business app on the same number) or, rarely, a
        # receipt that overtook our own record of the send.
        logger.info("WhatsApp status %r for a message we did not send: ignored", update.status)
        return False
    meta = dict(message.meta or {})
    details = dict(meta.get("whatsapp") or {})
    when = (update.timestamp or utcnow()).isoformat()
    if part:
        # A later part of a long reply: kept per part; the message's own statuses are its first part's.
        part_statuses = dict(details.get("part_statuses") or {})
        part_statuses[update.wamid] = {**dict(part_statuses.get(update.wamid) or {}), update.status: when}
        details["part_statuses"] = part_statuses
    else:
        statuses = dict(details.get("statuses") or {})
        statuses[update.status] = when
        details["statuses"] = statuses
    if update.errors:
        details["errors"] = update.errors
    meta["whatsapp"] = details
    message.meta = meta
    if update.status == "failed":
        # Any part lost means the citizen did not get the whole reply.
        message.delivery_status = FAILED
        message.next_attempt_at = None
        message.lease_expires_at = None
        message.delivery_error = f"WhatsApp could not deliver the message: {describe_errors(update.errors)}"[:2000]
        logger.warning("WhatsApp reports message %s failed: %s", message.id, message.delivery_error)
    return True


def _message_with_part(session: Session, wamid: str) -> Message | None:
    """The message a long reply's later part belongs to (recorded by the delivery worker)."""
    return session.scalars(
        select(Message)
        .join(MessagePart, MessagePart.message_id == Message.id)
        .where(MessagePart.channel == CHANNEL, MessagePart.external_id == wamid, Message.direction == "out")
    ).one_or_none()
