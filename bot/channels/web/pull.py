"""Replies for channels that cannot be pushed to: the web chat and other generic API clients.

Telegram, WhatsApp and e-mail get their messages delivered by
``bot.outbox.delivery``. A browser or an integration on the generic API has
no address we can call, so it asks: whatever is pending for its identity (an
agent's reply, typically) is handed over and marked sent.

The client passes the id of the last message it has shown as ``after``.
Messages it fetched before but may have lost (a dropped response, a reloaded
page) are handed over again as long as they are newer than ``after``, so a
reply is never lost between the store and the screen; ids let the client
drop duplicates. Without ``after`` only never-fetched messages are returned.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.registry import CHANNELS
from bot.outbox.delivery import PENDING, SENT
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow

# Marks an outbound message handed over by a fetch (rather than in an HTTP response or by a sender).
PULLED = "pulled"

# More than this many waiting replies means something is wrong; the client fetches again.
BATCH = 100


def is_pull_channel(channel: str) -> bool:
    """Channels with a sender of their own must never be "delivered" by someone fetching them."""
    return channel not in CHANNELS


def fetch_pending(
    session: Session, channel: str, sender: str, after: int | None = None, *, now: datetime | None = None
) -> list[Message]:
    """Outbound messages waiting for ``(channel, sender)``, oldest first; pending ones become sent.

    An unknown sender has nothing waiting (and is not created: fetching is not writing).
    """
    if not is_pull_channel(channel):
        raise ValueError(f"the {channel} channel delivers its own messages; they cannot be fetched")
    identity_id = session.scalar(
        select(ChannelIdentity.id).where(ChannelIdentity.channel == channel, ChannelIdentity.address == sender)
    )
    if identity_id is None:
        return []
    base = select(Message).where(Message.identity_id == identity_id, Message.direction == "out")
    if after is None:
        base = base.where(Message.delivery_status == PENDING)
    else:
        base = base.where(Message.delivery_status.in_((PENDING, SENT)))
    now = now or utcnow()
    fetched: list[Message] = []
    cursor = after or 0
    while len(fetched) < BATCH:
        page = session.scalars(base.where(Message.id > cursor).order_by(Message.id).limit(BATCH)).all()
        if not page:
            break
        cursor = page[-1].id
        for message in page:
            if message.delivery_status == PENDING:
                message.delivery_status = SENT
                message.sent_at = now
                message.delivery_attempts = (message.delivery_attempts or 0) + 1
                message.next_attempt_at = None
                message.meta = {**(message.meta or {}), "delivered_by": PULLED}
            elif (message.meta or {}).get("delivered_by") != PULLED:
                continue  # returned in the HTTP response of the message it answers: the client has it
            fetched.append(message)
            if len(fetched) == BATCH:
                break
    session.flush()
    return fetched
