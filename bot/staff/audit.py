"""The audit log: who did what, to what, when.

Rows are added to the caller's unit of work, so an action and its audit row
are committed together or not at all: the log cannot claim a reply that was
never stored, nor miss one that was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.staff.models import AuditLog, StaffUser
from bot.store.types import utcnow


class SignedInActor(Protocol):
    """Whoever is signed in (the console's ``CurrentStaff``), seen only as what the log records."""

    user_id: int
    username: str
    ip: str | None

# Keys whose values must never reach the log, whoever passes them.
_SECRET_KEYS = frozenset({"password", "new_password", "token", "csrf_token", "password_hash"})


def _clean(detail: dict[str, Any] | None) -> dict[str, Any]:
    return {key: ("[withheld]" if key in _SECRET_KEYS else value) for key, value in (detail or {}).items()}


def audit(
    session: Session,
    actor: SignedInActor | StaffUser | str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
    now: datetime | None = None,
) -> AuditLog:
    """Record an action; ``actor`` is the signed-in staff member, a StaffUser, or a name like "system"."""
    if isinstance(actor, str):
        actor_id, actor_name = None, actor
    elif isinstance(actor, StaffUser):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = actor.user_id, actor.username
        ip = ip if ip is not None else (actor.ip or None)
    row = AuditLog(
        at=now or utcnow(),
        actor_id=actor_id,
        actor=actor_name[:100],
        action=action[:64],
        target=target[:200],
        detail=_clean(detail),
        ip=(ip or None) and ip[:64],
    )
    session.add(row)
    return row


def audit_entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditLog]:
    """Newest first; ``before_id`` pages back through older rows."""
    query = select(AuditLog)
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True))
    if target:
        query = query.where(AuditLog.target == target)
    if before_id:
        query = query.where(AuditLog.id < before_id)
    return list(session.scalars(query.order_by(AuditLog.id.desc()).limit(limit)))
