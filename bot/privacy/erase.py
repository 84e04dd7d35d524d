"""Erasure of a citizen: everything that identifies them goes; counts stay.

Rows are kept with their texts replaced by ``[erased]`` (messages, tickets, ticket
history), so statistics per department, channel and day still add up; what only
identifies (addresses, display name, raw e-mail, link codes, "Do you mean ...?" offers,
pending WhatsApp deliveries, consents) is blanked or deleted.

A ticket still being worked on (new, open, waiting for the citizen) is under legal hold:
it is an open case the city must be able to finish and answer, so its messages and the
address its answers go to are kept, and the citizen is told which tickets and why. Once
the ticket is resolved or closed, ``bot.privacy.jobs.job`` finishes the erasure.

``erase_citizen`` takes a session and never commits. Rasa's tracker store is another
database (``settings.tracker_url``) and SQLite files keep deleted text in free pages, so
``erase_outside_store`` and ``compact_sqlite`` run after the caller's commit;
``erase_and_purge`` does all three in order for the CLI and the console.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, delete, func, inspect, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.identity.models import CitizenMerge, LinkCode
from bot.privacy import tables
from bot.privacy.models import PrivacyRequest
from bot.settings import Settings
from bot.staff.audit import SignedInActor, audit
from bot.staff.models import StaffUser
from bot.store.db import make_engine
from bot.store.models import ChannelIdentity, Citizen, KbOffer, Message, MessagePart
from bot.store.types import utcnow
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.status import OPEN_STATUSES

logger = logging.getLogger(__name__)

ERASED = "[erased]"
ERASED_ADDRESS_PREFIX = "erased:"
# Rasa's SQL tracker store keeps each conversation's events in this table, by sender id.
TRACKER_EVENTS_TABLE = "events"


# Tables of features that live beside or above this package, found by name when installed:
# (table, the column naming the citizen ("citizen_id") or one of their tickets, then "delete"
# or the text columns to replace by "[erased]"). A feature that keeps citizen text adds its line.
OTHER_TABLES: tuple[tuple[str, str, str | tuple[str, ...]], ...] = (
    ("consents", "citizen_id", "delete"),
    # "Was it solved?" (bot.feedback): the comment is the citizen's words; solved and rating stay
    # for the statistics. By ticket, so a held ticket keeps it until the erasure is finished.
    (tables.FEEDBACK_SURVEYS, "ticket_id", ("comment",)),
)


class ErasureRefused(ValueError):
    """A request that cannot be carried out as asked (no such citizen, no reason given)."""


@dataclass(frozen=True)
class HeldTicket:
    id: str
    status: str
    due_at: datetime


@dataclass
class ErasureReport:
    citizen: str
    erased_at: datetime
    identities: int = 0
    messages: int = 0
    tickets: int = 0
    raw_emails: int = 0
    other_rows: int = 0
    held: list[HeldTicket] = field(default_factory=list)
    # Identities whose address stays for now: held tickets answer there, or a last reply is on its way.
    kept_identities: int = 0
    # Rasa senders whose tracker events are to be deleted (erase_outside_store).
    tracker_senders: list[str] = field(default_factory=list)
    tracker_events: int | None = None

    @property
    def complete(self) -> bool:
        return not self.held and not self.kept_identities

    def summary(self) -> dict[str, Any]:
        """For the audit log and the CLI: counts and ticket IDs, never erased content."""
        return {
            "identities": self.identities, "messages": self.messages, "tickets": self.tickets,
            "raw_emails": self.raw_emails, "other_rows": self.other_rows,
            "held_tickets": [h.id for h in self.held], "kept_identities": self.kept_identities,
            "tracker_events": self.tracker_events,
        }


def is_erased_address(address: str) -> bool:
    return address.startswith(ERASED_ADDRESS_PREFIX)


def _key_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def erase_citizen(
    session: Session,
    citizen_id: int,
    *,
    actor: SignedInActor | StaffUser | str,
    reason: str,
    keep_identity_ids: Iterable[int] = (),
    now: datetime | None = None,
) -> ErasureReport:
    """Erase what identifies the citizen from the interaction store, except what a legal hold keeps.

    ``keep_identity_ids``: identities whose address stays until a last message (the erasure's
    own confirmation) is delivered; the periodic job blanks them afterwards. Running it again
    is harmless and finishes what holds kept earlier.
    """
    now = now or utcnow()
    reason = " ".join((reason or "").split())
    if not reason:
        raise ErasureRefused("a reason is required")
    citizen = session.get(Citizen, citizen_id, with_for_update=True)
    if citizen is None:
        raise ErasureRefused(f"no citizen {citizen_id!r}")
    report = ErasureReport(citizen=citizen.public_id, erased_at=now)

    identities = list(session.scalars(select(ChannelIdentity).where(ChannelIdentity.citizen_id == citizen_id)))
    tickets = list(session.scalars(select(Ticket).where(Ticket.citizen_id == citizen_id)))
    held = [t for t in tickets if t.status in OPEN_STATUSES]
    held_ids = {t.id for t in held}
    report.held = [HeldTicket(t.public_id, t.status, t.due_at) for t in sorted(held, key=lambda t: t.created_at)]

    # Identities a held ticket may answer on: the one it came in on and any the citizen used on it.
    kept_identity_ids = set(keep_identity_ids) | {t.identity_id for t in held}
    if held_ids:
        kept_identity_ids |= set(session.scalars(
            select(Message.identity_id).where(Message.ticket_id.in_(held_ids)).distinct()))
    erased_identities = [i for i in identities if i.id not in kept_identity_ids]
    erased_identity_ids = [i.id for i in erased_identities]
    report.kept_identities = sum(1 for i in identities if i.id in kept_identity_ids
                                 and not is_erased_address(i.address))
    report.tracker_senders = [i.public_id for i in identities]
    email_addresses = {i.address.lower() for i in identities
                       if i.channel == "email" and i.id not in kept_identity_ids and not is_erased_address(i.address)}
    whatsapp_addresses = [i.address for i in erased_identities
                          if i.channel == "whatsapp" and not is_erased_address(i.address)]

    # Messages in and out, except those on held tickets.
    message_filter = [Message.citizen_id == citizen_id]
    if held_ids:
        message_filter.append(or_(Message.ticket_id.is_(None), Message.ticket_id.notin_(held_ids)))
    erased_messages = select(Message.id).where(*message_filter)
    session.execute(delete(MessagePart).where(MessagePart.message_id.in_(erased_messages))
                    .execution_options(synchronize_session=False))
    report.messages = session.execute(
        update(Message).where(*message_filter, Message.text != ERASED)
        .values(text=ERASED, meta={}, external_id=None, delivery_error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    # An erased text is not worth delivering, and its address may be about to disappear.
    session.execute(
        update(Message)
        .where(*message_filter, Message.direction == "out", Message.delivery_status.in_(("pending", "sending")))
        .values(delivery_status="failed", next_attempt_at=None, lease_expires_at=None,
                delivery_error="not sent: the citizen's data was erased")
        .execution_options(synchronize_session=False)
    )

    # Tickets keep department, status, priority, times and reason (the counts); their words go.
    done_ids = [t.id for t in tickets if t.id not in held_ids]
    if done_ids:
        report.tickets = session.execute(
            update(Ticket).where(Ticket.id.in_(done_ids), Ticket.subject != ERASED).values(subject=ERASED)
            .execution_options(synchronize_session=False)
        ).rowcount
        # An agent's reason for the vulnerable flag may describe the person ("uses a wheelchair,
        # lives alone"); a rule's name ("age 80 or over") is kept for the counts.
        session.execute(
            update(Ticket).where(Ticket.id.in_(done_ids), Ticket.vulnerable_reason.like("agent %"))
            .values(vulnerable_reason="agent").execution_options(synchronize_session=False)
        )
        session.execute(
            update(TicketEvent).where(TicketEvent.ticket_id.in_(done_ids), TicketEvent.body != "",
                                      TicketEvent.body != ERASED)
            .values(body=ERASED).execution_options(synchronize_session=False)
        )

    # "Do you mean ...?" offers say what the citizen asked about.
    offer_filter = [KbOffer.citizen_id == citizen_id]
    if held_ids:
        offer_filter.append(or_(KbOffer.ticket_id.is_(None), KbOffer.ticket_id.notin_(held_ids)))
    report.other_rows += session.execute(delete(KbOffer).where(*offer_filter)
                                         .execution_options(synchronize_session=False)).rowcount

    if erased_identity_ids:
        # An address the citizen asked a /link code for that never wrote to us is theirs too
        # (or a typo), and exists only because they typed it.
        typed = session.scalars(select(ChannelIdentity).join(LinkCode, LinkCode.target_identity_id
                                                             == ChannelIdentity.id)
                                .where(LinkCode.identity_id.in_(erased_identity_ids),
                                       ChannelIdentity.citizen_id != citizen_id))
        for target in list(typed):
            wrote = session.scalar(select(Message.id).where(Message.identity_id == target.id,
                                                            Message.direction == "in").limit(1))
            if wrote is None and not is_erased_address(target.address):
                target.address = f"{ERASED_ADDRESS_PREFIX}{target.public_id}"
                report.identities += 1
                session.execute(update(Message).where(Message.identity_id == target.id).values(
                    text=ERASED, meta={}, external_id=None, delivery_error=None)
                    .execution_options(synchronize_session=False))
                session.execute(update(Message).where(Message.identity_id == target.id,
                                                      Message.delivery_status.in_(("pending", "sending")))
                                .values(delivery_status="failed", next_attempt_at=None, lease_expires_at=None,
                                        delivery_error="not sent: the citizen's data was erased")
                                .execution_options(synchronize_session=False))
        # Link codes to or from these identities; the merge record keeps only ids.
        codes = select(LinkCode.id).where(or_(LinkCode.identity_id.in_(erased_identity_ids),
                                              LinkCode.target_identity_id.in_(erased_identity_ids)))
        session.execute(update(CitizenMerge).where(CitizenMerge.link_code_id.in_(codes)).values(link_code_id=None)
                        .execution_options(synchronize_session=False))
        report.other_rows += session.execute(delete(LinkCode).where(LinkCode.id.in_(codes))
                                             .execution_options(synchronize_session=False)).rowcount
    # No download of an export may outlive the data.
    session.execute(update(PrivacyRequest).where(PrivacyRequest.citizen_id == citizen_id,
                                                 PrivacyRequest.download_hash.is_not(None))
                    .values(download_hash=None).execution_options(synchronize_session=False))

    report.raw_emails = _erase_raw_email(session, email_addresses, done_ids)
    report.other_rows += _erase_other_tables(session, citizen_id, whatsapp_addresses, done_ids)

    for identity in erased_identities:
        if not is_erased_address(identity.address):
            identity.address = f"{ERASED_ADDRESS_PREFIX}{identity.public_id}"
            report.identities += 1
    citizen.display_name = None
    # The vulnerability record rests on a consent the erasure ends.
    citizen.vulnerable_at = citizen.vulnerable_by = None
    # Records merged into this one (bot.identity.merge) stay behind empty, maybe with a name.
    merged, frontier = set(), {citizen_id}
    while frontier:
        frontier = set(session.scalars(select(CitizenMerge.merged_citizen_id)
                                       .where(CitizenMerge.kept_citizen_id.in_(frontier)))) - merged - {citizen_id}
        merged |= frontier
    for other in session.scalars(select(Citizen).where(Citizen.id.in_(merged))) if merged else ():
        other.display_name = None
        other.erased_at = other.erased_at or now
    first_time = citizen.erased_at is None
    citizen.erased_at = citizen.erased_at or now
    session.flush()
    if first_time or report.identities or report.messages or report.tickets:
        detail = {"reason": reason[:500], **report.summary()}
        detail.pop("tracker_events")
        audit(session, actor, "privacy.erase", f"citizen:{citizen.public_id}", detail, now=now)
    return report


def _erase_raw_email(session: Session, addresses: set[str], ticket_ids: list[int]) -> int:
    """The e-mail channel keeps every mail as it arrived (headers, body, attachment metadata)."""
    table = tables.installed_table("email_inbound")
    if table is None or not (addresses or ticket_ids):
        return 0
    conditions = []
    if addresses:
        conditions.append(func.lower(table.c.sender).in_(sorted(addresses)))
    if ticket_ids:
        conditions.append(table.c.ticket_id.in_(ticket_ids))
    rows = session.execute(select(table.c.id, table.c.message_key).where(or_(*conditions))).all()
    count = 0
    for row in rows:
        key = row.message_key
        # The key stays unique and recognisable as erased, but no longer names the mail.
        new_key = key if key.startswith(ERASED_ADDRESS_PREFIX) else f"{ERASED_ADDRESS_PREFIX}{_key_hash(key)}"
        session.execute(update(table).where(table.c.id == row.id).values(
            message_key=new_key, sender=None, subject=ERASED, headers=[], body=ERASED, attachments=[], details={},
            raw_sha256="", outcome=None))
        count += 1
    return count


def _erase_other_tables(session: Session, citizen_id: int, whatsapp_addresses: list[str],
                        ticket_ids: list[int]) -> int:
    """Tables owned by features above or beside this package, found by name."""
    count = 0
    for name, key, action in OTHER_TABLES:
        table = tables.installed_table(name)
        if table is None or key not in table.c:
            continue  # that feature is not installed here
        if key == "citizen_id":
            where = table.c.citizen_id == citizen_id
        elif ticket_ids:
            where = table.c[key].in_(ticket_ids)
        else:
            continue
        if action == "delete":
            count += session.execute(delete(table).where(where)).rowcount
        else:
            columns = [c for c in action if c in table.c]
            if columns:
                # Only rows with words left: a second run changes nothing (and counts nothing).
                filled = or_(*[(table.c[c].is_not(None)) & (table.c[c] != ERASED) for c in columns])
                count += session.execute(update(table).where(where, filled)
                                         .values({c: ERASED for c in columns})).rowcount
    webhooks = tables.installed_table("whatsapp_webhooks")
    if webhooks is not None and whatsapp_addresses:
        # Deliveries not yet handled still hold the raw payload, phone number and text included.
        count += session.execute(delete(webhooks).where(or_(*[
            webhooks.c.body.contains(f'"{address}"', autoescape=True) for address in whatsapp_addresses
        ]))).rowcount
    proposals = tables.installed_table("kb_proposals")
    if proposals is not None:
        sources = select(Message.id).where(Message.citizen_id == citizen_id, Message.text == ERASED)
        conditions = [proposals.c.source_message_id.in_(sources)]
        if ticket_ids:
            conditions.append(proposals.c.ticket_id.in_(ticket_ids))
        count += session.execute(update(proposals).where(or_(*conditions), proposals.c.question != ERASED)
                                 .values(question=ERASED)).rowcount
    return count


def erase_tracker(settings: Settings, senders: Iterable[str]) -> int | None:
    """Delete Rasa's events for these senders; None when there is no tracker store yet."""
    senders = sorted(set(senders))
    url = make_url(settings.tracker_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return None  # never create a tracker file just to find it empty
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(TRACKER_EVENTS_TABLE):
            return None
        events = Table(TRACKER_EVENTS_TABLE, MetaData(), autoload_with=engine)
        if not senders:
            return 0
        with engine.begin() as connection:
            return connection.execute(delete(events).where(events.c.sender_id.in_(senders))).rowcount
    finally:
        engine.dispose()


def compact_sqlite(url: str) -> bool:
    """Rewrite a SQLite file so that erased text is not left in its free pages or its WAL.

    PostgreSQL reclaims dead rows by (auto)vacuum; its files are the server's business."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or not Path(parsed.database).exists():
        return False
    import sqlite3

    connection = sqlite3.connect(parsed.database, timeout=10, isolation_level=None)
    try:
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True
    except sqlite3.OperationalError as exc:  # another process holds it: the next run tries again
        logger.warning("could not compact %s after an erasure: %s", parsed.database, exc)
        return False
    finally:
        connection.close()


def erase_outside_store(settings: Settings, report: ErasureReport) -> ErasureReport:
    """After the store's commit: Rasa's trackers, then the SQLite files' free pages."""
    report.tracker_events = erase_tracker(settings, report.tracker_senders)
    compact_sqlite(settings.database_url)
    compact_sqlite(settings.tracker_url)
    return report


def erase_and_purge(
    sessions: sessionmaker[Session],
    settings: Settings,
    citizen_id: int,
    *,
    actor: SignedInActor | StaffUser | str,
    reason: str,
    keep_identity_ids: Iterable[int] = (),
    now: datetime | None = None,
) -> ErasureReport:
    """The whole erasure, each store in its own unit of work, for callers that own none."""
    with sessions.begin() as session:
        report = erase_citizen(session, citizen_id, actor=actor, reason=reason,
                               keep_identity_ids=keep_identity_ids, now=now)
    return erase_outside_store(settings, report)
