"""Consent per purpose: give, withdraw, and what holds now.

Service functions: they take the caller's session and never commit. Giving what is already
given, or withdrawing what is not given, changes nothing and says so, so that a repeated
"stop" or a redelivered message leaves the evidence as it was.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.identity.models import CONSENT_PURPOSES, Consent
from bot.store.types import utcnow

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
