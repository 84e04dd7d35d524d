"""Retention: what is past its period is erased or anonymised, in batches, and reported.

One function, ``run_retention(sessions, settings, now)``, run by the scheduler (``job`` is the
same with the runtime's parts) and by ``python -m bot privacy retention [--dry-run]``. Each kind
of data has its own period (``CRM_RETENTION_*_DAYS``, docs/privacy.md). The rules:

- Nothing that belongs to a citizen with an open ticket is touched (their case is live: its
  messages, their other conversations, their e-mail copies), nor any open ticket.
- Messages, tickets and e-mail copies are anonymised, not deleted: their texts go, the rows stay,
  so that statistics keep their counts (per channel, department, day) and foreign keys hold. An
  ``anonymised_at`` mark says it is done, so a second run finds nothing to do (idempotent).
- Rasa's tracker events, the audit log, console sign-in attempts and expired link codes are
  deleted: nothing counts them.
- Work goes in batches of ``CRM_RETENTION_BATCH_SIZE`` rows, one short transaction each, so a
  first run over years of data neither holds a huge transaction nor locks the store for long.

Tables of layers above this one (the e-mail channel's copies, the console's sign-in attempts,
the "Was it solved?" surveys' comments)
are reached by name, never by importing their packages: retention is a store-wide rule, and the
import order (tests/test_layers.py) stays as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.identity.models import CitizenMerge, LinkCode
from bot.settings import Settings
from bot.staff.models import AuditLog
from bot.store.models import Message
from bot.store.types import UTCDateTime
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.status import CLOSED, OPEN_STATUSES, RESOLVED

logger = logging.getLogger(__name__)

# Report keys, in the order they are done and printed.
KINDS: tuple[str, ...] = (
    "ticket_messages", "tickets", "conversation_messages", "email_copies",
    "trackers", "audit_log", "sign_in_attempts", "link_codes",
)

# Tables owned by layers above this one, by name (see the module's docstring).
_EMAIL_INBOUND = sa.table(
    "email_inbound",
    sa.column("id", sa.Integer), sa.column("sender", sa.String), sa.column("subject", sa.Text),
    sa.column("headers", sa.JSON), sa.column("body", sa.Text), sa.column("attachments", sa.JSON),
    sa.column("details", sa.JSON), sa.column("outcome", sa.String), sa.column("status", sa.String),
    sa.column("ticket_id", sa.Integer), sa.column("received_at", UTCDateTime()),
    sa.column("anonymised_at", UTCDateTime()),
)
# "Was it solved?" (bot.feedback): the comment goes with its ticket's other texts.
_FEEDBACK_SURVEYS = sa.table("feedback_surveys", sa.column("ticket_id", sa.Integer), sa.column("comment", sa.Text))
_SIGN_IN_ATTEMPTS = sa.table("sign_in_attempts", sa.column("id", sa.Integer), sa.column("at", UTCDateTime()))
# Rasa's SQLTrackerStore: one row per event, ``timestamp`` in seconds since the epoch.
_TRACKER_EVENTS = sa.table("events", sa.column("id", sa.Integer), sa.column("timestamp", sa.Float))


@dataclass
class RetentionReport:
    """What one run erased or anonymised (or, on a dry run, would have), per kind."""

    now: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        verb = "would erase or anonymise" if self.dry_run else "erased or anonymised"
        out = [f"retention at {self.now.isoformat()}{' (dry run: nothing changed)' if self.dry_run else ''}"]
        for kind in KINDS:
            cutoff = self.cutoffs.get(kind)
            before = f" (older than {cutoff.date().isoformat()})" if cutoff else ""
            out.append(f"  {kind:<22} {self.counts[kind]:>8}{before}")
        out.append(f"  total {verb}: {self.total}")
        out.extend(f"  note: {note}" for note in self.notes)
        return out


def _open_citizens() -> sa.Select:
    return sa.select(Ticket.citizen_id).where(Ticket.status.in_(OPEN_STATUSES))


def _finished_tickets(cutoff: datetime) -> sa.Select:
    return sa.select(Ticket.id).where(
        Ticket.status.in_((RESOLVED, CLOSED)),
        Ticket.updated_at < cutoff,
        Ticket.citizen_id.not_in(_open_citizens()),
    )


def _batched(
    sessions: sessionmaker[Session],
    ids_query: sa.Select,
    apply: Callable[[Session, list[int]], None],
    *,
    dry_run: bool,
    batch: int,
) -> int:
    """Count (dry run) or work through ``ids_query`` batch by batch; ``apply`` must make each id
    leave the query, or the loop would see it again."""
    if dry_run:
        with sessions() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(ids_query.subquery())) or 0)
    done = 0
    while True:
        with sessions.begin() as session:
            ids = list(session.scalars(ids_query.limit(batch)))
            if ids:
                apply(session, ids)
        done += len(ids)
        if len(ids) < batch:
            return done


def _anonymise_messages(now: datetime) -> Callable[[Session, list[int]], None]:
    def apply(session: Session, ids: list[int]) -> None:
        session.execute(
            sa.update(Message)
            .where(Message.id.in_(ids))
            .values(text="", meta={}, delivery_error=None, anonymised_at=now)
            .execution_options(synchronize_session=False)
        )

    return apply


def _anonymise_tickets(now: datetime) -> Callable[[Session, list[int]], None]:
    def apply(session: Session, ids: list[int]) -> None:
        session.execute(
            sa.update(TicketEvent).where(TicketEvent.ticket_id.in_(ids)).values(body="")
            .execution_options(synchronize_session=False)
        )
        session.execute(
            sa.update(_FEEDBACK_SURVEYS).where(_FEEDBACK_SURVEYS.c.ticket_id.in_(ids),
                                               _FEEDBACK_SURVEYS.c.comment.is_not(None))
            .values(comment="")
        )
        session.execute(
            sa.update(Ticket).where(Ticket.id.in_(ids)).values(
                subject="", anonymised_at=now,
                # An agent's words on why a citizen is vulnerable go; a rule's name says nothing of them.
                vulnerable_reason=sa.case(
                    (Ticket.vulnerable_reason.startswith("agent "), "agent"), else_=Ticket.vulnerable_reason
                ),
            )
            .execution_options(synchronize_session=False)
        )

    return apply


def _anonymise_email(now: datetime) -> Callable[[Session, list[int]], None]:
    def apply(session: Session, ids: list[int]) -> None:
        table = _EMAIL_INBOUND
        session.execute(
            sa.update(table).where(table.c.id.in_(ids)).values(
                sender=None, subject="", headers=[], body="", attachments=[], details={}, anonymised_at=now,
                # An error text may quote the mail; its first word ("error", "no_reply") is what counts.
                outcome=sa.case((table.c.outcome.like("error:%"), "error"), else_=table.c.outcome),
            )
        )

    return apply


def _delete(table: Any) -> Callable[[Session, list[int]], None]:
    def apply(session: Session, ids: list[int]) -> None:
        session.execute(sa.delete(table).where(table.c.id.in_(ids)))

    return apply


def _tracker_engine(settings: Settings) -> sa.Engine | None:
    """An engine on Rasa's tracker store, or None when it does not exist yet (Rasa never ran)."""
    url = sa.engine.make_url(settings.tracker_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or not Path(url.database).is_file():
            return None
    elif url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the application's driver; Rasa's is psycopg2
    return sa.create_engine(url, pool_pre_ping=True)


def _trackers(settings: Settings, cutoff: datetime, report: RetentionReport) -> int:
    engine = _tracker_engine(settings)
    if engine is None:
        report.notes.append("no tracker store yet (Rasa has not run): nothing to do")
        return 0
    try:
        if not sa.inspect(engine).has_table("events"):
            report.notes.append("the tracker store has no events table yet: nothing to do")
            return 0
        events = _TRACKER_EVENTS
        old = sa.select(events.c.id).where(events.c.timestamp < cutoff.timestamp()).order_by(events.c.id)
        return _batched(
            sessionmaker(engine), old, _delete(events), dry_run=report.dry_run, batch=settings.retention_batch_size
        )
    finally:
        engine.dispose()


def run_retention(
    sessions: sessionmaker[Session], settings: Settings, now: datetime, *, dry_run: bool = False
) -> RetentionReport:
    """Erase or anonymise everything past its retention period at ``now``; see the module docstring."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    report = RetentionReport(now=now, dry_run=dry_run)
    batch = settings.retention_batch_size

    def cutoff(kind: str, days: int) -> datetime:
        report.cutoffs[kind] = now - timedelta(days=days)
        return report.cutoffs[kind]

    def run(kind: str, query: sa.Select, apply: Callable[[Session, list[int]], None]) -> None:
        report.counts[kind] = _batched(sessions, query, apply, dry_run=dry_run, batch=batch)

    tickets_before = cutoff("ticket_messages", settings.retention_ticket_days)
    report.cutoffs["tickets"] = tickets_before
    run("ticket_messages",
        sa.select(Message.id).where(Message.anonymised_at.is_(None), Message.ticket_id.in_(_finished_tickets(tickets_before)))
        .order_by(Message.id),
        _anonymise_messages(now))
    run("tickets",
        sa.select(Ticket.id).where(Ticket.anonymised_at.is_(None), Ticket.id.in_(_finished_tickets(tickets_before)))
        .order_by(Ticket.id),
        _anonymise_tickets(now))
    run("conversation_messages",
        sa.select(Message.id).where(
            Message.anonymised_at.is_(None),
            Message.ticket_id.is_(None),
            Message.created_at < cutoff("conversation_messages", settings.retention_conversation_days),
            Message.citizen_id.not_in(_open_citizens()),
            # A reply still waiting for delivery is not history yet.
            sa.or_(Message.delivery_status.is_(None), Message.delivery_status.not_in(("pending", "sending"))),
        ).order_by(Message.id),
        _anonymise_messages(now))
    email = _EMAIL_INBOUND
    open_tickets = sa.select(Ticket.id).where(Ticket.status.in_(OPEN_STATUSES))
    run("email_copies",
        sa.select(email.c.id).where(
            email.c.anonymised_at.is_(None),
            email.c.status != "received",  # not handled yet: the worker still needs it
            email.c.received_at < cutoff("email_copies", settings.retention_email_days),
            sa.or_(email.c.ticket_id.is_(None), email.c.ticket_id.not_in(open_tickets)),
        ).order_by(email.c.id),
        _anonymise_email(now))
    report.counts["trackers"] = _trackers(settings, cutoff("trackers", settings.retention_tracker_days), report)
    audit = AuditLog.__table__
    run("audit_log",
        sa.select(audit.c.id).where(audit.c.at < cutoff("audit_log", settings.retention_audit_days)).order_by(audit.c.id),
        _delete(audit))
    attempts = _SIGN_IN_ATTEMPTS
    run("sign_in_attempts",
        sa.select(attempts.c.id).where(attempts.c.at < cutoff("sign_in_attempts", settings.retention_signin_days))
        .order_by(attempts.c.id),
        _delete(attempts))
    codes = LinkCode.__table__
    cited = sa.select(CitizenMerge.link_code_id).where(CitizenMerge.link_code_id.is_not(None))
    run("link_codes",
        sa.select(codes.c.id).where(
            codes.c.expires_at < cutoff("link_codes", settings.retention_link_code_days), codes.c.id.not_in(cited)
        ).order_by(codes.c.id),
        _delete(codes))
    logger.info("retention%s: %s", " (dry run)" if dry_run else "",
                ", ".join(f"{kind}={count}" for kind, count in report.counts.items()))
    return report


def job(runtime: Any, now: datetime) -> RetentionReport:
    """For the scheduler: ``run_retention`` with the runtime's session factory and settings."""
    return run_retention(runtime.sessions, runtime.settings, now)
