"""A department's queue: vulnerable citizens' tickets first, then all by due time; filtered, counted.

"Overdue" means what the statistics mean by it: still being worked on
(new, open, pending_citizen) and past the due time the citizen was promised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from bot.staff.models import StaffUser
from bot.store.models import ChannelIdentity
from bot.store.types import utcnow
from bot.texts import DEFAULT_LANGUAGE
from bot.tickets.models import Ticket
from bot.tickets.priority import PRIORITIES
from bot.tickets.status import OPEN_STATUSES, STATUSES

ACTIVE = "active"  # the default status filter: every status still being worked on
ALL = "all"
STATUS_FILTERS: tuple[str, ...] = (ACTIVE, *STATUSES, ALL)
QUEUE_LIMIT = 500
# What a language filter may be: an ISO 639-1 code or a tag like "pt-br" (Ticket.language's width).
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,4})?")


@dataclass(frozen=True)
class QueueFilters:
    status: str = ACTIVE
    priority: str = ""
    channel: str = ""
    mine: bool = False
    unassigned: bool = False
    overdue: bool = False
    language: str = ""

    @classmethod
    def parse(cls, *, status: str = ACTIVE, priority: str = "", channel: str = "", mine: str = "",
              unassigned: str = "", overdue: str = "", language: str = "") -> QueueFilters:
        """From query parameters; unknown values fall back to "no filter" rather than an error page
        (a well-formed language no ticket has is kept: it matches no tickets)."""
        language = language.strip().lower()
        return cls(
            status=status if status in STATUS_FILTERS else ACTIVE,
            priority=priority if priority in PRIORITIES else "",
            channel=channel.strip()[:32],
            mine=mine in ("1", "on", "true"),
            unassigned=unassigned in ("1", "on", "true"),
            overdue=overdue in ("1", "on", "true"),
            language=language if _LANGUAGE.fullmatch(language) else "",
        )

    def query_params(self) -> dict[str, str]:
        params = {"status": self.status}
        if self.priority:
            params["priority"] = self.priority
        if self.channel:
            params["channel"] = self.channel
        if self.language:
            params["language"] = self.language
        for name in ("mine", "unassigned", "overdue"):
            if getattr(self, name):
                params[name] = "1"
        return params


@dataclass(frozen=True)
class QueueRow:
    public_id: str
    subject: str
    status: str
    priority: str
    reason: str
    channel: str
    # ISO 639-1; a ticket without one (opened before languages were recorded) is in the KB's main language.
    language: str
    created_at: datetime
    updated_at: datetime
    due_at: datetime
    first_response_at: datetime | None
    assignee_id: int | None
    assignee: str | None
    overdue: bool
    vulnerable: bool = False
    vulnerable_reason: str | None = None


@dataclass
class QueueCounts:
    active: int = 0
    overdue: int = 0
    unassigned: int = 0
    mine: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def queue_rows(
    session: Session,
    department: str,
    filters: QueueFilters,
    *,
    staff_id: int,
    now: datetime | None = None,
    limit: int = QUEUE_LIMIT,
    default_language: str = DEFAULT_LANGUAGE,
) -> list[QueueRow]:
    """``default_language``: the KB's main language, what a ticket without a language is in."""
    now = now or utcnow()
    query = (
        select(Ticket, ChannelIdentity.channel, StaffUser.display_name)
        .join(ChannelIdentity, ChannelIdentity.id == Ticket.identity_id)
        .outerjoin(StaffUser, StaffUser.id == Ticket.assignee_id)
        .where(Ticket.department == department)
    )
    if filters.status == ACTIVE:
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    elif filters.status != ALL:
        query = query.where(Ticket.status == filters.status)
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.channel:
        query = query.where(ChannelIdentity.channel == filters.channel)
    if filters.language == default_language:
        query = query.where(or_(Ticket.language.is_(None), Ticket.language == filters.language))
    elif filters.language:
        query = query.where(Ticket.language == filters.language)
    if filters.mine:
        query = query.where(Ticket.assignee_id == staff_id)
    if filters.unassigned:
        query = query.where(Ticket.assignee_id.is_(None))
    if filters.overdue:
        query = query.where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_at < now)
    # Vulnerable first (bot.tickets.service.set_vulnerable), then the nearest deadline.
    query = query.order_by(Ticket.vulnerable.desc(), Ticket.due_at, Ticket.id).limit(limit)
    rows = []
    for ticket, channel, assignee in session.execute(query):
        rows.append(
            QueueRow(
                public_id=ticket.public_id,
                subject=ticket.subject,
                status=ticket.status,
                priority=ticket.priority,
                reason=ticket.reason,
                channel=channel,
                language=ticket.language or default_language,
                created_at=ticket.created_at,
                updated_at=ticket.updated_at,
                due_at=ticket.due_at,
                first_response_at=ticket.first_response_at,
                assignee_id=ticket.assignee_id,
                assignee=assignee,
                overdue=ticket.status in OPEN_STATUSES and ticket.due_at < now,
                vulnerable=ticket.vulnerable,
                vulnerable_reason=ticket.vulnerable_reason if ticket.vulnerable else None,
            )
        )
    return rows


def queue_counts(session: Session, department: str, *, staff_id: int, now: datetime | None = None) -> QueueCounts:
    now = now or utcnow()
    counts = QueueCounts(by_status={status: 0 for status in STATUSES})
    for status, number in session.execute(
        select(Ticket.status, func.count()).where(Ticket.department == department).group_by(Ticket.status)
    ):
        counts.by_status[status] = int(number)
    active = Ticket.status.in_(OPEN_STATUSES)
    total, overdue, unassigned, mine = session.execute(
        select(
            func.count(),
            func.sum(case((Ticket.due_at < now, 1), else_=0)),
            func.sum(case((Ticket.assignee_id.is_(None), 1), else_=0)),
            func.sum(case((Ticket.assignee_id == staff_id, 1), else_=0)),
        ).where(and_(Ticket.department == department, active))
    ).one()
    counts.active = int(total or 0)
    counts.overdue = int(overdue or 0)
    counts.unassigned = int(unassigned or 0)
    counts.mine = int(mine or 0)
    return counts


def department_overview(
    session: Session, departments: list[str], *, staff_id: int, now: datetime | None = None
) -> dict[str, QueueCounts]:
    """Counts for several departments at once (the console's start page)."""
    now = now or utcnow()
    result = {code: QueueCounts() for code in departments}
    if not departments:
        return result
    rows = session.execute(
        select(
            Ticket.department,
            func.count(),
            func.sum(case((Ticket.due_at < now, 1), else_=0)),
            func.sum(case((Ticket.assignee_id.is_(None), 1), else_=0)),
            func.sum(case((Ticket.assignee_id == staff_id, 1), else_=0)),
        )
        .where(Ticket.department.in_(departments), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.department)
    )
    for department, total, overdue, unassigned, mine in rows:
        result[department] = QueueCounts(
            active=int(total or 0), overdue=int(overdue or 0), unassigned=int(unassigned or 0), mine=int(mine or 0)
        )
    return result


def channels_in_use(session: Session, department: str) -> list[str]:
    return sorted(
        session.scalars(
            select(ChannelIdentity.channel)
            .join(Ticket, Ticket.identity_id == ChannelIdentity.id)
            .where(Ticket.department == department)
            .distinct()
        )
    )


def languages_in_use(
    session: Session, department: str, *, configured: list[str] | None = None,
    default_language: str = DEFAULT_LANGUAGE,
) -> list[str]:
    """What the language filter offers: the main language first, then the configured languages
    and those of the department's tickets, alphabetical."""
    found = {
        language or default_language
        for language in session.scalars(select(Ticket.language).where(Ticket.department == department).distinct())
    }
    found.update(configured or ())
    found.discard(default_language)
    return [default_language, *sorted(found)]
