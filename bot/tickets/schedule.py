"""The one rule for a ticket's due time: its commitment in its department's business time from its
creation, plus the time it waited for the citizen (``bot.tickets.clock``).

Called whenever one of its inputs changes: the ticket is opened, its priority changes, or its
clock pauses (status ``pending_citizen``) or resumes. Calendars come from ``departments.yml``,
re-read when the file changes; a calendar the validator would reject runs round the clock
(and says so once in the log) rather than refusing to open a ticket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kb.hours import HoursError
from bot.kb.loader import DEPARTMENTS_FILE, load_departments
from bot.kb.schema import KnowledgeBase
from bot.tickets.clock import (
    ALWAYS,
    BusinessCalendar,
    Interval,
    Thresholds,
    deadline,
    pauses_from_history,
    running_time,
    thresholds,
)
from bot.tickets.models import Ticket, TicketEvent

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], KnowledgeBase]] = {}
_warned: set[tuple[str, str]] = set()


def departments(kb_dir: str | Path) -> KnowledgeBase:
    """``departments.yml`` as last read; read again when its size or modification time changes."""
    path = Path(kb_dir) / DEPARTMENTS_FILE
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (0, 0)
    with _lock:
        cached = _cache.get(str(path))
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_departments(kb_dir))
            _cache[str(path)] = cached
        return cached[1]


def calendar_of(kb_dir: str | Path, department: str) -> BusinessCalendar:
    schedule = departments(kb_dir).schedule_of(department)
    try:
        return BusinessCalendar.from_schedule(schedule)
    except HoursError as exc:
        key = (str(kb_dir), department)
        if key not in _warned:
            _warned.add(key)
            logger.warning("department %s: %s; its tickets run round the clock (python -m bot kb validate)",
                           department, exc)
        return ALWAYS


def pauses_of(session: Session, ticket: Ticket, now: datetime | None) -> list[Interval]:
    changes = session.execute(
        select(TicketEvent.created_at, TicketEvent.from_status, TicketEvent.to_status)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "status_changed")
        .order_by(TicketEvent.created_at, TicketEvent.id)
    ).all()
    return pauses_from_history([(at, src, dst) for at, src, dst in changes], now)


def compute(
    settings: Settings, department: str, start: datetime, commitment: timedelta, pauses: Sequence[Interval] = ()
) -> Thresholds:
    return thresholds(
        calendar_of(settings.kb_dir, department),
        start,
        commitment,
        pauses,
        near_fraction=settings.alert_near_due_percent / 100,
    )


def apply_clock(session: Session, ticket: Ticket, settings: Settings, commitment: timedelta, *, now: datetime) -> None:
    """The full rule: from the ticket's creation, every finished pause cut out.

    A pause still going on is left out (``resume`` moves the due time on when it ends), so
    that re-timing a waiting ticket and then resuming it does not count that pause twice.
    """
    pauses = pauses_of(session, ticket, None) if ticket.id is not None else []
    result = compute(settings, ticket.department, ticket.created_at, commitment, pauses)
    ticket.due_at, ticket.warn_at = result.due_at, result.warn_at


def tighten(ticket: Ticket, settings: Settings, commitment: timedelta, *, now: datetime) -> None:
    """A new message raised the priority: the faster commitment counts from now, if that is sooner."""
    result = compute(settings, ticket.department, now, commitment)
    ticket.due_at = min(ticket.due_at, result.due_at)
    ticket.warn_at = min(ticket.warn_at, result.warn_at) if ticket.warn_at is not None else result.warn_at


def resume(ticket: Ticket, settings: Settings, *, paused_at: datetime, now: datetime) -> None:
    """The clock runs again after waiting since ``paused_at``: what was left of it is counted from now.

    Shifting (rather than recomputing from creation) keeps a deadline that ``tighten`` set.
    """
    calendar = calendar_of(settings.kb_dir, ticket.department)
    for name in ("due_at", "warn_at"):
        instant = getattr(ticket, name)
        if instant is None or instant <= paused_at:
            continue  # already passed when the pause began: it stays passed
        left = running_time(calendar, paused_at, instant)
        setattr(ticket, name, deadline(calendar, now, left))
