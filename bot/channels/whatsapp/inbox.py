"""Queue operations on the webhook inbox (``models.WhatsAppWebhook``).

Same discipline as the outbound queue (bot.outbox.delivery): a delivery is
claimed with a conditional UPDATE and a lease, so the request that stored it
and the sweeper never handle it at the same time, and a process that dies
mid-way leaves an expired lease that the sweeper takes over. Functions take a
session and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.channels.whatsapp.models import WhatsAppWebhook
from bot.store.types import utcnow

PENDING, PROCESSING, FAILED = "pending", "processing", "failed"

# Handling one delivery may wait on Rasa and on the Graph API for each message in it.
LEASE = timedelta(minutes=5)
# The request that stored a delivery handles it at once; the sweeper only steps in after this.
GRACE = timedelta(seconds=30)
MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


def store(session: Session, body: str, *, now: datetime | None = None) -> int:
    now = now or utcnow()
    row = WhatsAppWebhook(body=body, status=PENDING, attempts=0, received_at=now, next_attempt_at=now + GRACE)
    session.add(row)
    session.flush()
    return row.id


def claim(session: Session, row_id: int, *, now: datetime | None = None) -> tuple[str, int] | None:
    """Take a delivery to handle: ``(body, attempt)``, or None if someone else has it or it is done."""
    now = now or utcnow()
    taken = session.execute(
        update(WhatsAppWebhook)
        .where(
            WhatsAppWebhook.id == row_id,
            or_(
                WhatsAppWebhook.status == PENDING,
                (WhatsAppWebhook.status == PROCESSING) & (WhatsAppWebhook.lease_expires_at < now),
            ),
        )
        .values(status=PROCESSING, lease_expires_at=now + LEASE, attempts=WhatsAppWebhook.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        return None
    row = session.execute(
        select(WhatsAppWebhook.body, WhatsAppWebhook.attempts).where(WhatsAppWebhook.id == row_id)
    ).one()
    return row.body, row.attempts


def due(session: Session, *, now: datetime | None = None, limit: int = 20) -> list[int]:
    """Deliveries nobody is handling: not picked up after GRACE, retries due, dead leases."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(WhatsAppWebhook.id)
            .where(
                or_(
                    (WhatsAppWebhook.status == PENDING) & (WhatsAppWebhook.next_attempt_at <= now),
                    (WhatsAppWebhook.status == PROCESSING) & (WhatsAppWebhook.lease_expires_at < now),
                )
            )
            .order_by(WhatsAppWebhook.id)
            .limit(limit)
        )
    )


def finish(session: Session, row_id: int) -> None:
    session.execute(delete(WhatsAppWebhook).where(WhatsAppWebhook.id == row_id))


def retry_later(session: Session, row_id: int, error: str, *, now: datetime | None = None) -> str:
    """After a failed attempt: pending again with backoff, or failed for good; the new status."""
    now = now or utcnow()
    row = session.get(WhatsAppWebhook, row_id)
    if row is None:
        return FAILED
    row.error = error[:2000]
    row.lease_expires_at = None
    if row.attempts >= MAX_ATTEMPTS:
        # Kept, not deleted: an operator can read what came in and why it could not be handled.
        row.status, row.next_attempt_at = FAILED, None
    else:
        delay = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, row.attempts - 1)))
        row.status, row.next_attempt_at = PENDING, now + delay
    return row.status
