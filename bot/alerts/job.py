"""Raising commitment alerts and queueing daily digests (run by ``python -m bot scheduler``).

Each function takes a session and ``now`` and never commits: the scheduler's job owns the unit
of work, so an alert and the e-mail it queues are stored together or not at all. "Once" is the
database's promise, not this code's: every alert is inserted in a SAVEPOINT against the unique
constraint (ticket, threshold, recipient), and every e-mail against its unique key, so a second
scheduler that got there first only makes this insert fail and be skipped.

Recipients: the ticket's department (its ``email`` in departments.yml; with ``alerts: digest``
it gets one e-mail a day instead of one per ticket) and its assignee (``StaffUser.email``).
Every alert is recorded and shown in the console even when it cannot be e-mailed. A ticket
waiting for the citizen (``pending_citizen``) raises nothing: its clock is paused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import String, and_, cast, exists, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot.alerts.models import (
    NEAR_DUE,
    OVERDUE,
    SKIPPED,
    StaffNotification,
    TicketAlert,
    department_recipient,
    staff_recipient,
)
from bot.kb.schema import KnowledgeBase
from bot.tickets.models import Ticket
from bot.tickets.schedule import calendar_of, departments
from bot.tickets.status import NEW, OPEN

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

# Statuses whose clock runs; pending_citizen is paused, resolved and closed are done.
RUNNING: tuple[str, ...] = (NEW, OPEN)
BATCH = 500

# Why an alert is shown in the console only (TicketAlert.delivery).
BY_EMAIL = "email"
IN_DIGEST = "digest"
NO_SMTP = "console only: e-mail not configured"
NO_ADDRESS = "console only: no e-mail address"

_LABEL = {NEAR_DUE: "is near its due time", OVERDUE: "is past its due time"}


@dataclass(frozen=True)
class AlertCounts:
    raised: int = 0
    emails: int = 0


def _recipient_missing(threshold: str, recipient_sql) -> object:  # noqa: ANN001 - a SQL expression
    return ~exists().where(
        TicketAlert.ticket_id == Ticket.id, TicketAlert.threshold == threshold, TicketAlert.recipient == recipient_sql
    )


def _candidates(session: Session, threshold: str, now: datetime) -> list[Ticket]:
    """Tickets past ``threshold`` with at least one recipient not yet alerted (oldest deadline first)."""
    reached = Ticket.due_at <= now if threshold == OVERDUE else and_(Ticket.warn_at <= now, Ticket.due_at > now)
    department = literal("department:", String) + Ticket.department
    assignee = literal("staff:", String) + cast(Ticket.assignee_id, String)
    missing = or_(
        _recipient_missing(threshold, department),
        and_(Ticket.assignee_id.is_not(None), _recipient_missing(threshold, assignee)),
    )
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.status.in_(RUNNING), reached, missing)
            .options(selectinload(Ticket.assignee))
            .order_by(Ticket.due_at, Ticket.id)
            .limit(BATCH)
        )
    )


def _ticket_link(settings: Settings, public_id: str) -> str:
    base = (settings.console_public_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    return f"{base}/console/tickets/{public_id}"


def _local(settings: Settings, department: str, instant: datetime) -> str:
    tz = calendar_of(settings.kb_dir, department).tz
    return instant.astimezone(tz).strftime(f"%Y-%m-%d %H:%M ({tz.key})")


def alert_email(settings: Settings, kb: KnowledgeBase, ticket: Ticket, threshold: str) -> tuple[str, str]:
    """Subject and body of one alert. The citizen's words stay in the console: e-mail leaves the city's systems."""
    department = kb.departments.get(ticket.department)
    name = department.name if department and department.name else ticket.department
    subject = f"[{ticket.public_id}] ticket {_LABEL[threshold]} ({name})"
    body = (
        f"Ticket {ticket.public_id} {_LABEL[threshold]}.\n\n"
        f"Department: {name}\nPriority:   {ticket.priority}\nStatus:     {ticket.status}\n"
        f"Due:        {_local(settings, ticket.department, ticket.due_at)}\n\n"
        f"Open it in the console: {_ticket_link(settings, ticket.public_id)}\n\n"
        "You get this e-mail once per ticket and threshold (near due, overdue). "
        "Alerts are also listed in the console.\n"
    )
    return subject, body


def _insert_alert(session: Session, alert: TicketAlert, email: tuple[str, str, str] | None) -> bool:
    """Insert the alert (and its e-mail) unless someone else already did; True if this call did."""
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
            if email is not None:
                address, subject, body = email
                session.add(StaffNotification(key=f"alert:{alert.id}", to_address=address, subject=subject,
                                              body=body, created_at=alert.created_at,
                                              next_attempt_at=alert.created_at))
                session.flush()
    except IntegrityError:
        return False
    return True


def raise_alerts(session: Session, settings: Settings, *, now: datetime, mail: bool) -> AlertCounts:
    """Record (and queue e-mail for) every alert that is due and not yet raised; ``mail``: SMTP is usable."""
    kb = departments(settings.kb_dir)
    raised = emails = 0
    for threshold in (OVERDUE, NEAR_DUE):
        for ticket in _candidates(session, threshold, now):
            department = kb.departments.get(ticket.department)
            digest = kb.schedule_of(ticket.department).alerts == "digest"
            targets: list[tuple[str, str | None, bool]] = [
                (department_recipient(ticket.department), department.email if department else None, digest)
            ]
            assignee = ticket.assignee
            if assignee is not None and assignee.active:
                targets.append((staff_recipient(assignee.id), assignee.email, False))
            done = set(
                session.scalars(
                    select(TicketAlert.recipient).where(
                        TicketAlert.ticket_id == ticket.id, TicketAlert.threshold == threshold
                    )
                )
            )
            for recipient, address, in_digest in targets:
                if recipient in done:
                    continue
                if not address:
                    delivery = NO_ADDRESS
                elif not mail:
                    delivery = NO_SMTP
                elif in_digest:
                    delivery = IN_DIGEST
                else:
                    delivery = BY_EMAIL
                email = None
                if delivery == BY_EMAIL:
                    subject, body = alert_email(settings, kb, ticket, threshold)
                    email = (address, subject, body)
                alert = TicketAlert(ticket_id=ticket.id, threshold=threshold, recipient=recipient,
                                    created_at=now, due_at=ticket.due_at, delivery=delivery)
                if _insert_alert(session, alert, email):
                    raised += 1
                    emails += email is not None
    if raised:
        logger.info("raised %d commitment alert(s), %d e-mail(s) queued", raised, emails)
    return AlertCounts(raised, emails)


def _digest_due(settings: Settings, tz_now: datetime) -> bool:
    hour, minute = (int(part) for part in settings.alert_digest_time.split(":"))
    return tz_now.time() >= time(hour, minute)


def digest_email(
    settings: Settings, kb: KnowledgeBase, department: str, tickets: list[Ticket], now: datetime
) -> tuple[str, str]:
    info = kb.departments.get(department)
    name = info.name if info and info.name else department
    overdue = [t for t in tickets if t.due_at <= now]
    near = [t for t in tickets if t.due_at > now]
    lines = [f"Tickets of {name} near or past their due time, {_local(settings, department, now)}:", ""]
    for title, group in (("Past their due time", overdue), ("Near their due time", near)):
        if group:
            lines.append(f"{title} ({len(group)}):")
            lines += [
                f"  {t.public_id}  {t.priority:<7} due {_local(settings, department, t.due_at)}  "
                f"{_ticket_link(settings, t.public_id)}"
                for t in group
            ]
            lines.append("")
    lines.append("One digest a day (alerts: digest in departments.yml); alerts are also listed in the console.")
    subject = f"{name}: {len(overdue)} overdue, {len(near)} near due ticket(s)"
    return subject, "\n".join(lines) + "\n"


def queue_digests(session: Session, settings: Settings, *, now: datetime, mail: bool) -> int:
    """One e-mail a day per department with ``alerts: digest``, at CRM_ALERT_DIGEST_TIME in its time zone."""
    if not mail:
        return 0
    kb = departments(settings.kb_dir)
    queued = 0
    for code, department in kb.departments.items():
        if kb.schedule_of(code).alerts != "digest" or not department.email:
            continue
        calendar = calendar_of(settings.kb_dir, code)
        local_now = now.astimezone(calendar.tz)
        if not _digest_due(settings, local_now):
            continue
        key = f"digest:{code}:{local_now.date().isoformat()}"
        if session.scalar(select(StaffNotification.id).where(StaffNotification.key == key)) is not None:
            continue
        tickets = list(
            session.scalars(
                select(Ticket)
                .where(
                    Ticket.department == code,
                    Ticket.status.in_(RUNNING),
                    or_(Ticket.due_at <= now, Ticket.warn_at <= now),
                )
                .order_by(Ticket.due_at, Ticket.id)
                .limit(BATCH)
            )
        )
        subject, body = digest_email(settings, kb, code, tickets, now)
        # A day with nothing near or over due is recorded too, so the digest is not tried again that day.
        row = StaffNotification(key=key, to_address=department.email, subject=subject, body=body,
                                created_at=now, next_attempt_at=now)
        if not tickets:
            row.status = SKIPPED
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue
        queued += bool(tickets)
    return queued
