"""Consent per purpose: give, withdraw, and what holds now.

Service functions: they take the caller's session and never commit. Giving what is already
given, or withdrawing what is not given, changes nothing and says so, so that a repeated
"stop" or a redelivered message leaves the evidence as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.identity.models import CONSENT_PURPOSES, Consent
from bot.outbox.delivery import CONDITIONS_META_KEY, FAILED, PENDING, Settled
from bot.store.models import Message
from bot.store.types import utcnow

# In a message's delivery conditions (bot.outbox.delivery.CONDITIONS_META_KEY): the purposes of
# which the citizen must still hold one when it goes out.
CONSENT_CONDITION = "consent_any"
WITHDRAWN_REASON = "Not sent: the citizen withdrew their consent (\"stop\") after this message was queued."

_PURPOSE = re.compile(rf"(?:{'|'.join(CONSENT_PURPOSES)})(?::[a-z0-9_-]{{1,48}})?")


def check_purpose(purpose: str) -> str:
    """``purpose`` if it is one the city asks consent for, else ValueError naming the known ones."""
    if not isinstance(purpose, str) or _PURPOSE.fullmatch(purpose) is None:
        raise ValueError(
            f"unknown consent purpose {purpose!r}; known: {', '.join(CONSENT_PURPOSES)} "
            "(optionally with a topic: announcements:waste)"
        )
    return purpose


def current_consents(session: Session, citizen_id: int) -> dict[str, Consent]:
    """The consents in force for the citizen, by purpose (the earliest row when two are, after a merge)."""
    rows = session.scalars(
        select(Consent)
        .where(Consent.citizen_id == citizen_id, Consent.withdrawn_at.is_(None))
        .order_by(Consent.given_at, Consent.id)
    )
    found: dict[str, Consent] = {}
    for row in rows:
        found.setdefault(row.purpose, row)
    return found


def has_consent(session: Session, citizen_id: int, purpose: str) -> bool:
    return check_purpose(purpose) in current_consents(session, citizen_id)


def give_consent(
    session: Session, citizen_id: int, purpose: str, *, channel: str, source: str, now: datetime | None = None
) -> tuple[Consent, bool]:
    """(the consent in force, whether it was given just now). Already given: kept as it was."""
    check_purpose(purpose)
    existing = current_consents(session, citizen_id).get(purpose)
    if existing is not None:
        return existing, False
    consent = Consent(
        citizen_id=citizen_id, purpose=purpose, given_at=now or utcnow(), channel=channel, source=source[:200]
    )
    session.add(consent)
    session.flush()
    return consent, True


def withdraw_consent(
    session: Session, citizen_id: int, purpose: str, *, channel: str, source: str, now: datetime | None = None
) -> bool:
    """Withdraw ``purpose``; False when it was not given (nothing changes)."""
    check_purpose(purpose)
    rows = list(
        session.scalars(
            select(Consent).where(
                Consent.citizen_id == citizen_id, Consent.purpose == purpose, Consent.withdrawn_at.is_(None)
            )
        )
    )
    when = now or utcnow()
    for row in rows:
        row.withdrawn_at, row.withdrawn_channel, row.withdrawn_source = when, channel, source[:200]
    session.flush()
    return bool(rows)


def needs_consent(purposes: Iterable[str]) -> dict[str, Any]:
    """Meta for a message that may go out only while the citizen holds one of ``purposes``."""
    return {CONDITIONS_META_KEY: {CONSENT_CONDITION: [check_purpose(p) for p in purposes]}}


def _required(message: Message) -> list[str] | None:
    conditions = (message.meta or {}).get(CONDITIONS_META_KEY)
    purposes = conditions.get(CONSENT_CONDITION) if isinstance(conditions, dict) else None
    return [p for p in purposes if isinstance(p, str)] if isinstance(purposes, list) else None


def consent_guard(session: Session, message: Message) -> Settled | None:
    """The outbox's check before a message goes out (registered by the runtime): a notice or an
    announcement whose citizen no longer agrees to it is settled as failed, never sent."""
    required = _required(message)
    if required is None:
        return None
    held = current_consents(session, message.citizen_id)
    return None if any(purpose in held for purpose in required) else Settled(FAILED, WITHDRAWN_REASON)


def cancel_without_consent(session: Session, citizen_id: int) -> int:
    """Settle the citizen's pending messages that need a consent they no longer hold; how many.

    Run when they say "stop": channels whose clients fetch their messages (the web chat) never
    pass the outbox's check, and pushed ones need not wait for their turn to be stopped."""
    pending = session.scalars(
        select(Message).where(
            Message.citizen_id == citizen_id, Message.direction == "out", Message.delivery_status == PENDING
        )
    )
    cancelled = 0
    held = None
    for message in pending:
        required = _required(message)
        if required is None:
            continue
        held = current_consents(session, citizen_id) if held is None else held
        if not any(purpose in held for purpose in required):
            message.delivery_status, message.delivery_error = FAILED, WITHDRAWN_REASON
            message.next_attempt_at = None
            cancelled += 1
    session.flush()
    return cancelled
