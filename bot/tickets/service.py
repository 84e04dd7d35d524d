"""Opening, joining and updating tickets.

These functions never commit: the caller owns the unit of work (one inbound
message, one agent action) and decides when it is complete. They flush when
they need database ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.staff.departments import own_commitment_hours
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.tickets import ids, schedule
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.priority import NORMAL as NORMAL_PRIORITY
from bot.tickets.priority import PRIORITIES, URGENT, detect_priority, priority_rank
from bot.tickets.status import CLOSED, NEW, OPEN, OPEN_STATUSES, PENDING_CITIZEN, RESOLVED, check_transition

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "CITIZEN_RECORD",
    "EVENT_KINDS",
    "REASONS",
    "StatusLookup",
    "add_note",
    "add_public_update",
    "attach_to_ticket",
    "open_ticket_of",
    "change_status",
    "department_commitment",
    "detect_priority",
    "lookup_status_for_identity",
    "open_or_join_ticket",
    "priority_rank",
    "set_vulnerable",
]

# Why a conversation became a ticket; reports group by it.
REASONS: tuple[str, ...] = (
    "complaint",
    "report_problem",
    "personal_case",
    "request_human",
    "out_of_scope",
    "low_confidence",
    "long_message",
    "assistant_unavailable",
    # The KB entry has no answer in the citizen's language and the city hands those over
    # (CRM_UNTRANSLATED_ANSWER=hand_over, bot.core.languages).
    "not_translated",
)

EVENT_KINDS: tuple[str, ...] = (
    "created",
    "citizen_message",
    "status_changed",
    "priority_changed",
    "note",
    "public_update",
    "assigned",
    # The ticket's citizen proved another identity is theirs (bot.identity.merge).
    "citizen_linked",
    # Flagged vulnerable or no longer (set_vulnerable): by a rule, the citizen's record or an agent.
    "vulnerable_changed",
)

# The reason a ticket is vulnerable when the citizen is on record as vulnerable (with consent).
CITIZEN_RECORD = "citizen record"
VULNERABLE_REASON_LENGTH = 500

# Actors whose public words are not a response from the city (see _touch_first_response).
_AUTOMATIC_ACTORS = frozenset({"assistant", "citizen"})

SUBJECT_LENGTH = 200
_ID_ATTEMPTS = 5


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from bot.settings import get_settings

    return get_settings()


def department_commitment(
    session: Session, department: str, priority: str, settings: Settings, *, vulnerable: bool = False
) -> timedelta:
    """How long the city promises for a ticket of ``priority`` in ``department``.

    A department's own hours (set by an admin) replace the global default; an
    urgent ticket, and a vulnerable citizen's ticket, keep the urgent commitment
    unless the department promises even faster.
    """
    priority_rank(priority)  # unknown priorities fail here
    own = own_commitment_hours(session, department)
    normal = own if own is not None else settings.response_commitment_hours
    if priority == URGENT or vulnerable:
        normal = min(settings.urgent_commitment_hours, normal)
    return timedelta(hours=normal)


def _subject(text: str) -> str:
    return " ".join(text.split())[:SUBJECT_LENGTH] or "(empty message)"


def _event(
    session: Session,
    ticket: Ticket,
    kind: str,
    *,
    actor: str,
    body: str = "",
    public: bool = False,
    now: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    message_id: int | None = None,
) -> TicketEvent:
    event = TicketEvent(
        ticket=ticket,
        kind=kind,
        actor=actor,
        body=body,
        public=public,
        created_at=now,
        from_status=from_status,
        to_status=to_status,
        message_id=message_id,
    )
    session.add(event)
    ticket.updated_at = now
    if public:
        _touch_first_response(ticket, actor, now)
    return event


def _touch_first_response(ticket: Ticket, actor: str, now: datetime) -> None:
    """The response commitment is met by a person at the city, not by the bot's receipt."""
    if ticket.first_response_at is None and actor not in _AUTOMATIC_ACTORS:
        ticket.first_response_at = now


def _transcript(messages: list[Message]) -> str:
    lines = []
    for message in messages:
        who = "citizen" if message.direction == "in" else "assistant"
        lines.append(f"[{message.created_at:%Y-%m-%d %H:%M:%S} UTC] {who}: {message.text}")
    return "\n".join(lines)


def open_ticket_of(session: Session, citizen_id: int) -> Ticket | None:
    """The citizen's most recent ticket that is still being worked on, if any."""
    return _open_ticket_of(session, citizen_id)


def attach_to_ticket(session: Session, ticket: Ticket, inbound: Message, *, now: datetime | None = None,
                     settings: Settings | None = None) -> None:
    """Add a citizen's message (a photo, a location, more details) to an open ticket."""
    _join(session, ticket, inbound, NORMAL_PRIORITY, now or utcnow(), _settings(settings))


def _open_ticket_of(session: Session, citizen_id: int) -> Ticket | None:
    return session.scalars(
        select(Ticket)
        .where(Ticket.citizen_id == citizen_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()


def _join(
    session: Session,
    ticket: Ticket,
    inbound: Message,
    priority: str,
    now: datetime,
    settings: Settings,
    vulnerable_reason: str | None = None,
) -> None:
    inbound.ticket_id = ticket.id
    _event(session, ticket, "citizen_message", actor="citizen", body=inbound.text, now=now, message_id=inbound.id)
    if ticket.status == PENDING_CITIZEN:
        # The city was waiting for this answer: the ball is back in its court.
        change_status(session, ticket, OPEN, actor="assistant", note="The citizen replied.", now=now, settings=settings)
    if priority_rank(priority) > priority_rank(ticket.priority):
        _event(
            session,
            ticket,
            "priority_changed",
            actor="assistant",
            body=f"Priority raised from {ticket.priority} to {priority} by a new message.",
            now=now,
            message_id=inbound.id,
        )
        ticket.priority = priority
        # A more urgent ticket must not keep the slower deadline it was opened with.
        schedule.tighten(ticket, settings, _commitment_of(session, ticket, settings), now=now)
    # A flag an agent removed stays removed (vulnerable_at is set): the assistant does not overrule them.
    if vulnerable_reason and not ticket.vulnerable and ticket.vulnerable_at is None:
        set_vulnerable(session, ticket, True, reason=vulnerable_reason, actor="assistant", settings=settings,
                       now=now, from_now=True)


def _commitment_of(session: Session, ticket: Ticket, settings: Settings) -> timedelta:
    return department_commitment(session, ticket.department, ticket.priority, settings, vulnerable=ticket.vulnerable)


def set_vulnerable(
    session: Session,
    ticket: Ticket,
    vulnerable: bool,
    *,
    reason: str,
    actor: str,
    settings: Settings,
    now: datetime | None = None,
    from_now: bool = False,
) -> TicketEvent | None:
    """Flag the ticket vulnerable, or no longer; None when it already was what was asked.

    The due time follows from the one rule (``bot.tickets.schedule``): recomputed from the
    ticket's creation, or, for a flag raised by a new message on an open ticket (``from_now``),
    the shorter commitment counted from now when that is sooner, as for a raised priority.
    The reason is required: staff and auditors must be able to tell why a citizen went first.
    """
    reason = " ".join(reason.split())[:VULNERABLE_REASON_LENGTH]
    if not reason:
        raise ValueError("a reason is required to change whether a ticket is vulnerable")
    if ticket.vulnerable == vulnerable:
        return None
    now = now or utcnow()
    ticket.vulnerable = vulnerable
    ticket.vulnerable_reason, ticket.vulnerable_by, ticket.vulnerable_at = reason, actor[:64], now
    old_due = ticket.due_at
    if from_now and vulnerable:
        schedule.tighten(ticket, settings, _commitment_of(session, ticket, settings), now=now)
    else:
        schedule.apply_clock(session, ticket, settings, _commitment_of(session, ticket, settings), now=now)
    what = "Flagged vulnerable" if vulnerable else "No longer flagged vulnerable"
    return _event(
        session, ticket, "vulnerable_changed", actor=actor, now=now,
        body=f"{what} ({reason}); due time {old_due:%Y-%m-%d %H:%M} UTC -> {ticket.due_at:%Y-%m-%d %H:%M} UTC.",
    )


def _insert_with_fresh_id(session: Session, **fields: object) -> Ticket:
    """Insert a ticket under a new random public ID.

    Random 40-bit IDs do repeat now and then (by the birthday bound, about once
    in 220 stores of 100,000 tickets, and more often as the store grows), and the
    unique constraint is the only real guarantee, so a repeat is retried in a
    SAVEPOINT rather than surfacing as an error to a citizen.
    """
    for _ in range(_ID_ATTEMPTS):
        public_id = ids.new_ticket_id()
        ticket = Ticket(public_id=public_id, **fields)
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:
            if session.scalar(select(Ticket.id).where(Ticket.public_id == public_id)) is None:
                raise
            continue
        return ticket
    raise RuntimeError(f"no free ticket ID after {_ID_ATTEMPTS} attempts; is the random source broken?")


def _create(
    session: Session,
    inbound: Message,
    *,
    reason: str,
    department: str,
    priority: str,
    now: datetime,
    settings: Settings,
    vulnerable_reason: str | None = None,
) -> Ticket:
    vulnerable = bool(vulnerable_reason)
    commitment = department_commitment(session, department, priority, settings, vulnerable=vulnerable)
    clock = schedule.compute(settings, department, now, commitment)
    ticket = _insert_with_fresh_id(
        session,
        citizen_id=inbound.citizen_id,
        identity_id=inbound.identity_id,
        department=department,
        priority=priority,
        status=NEW,
        reason=reason,
        subject=_subject(inbound.text),
        created_at=now,
        updated_at=now,
        due_at=clock.due_at,
        warn_at=clock.warn_at,
        vulnerable=vulnerable,
        vulnerable_reason=vulnerable_reason or None,
        vulnerable_by="assistant" if vulnerable else None,
        vulnerable_at=now if vulnerable else None,
    )
    # The agent needs what led here, not just the last message: the conversation window
    # before the inbound message, on the same identity, not already part of a ticket.
    since = inbound.created_at - timedelta(minutes=settings.conversation_window_minutes)
    conversation = list(
        session.scalars(
            select(Message)
            .where(
                Message.identity_id == inbound.identity_id,
                Message.created_at >= since,
                Message.ticket_id.is_(None),
                Message.id != inbound.id,
            )
            .order_by(Message.created_at, Message.id)
            # A message of this window that another turn holds (the citizen's next message,
            # in flight) is left to that turn, which joins this ticket: taking it here would
            # wait for that turn while it waits for this one (a deadlock on PostgreSQL).
            .with_for_update(skip_locked=True)
        )
    )
    conversation.append(inbound)
    for message in conversation:
        message.ticket_id = ticket.id
    transcript = _transcript(conversation)
    _event(session, ticket, "created", actor="assistant", body=transcript, now=now, message_id=inbound.id)
    if vulnerable:
        _event(session, ticket, "vulnerable_changed", actor="assistant", now=now, message_id=inbound.id,
               body=f"Flagged vulnerable ({vulnerable_reason}); shorter commitment, first in the queue.")
    return ticket


def open_or_join_ticket(
    session: Session,
    *,
    inbound: Message,
    reason: str,
    department: str,
    priority: str = "normal",
    now: datetime | None = None,
    settings: Settings | None = None,
    vulnerable_reason: str | None = None,
) -> tuple[Ticket, bool]:
    """The ticket that now holds ``inbound``; ``(ticket, created)``.

    A citizen with a ticket still in progress gets that ticket back rather than
    a second one: agents should see one case per person, and the citizen one
    ID. The reason and department of a joined ticket stay as they were.
    ``vulnerable_reason`` (a rule's name, or ``CITIZEN_RECORD``) flags the ticket vulnerable.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown ticket reason {reason!r}; known: {', '.join(REASONS)}")
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; known: {', '.join(PRIORITIES)}")
    if inbound.direction != "in":
        raise ValueError("only a citizen's (inbound) message can open or join a ticket")
    now = now or utcnow()
    settings = _settings(settings)
    session.flush()  # inbound needs its id and created_at
    # One citizen's turns may escalate at the same moment (two messages in flight, or the
    # action server and the API): the citizen's row orders them, so the second sees the
    # first's ticket and joins it instead of opening another.
    session.execute(select(Citizen.id).where(Citizen.id == inbound.citizen_id).with_for_update())

    ticket = _open_ticket_of(session, inbound.citizen_id)
    if ticket is not None:
        if inbound.ticket_id != ticket.id:
            _join(session, ticket, inbound, priority, now, settings, vulnerable_reason)
        session.flush()
        return ticket, False

    ticket = _create(
        session, inbound, reason=reason, department=department, priority=priority, now=now, settings=settings,
        vulnerable_reason=vulnerable_reason,
    )
    session.flush()
    return ticket, True


def change_status(
    session: Session,
    ticket: Ticket,
    to_status: str,
    *,
    actor: str,
    note: str | None = None,
    public: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> TicketEvent:
    """Move a ticket along the workflow; raises InvalidTransition for moves it does not allow.

    Leaving ``pending_citizen`` resumes the ticket's clock: its due time moves on by the
    business time spent waiting for the citizen (``bot.tickets.schedule``).
    """
    check_transition(ticket.status, to_status)
    now = now or utcnow()
    from_status = ticket.status
    if from_status == PENDING_CITIZEN and to_status in OPEN_STATUSES:
        paused_at = session.scalar(
            select(TicketEvent.created_at)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.to_status == PENDING_CITIZEN)
            .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc())
            .limit(1)
        )
        if paused_at is not None:
            schedule.resume(ticket, _settings(settings), paused_at=paused_at, now=now)
    ticket.status = to_status
    if to_status == RESOLVED:
        ticket.resolved_at = now
    elif to_status == CLOSED:
        ticket.closed_at = now
    elif from_status == RESOLVED:
        # Reopened: the earlier resolution no longer holds (the event history keeps it).
        ticket.resolved_at = None
    body = note if note is not None else f"Status changed from {from_status} to {to_status}."
    event = _event(
        session,
        ticket,
        "status_changed",
        actor=actor,
        body=body,
        public=public,
        now=now,
        from_status=from_status,
        to_status=to_status,
    )
    session.flush()
    return event


def add_public_update(
    session: Session, ticket: Ticket, body: str, *, actor: str, now: datetime | None = None
) -> TicketEvent:
    """Something the citizen will be told when they ask about the ticket."""
    event = _event(session, ticket, "public_update", actor=actor, body=body, public=True, now=now or utcnow())
    session.flush()
    return event


def add_note(session: Session, ticket: Ticket, body: str, *, actor: str, now: datetime | None = None) -> TicketEvent:
    """An internal note: never shown to the citizen."""
    event = _event(session, ticket, "note", actor=actor, body=body, public=False, now=now or utcnow())
    session.flush()
    return event


@dataclass(frozen=True)
class StatusLookup:
    outcome: Literal["found", "mistyped", "not_found"]
    canonical_id: str | None = None
    ticket: Ticket | None = None
    last_public_update: str | None = None


def lookup_status_for_identity(session: Session, identity: ChannelIdentity, raw_id: str) -> StatusLookup:
    """What the citizen behind ``identity`` may learn about the ticket ID they typed.

    ``raw_id`` is one ID as typed (use ``ids.extract_ticket_ids`` on free text).
    Someone else's ticket answers exactly like a ticket that does not exist:
    "not yours" would confirm that the ID is real, and IDs leak (screenshots,
    shared phones). The check symbol is judged before the database is asked,
    so "mistyped" reveals nothing either.
    """
    canonical = ids.normalize(raw_id)
    if canonical is None or not ids.is_valid(canonical):
        return StatusLookup("mistyped", canonical_id=canonical)
    ticket = session.scalars(
        select(Ticket).where(Ticket.public_id == canonical, Ticket.citizen_id == identity.citizen_id)
    ).one_or_none()
    if ticket is None:
        return StatusLookup("not_found", canonical_id=canonical)
    last_public = session.scalars(
        select(TicketEvent.body)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.public.is_(True))
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc())
        .limit(1)
    ).first()
    return StatusLookup("found", canonical_id=canonical, ticket=ticket, last_public_update=last_public)
