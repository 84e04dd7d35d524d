"""WhatsApp's 24-hour customer-service window, decided just before a message goes out.

Free-form text may only be sent within 24 hours of the citizen's last message
to us. Outside it, in order of preference:

1. the configured, Meta-approved template, filled with the ticket ID and/or the
   reply; if the template does not carry the whole reply, the reply is *held*
   and sent as normal text as soon as the citizen writes again (which reopens
   the window);
2. a copy of the message on another channel of the same citizen (e-mail,
   Telegram), and a ticket note so the agent knows where it went;
3. otherwise the message fails, with a reason that tells the agent what to do.

This runs as the channel's preparer (bot.outbox.delivery.Preparer), inside the
transaction that claims the message, so the decision and what it queues commit
together with the claim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.channels.whatsapp.graph import TEMPLATE_META_KEY
from bot.outbox.delivery import FAILED, SENT, Settled, kept_conditions, queue_outbound
from bot.outbox.outbound import OutboundMessage
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.texts import text as catalogue_text
from bot.tickets.models import Ticket
from bot.tickets.service import add_note

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
# Our clock and Meta's differ a little, and a send takes time: stop free text slightly early.
SAFETY_MARGIN = timedelta(minutes=2)
# Meta refuses template parameters with newlines, tabs or long runs of spaces, and long ones.
PARAMETER_LIMIT = 1000
# Held replies older than this are not sent any more when the citizen writes again.
HOLD_LIMIT = timedelta(days=30)
ACTOR = "whatsapp"


def last_inbound_at(session: Session, identity_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(Message.created_at)).where(Message.identity_id == identity_id, Message.direction == "in")
    )


def window_open(session: Session, identity_id: int, *, now: datetime | None = None) -> bool:
    last = last_inbound_at(session, identity_id)
    return last is not None and (now or utcnow()) - last < WINDOW - SAFETY_MARGIN


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _whatsapp_meta(message: Message, **fields: Any) -> None:
    """Replace this attempt's decision in ``meta["whatsapp"]``, keeping status history."""
    meta = dict(message.meta or {})
    kept = {k: v for k, v in (meta.get("whatsapp") or {}).items() if k == "statuses"}
    meta["whatsapp"] = {**kept, **fields}
    message.meta = meta


class WindowPolicy:
    def __init__(
        self,
        *,
        template_name: str | None,
        template_language: str,
        template_parameters: Sequence[str],
        other_channels: Sequence[str],
    ) -> None:
        self._template_name = template_name
        self._template_language = template_language
        self._template_parameters = list(template_parameters)
        # Channels that can push a message to a citizen (they have a sender), in no order.
        self._other_channels = [c for c in other_channels if c != CHANNEL]

    def __call__(self, session: Session, message: Message, outbound: OutboundMessage) -> OutboundMessage | Settled:
        now = utcnow()
        if window_open(session, message.identity_id, now=now):
            _whatsapp_meta(message, sent_as="text")
            return outbound
        ticket = session.get(Ticket, message.ticket_id) if message.ticket_id else None
        if self._template_name:
            return self._as_template(message, outbound, ticket)
        other = self._other_identity(session, message)
        if other is not None:
            return self._redirect(session, message, other, ticket)
        reason = (
            "Not sent: the citizen's last WhatsApp message is more than 24 hours old, so WhatsApp only "
            "accepts an approved template, none is configured (CRM_WHATSAPP_TEMPLATE_NAME), and the citizen "
            "has no other channel we can write to. Contact the citizen another way, or wait for them to write."
        )
        _whatsapp_meta(message, sent_as="not_sent", reason="window_closed")
        if ticket is not None:
            add_note(session, ticket, f"Reply (message {message.id}) could not be delivered. {reason}", actor=ACTOR)
        return Settled(FAILED, reason)

    def _as_template(self, message: Message, outbound: OutboundMessage, ticket: Ticket | None) -> OutboundMessage:
        parameters, whole_text = [], False
        for name in self._template_parameters:
            if name == "ticket":
                parameters.append(ticket.public_id if ticket is not None else catalogue_text("whatsapp.no_ticket", message.language))
            else:
                line = _one_line(outbound.text)
                whole_text = whole_text or len(line) <= PARAMETER_LIMIT
                parameters.append(line if len(line) <= PARAMETER_LIMIT else line[: PARAMETER_LIMIT - 1] + "…")
        template = {"name": self._template_name, "language": self._template_language, "parameters": parameters}
        # The reply text is sent in full when the citizen writes back unless the template already carried it.
        _whatsapp_meta(message, sent_as="template", template=self._template_name, held=not whole_text)
        return dataclasses.replace(outbound, meta={**outbound.meta, TEMPLATE_META_KEY: template})

    def _other_identity(self, session: Session, message: Message) -> ChannelIdentity | None:
        """The citizen's other identity that they used most recently, on a channel that can send."""
        if not self._other_channels:
            return None
        last_used = (
            select(Message.identity_id, func.max(Message.created_at).label("last_in"))
            .where(Message.citizen_id == message.citizen_id, Message.direction == "in")
            .group_by(Message.identity_id)
            .subquery()
        )
        return session.scalars(
            select(ChannelIdentity)
            .outerjoin(last_used, last_used.c.identity_id == ChannelIdentity.id)
            .where(
                ChannelIdentity.citizen_id == message.citizen_id,
                ChannelIdentity.channel.in_(self._other_channels),
            )
            .order_by(last_used.c.last_in.is_(None), last_used.c.last_in.desc(), ChannelIdentity.id.desc())
            .limit(1)
        ).first()

    def _redirect(self, session: Session, message: Message, other: ChannelIdentity, ticket: Ticket | None) -> Settled:
        copy = queue_outbound(
            session,
            identity=other,
            text=message.text,
            author=message.author or "assistant",
            ticket=ticket,
            meta={"redirected_from": {"channel": CHANNEL, "message_id": message.id}, **kept_conditions(message.meta)},
        )
        reason = (
            f"Sent by {other.channel} instead of WhatsApp (message {copy.id}): the citizen's last WhatsApp "
            "message is more than 24 hours old and no WhatsApp template is configured."
        )
        _whatsapp_meta(
            message, sent_as="redirected", redirected_to={"channel": other.channel, "message_id": copy.id}
        )
        if ticket is not None:
            add_note(session, ticket, f"Reply (message {message.id}): {reason}", actor=ACTOR)
        return Settled(SENT, reason, then_deliver=(copy.id,))


def release_held(session: Session, identity_id: int, *, now: datetime | None = None) -> list[int]:
    """The citizen wrote again: queue the full text of replies that only went out as a template.

    Returns the new messages' ids, oldest first, for immediate delivery.
    """
    now = now or utcnow()
    candidates = session.scalars(
        select(Message)
        .where(
            Message.identity_id == identity_id,
            Message.direction == "out",
            Message.delivery_status == SENT,
            Message.created_at >= now - HOLD_LIMIT,
        )
        .order_by(Message.created_at, Message.id)
    )
    released = []
    for original in candidates:
        details = (original.meta or {}).get("whatsapp") or {}
        if not details.get("held"):
            continue
        copy = queue_outbound(
            session,
            identity=original.identity,
            text=original.text,
            author=original.author or "assistant",
            ticket=session.get(Ticket, original.ticket_id) if original.ticket_id else None,
            # A held announcement is checked again when released: "stop" may have come meanwhile.
            meta={"whatsapp_released_from": original.id, **kept_conditions(original.meta)},
            now=now,
        )
        _whatsapp_meta(original, **{**details, "held": False, "released_as": copy.id})
        released.append(copy.id)
    return released
