"""The periodic job of citizens' data rights: finish erasures that waited, void stale codes.

An erasure keeps what a legal hold needs (an open ticket, the address its answers go to)
and the address a last confirmation is on its way to. Each run looks for erased citizens
where such a reason has lapsed (the ticket is resolved or closed, the confirmation went out
or failed) and erases the rest; a citizen with nothing left is not touched, so running it
every few minutes costs a query and repeats nothing. It also expires unanswered codes and
voids download links past their time. The scheduler of ``python -m bot scheduler`` calls
``job(sessions, settings, now)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.privacy.erase import ERASED, erase_citizen, erase_outside_store, is_erased_address
from bot.privacy.models import EXPIRED as REQUEST_EXPIRED
from bot.privacy.models import PENDING, PrivacyRequest
from bot.settings import Settings
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from bot.tickets.status import OPEN_STATUSES

JOB_NAME = "privacy"


@dataclass
class PrivacyJobReport:
    citizens_finished: int = 0
    tickets_released: int = 0
    requests_expired: int = 0
    downloads_voided: int = 0
    still_held: list[str] = field(default_factory=list)  # ticket IDs still under legal hold


def _unfinished(session: Session) -> list[int]:
    """Erased citizens with something left: a ticket no longer open but not erased, or an address."""
    released_ticket = exists().where(Ticket.citizen_id == Citizen.id, Ticket.status.notin_(OPEN_STATUSES),
                                     Ticket.subject != ERASED)
    kept_address = exists().where(ChannelIdentity.citizen_id == Citizen.id,
                                  ~ChannelIdentity.address.startswith("erased:", autoescape=True))
    return list(session.scalars(select(Citizen.id).where(Citizen.erased_at.is_not(None),
                                                         released_ticket | kept_address)))


def _still_needed(session: Session, citizen_id: int) -> tuple[set[int], list[str]]:
    """Identities that must keep their address for now, and the held tickets' IDs."""
    held = list(session.scalars(select(Ticket).where(Ticket.citizen_id == citizen_id,
                                                     Ticket.status.in_(OPEN_STATUSES))))
    # Replies that survive this run's erasure and still wait for delivery: the erasure's own
    # confirmation (no ticket) and replies on tickets still held.
    on_the_way = set(session.scalars(select(Message.identity_id).where(
        Message.citizen_id == citizen_id, Message.direction == "out", Message.text != ERASED,
        Message.delivery_status.in_(("pending", "sending")),
        Message.ticket_id.is_(None) | Message.ticket_id.in_([t.id for t in held]))))
    return on_the_way, [t.public_id for t in held]


def job(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> PrivacyJobReport:
    now = now or utcnow()
    report = PrivacyJobReport()
    with sessions.begin() as session:
        report.requests_expired = session.execute(
            update(PrivacyRequest).where(PrivacyRequest.status == PENDING, PrivacyRequest.expires_at < now)
            .values(status=REQUEST_EXPIRED).execution_options(synchronize_session=False)).rowcount
        report.downloads_voided = session.execute(
            update(PrivacyRequest).where(PrivacyRequest.download_hash.is_not(None),
                                         PrivacyRequest.download_expires_at < now)
            .values(download_hash=None).execution_options(synchronize_session=False)).rowcount
        candidates = _unfinished(session)
    for citizen_id in candidates:
        with sessions.begin() as session:
            keep, held = _still_needed(session, citizen_id)
            identities = session.scalars(select(ChannelIdentity).where(ChannelIdentity.citizen_id == citizen_id))
            releasable = session.scalar(select(exists().where(
                Ticket.citizen_id == citizen_id, Ticket.status.notin_(OPEN_STATUSES), Ticket.subject != ERASED)))
            addresses_to_blank = [i for i in identities if not is_erased_address(i.address) and i.id not in keep]
            erased = None
            if releasable or (addresses_to_blank and not held):
                erased = erase_citizen(session, citizen_id, actor="system", keep_identity_ids=keep, now=now,
                                       reason="held data released: ticket resolved or closed, or last reply sent")
            report.still_held += held
        if erased is not None and (erased.tickets or erased.identities or erased.messages):
            erase_outside_store(settings, erased)
            report.citizens_finished += 1
            report.tickets_released += erased.tickets
    return report
