"""Threading for e-mail the assistant did not write itself (agents' replies, copies).

An automatic reply knows the mail it answers. A reply an agent writes in the
console, or a copy the WhatsApp window policy sends here, does not: without
help it would arrive as a new conversation with a bare subject, and the
citizen's mail client would not put it under their question. This preparer
finds the citizen's latest e-mail on the same ticket (else their latest e-mail
at all) and threads the reply under it: ``In-Reply-To``, ``References`` and
the original subject (the sender adds the ticket ID).

It runs inside the transaction that claims the message and writes what it
chose into the message's meta, so a retry sends exactly the same headers even
if the citizen has written again in between.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.email.models import EmailInbound
from bot.outbox.outbound import OutboundMessage
from bot.store.models import Message


def thread_staff_reply(session: Session, message: Message, outbound: OutboundMessage) -> OutboundMessage | None:
    if (outbound.meta or {}).get("email"):
        return None  # an automatic reply, or one threaded on an earlier attempt
    mail = _latest_mail(session, outbound.address, message.ticket_id)
    email_meta: dict = {"automatic": False}
    if mail is not None:
        details = mail.details or {}
        email_meta.update(
            subject=mail.subject or "",
            in_reply_to=details.get("in_reply_to"),
            references=list(details.get("references") or []),
            inbound_id=mail.id,
        )
    message.meta = {**(message.meta or {}), "email": email_meta}
    return dataclasses.replace(outbound, meta={**(outbound.meta or {}), "email": email_meta})


def _latest_mail(session: Session, address: str, ticket_id: int | None) -> EmailInbound | None:
    sender = address.strip().lower()
    base = select(EmailInbound).where(EmailInbound.sender == sender).order_by(EmailInbound.id.desc()).limit(1)
    if ticket_id is not None:
        on_ticket = session.scalars(base.where(EmailInbound.ticket_id == ticket_id)).first()
        if on_ticket is not None:
            return on_ticket
    return session.scalars(base).first()
