"""What staff do to a ticket, each with its audit row in the same unit of work.

These functions take a session and never commit (the route owns the unit of
work). They raise ``ActionRefused`` with a message for the agent when the
action is not allowed; department authorisation has already happened in
``bot.console.access.ticket_for``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import CurrentStaff
from bot.feedback.service import ask_on_resolution
from bot.identity import vulnerability
from bot.notices.status import notify_ticket_event
from bot.settings import Settings
from bot.staff.audit import audit
from bot.staff.models import AGENT, StaffDepartment, StaffUser
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.texts import text as catalogue_text
from bot.tickets import schedule
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.priority import PRIORITIES
from bot.tickets.replies import EmptyReply, citizen_language, reply_to_ticket
from bot.tickets.service import CITIZEN_RECORD, add_note, change_status, department_commitment
from bot.tickets.service import set_vulnerable as set_ticket_vulnerable
from bot.tickets.status import CLOSED, NEW, OPEN, RESOLVED, InvalidTransition

# Longest reply or note accepted from the console; the store keeps anything, but a
# 100-page paste is a mistake, and SMS/WhatsApp would split it into dozens of parts.
MAX_TEXT = 20_000



class ActionRefused(ValueError):
    """An action the workflow or the staff member's role does not allow; the message is for them."""


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from bot.settings import get_settings

    return get_settings()


def _target(ticket: Ticket) -> str:
    return f"ticket:{ticket.public_id}"


def default_resolution_message(session: Session, ticket: Ticket) -> str:
    """What the console proposes to tell a citizen when their ticket is resolved: in their language."""
    return catalogue_text("notices.resolved", citizen_language(session, ticket), ticket_id=ticket.public_id)


def _text(text: str, what: str) -> str:
    if not text.strip():
        raise ActionRefused(f"The {what} is empty.")
    if len(text) > MAX_TEXT:
        raise ActionRefused(f"The {what} is longer than {MAX_TEXT} characters.")
    return text


def reply(session: Session, staff: CurrentStaff, ticket: Ticket, text: str, *, now: datetime | None = None) -> Message:
    """Queue a reply to the citizen; a ticket nobody had looked at becomes open."""
    now = now or utcnow()
    text = _text(text, "reply")
    if ticket.status == CLOSED:
        raise ActionRefused("This ticket is closed; a new message from the citizen opens a new ticket.")
    try:
        message = reply_to_ticket(session, ticket, text, author=staff.actor, now=now)
    except EmptyReply as exc:
        raise ActionRefused("The reply is empty.") from exc
    if ticket.status == NEW:
        change_status(session, ticket, OPEN, actor=staff.actor, now=now)
    audit(session, staff, "ticket.reply", _target(ticket), {"message_id": message.id, "channel": message.channel,
                                                            "chars": len(text)}, now=now)
    return message


def note(session: Session, staff: CurrentStaff, ticket: Ticket, text: str, *, now: datetime | None = None) -> TicketEvent:
    text = _text(text, "note")
    event = add_note(session, ticket, text, actor=staff.actor, now=now)
    audit(session, staff, "ticket.note", _target(ticket), {"event_id": event.id, "chars": len(text)}, now=now)
    return event


def set_status(
    session: Session,
    staff: CurrentStaff,
    ticket: Ticket,
    to_status: str,
    *,
    notify: bool = False,
    message: str = "",
    question: str = "",
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Message | None:
    """Move along an allowed transition; resolving can tell the citizen (returns that reply).

    Waiting for the citizen, and reopening, tell citizens who asked for notices (bot.notices);
    ``question`` (waiting only) goes to the citizen in any case, as a reply."""
    now = now or utcnow()
    from_status = ticket.status
    if to_status == from_status:
        raise ActionRefused(f"The ticket is already {from_status}.")
    if len(question) > MAX_TEXT:
        raise ActionRefused(f"The question is longer than {MAX_TEXT} characters.")
    try:
        event = change_status(session, ticket, to_status, actor=staff.actor, now=now, settings=settings)
    except InvalidTransition as exc:
        raise ActionRefused(f"Not allowed: {exc}.") from exc
    sent = None
    if notify and to_status == RESOLVED:
        text = message.strip() or default_resolution_message(session, ticket)
        sent = reply_to_ticket(session, ticket, _text(text, "resolution message"), author=staff.actor, now=now)
    else:
        sent = notify_ticket_event(session, ticket, event, _settings(settings), question=question, now=now)
    # "Was it solved?" (bot.feedback), after the agent's own message when there is one.
    survey = ask_on_resolution(session, ticket, now=now) if to_status == RESOLVED else None
    audit(
        session, staff, "ticket.status", _target(ticket),
        {"from": from_status, "to": to_status, "notified": sent is not None,
         **({"message_id": sent.id} if sent is not None else {}),
         **({"survey_message_id": survey.message_id} if survey is not None else {})},
        now=now,
    )
    return sent


def _assignable(session: Session, ticket: Ticket, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None or not user.active:
        raise ActionRefused("That member of staff does not exist or is deactivated.")
    if user.role == AGENT:
        member = session.get(StaffDepartment, (user.id, ticket.department))
        if member is None:
            raise ActionRefused(f"{user.display_name} does not work the {ticket.department} queue.")
    return user


def assign(
    session: Session, staff: CurrentStaff, ticket: Ticket, assignee_id: int | None, *, now: datetime | None = None,
    settings: Settings | None = None,
) -> Message | None:
    """Agents take a ticket or give it back; supervisors assign anyone who works the department.

    The first assignment tells a citizen who asked for notices (returns that message)."""
    now = now or utcnow()
    previous = ticket.assignee_id
    if assignee_id == previous:
        return None
    if not staff.is_supervisor:
        if assignee_id is not None and assignee_id != staff.user_id:
            raise ActionRefused("Agents can only take a ticket themselves; ask a supervisor to assign someone else.")
        if assignee_id is not None and previous is not None:
            raise ActionRefused("This ticket is already assigned; ask a supervisor to reassign it.")
        if assignee_id is None and previous != staff.user_id:
            raise ActionRefused("Only the assignee or a supervisor can unassign this ticket.")
    assignee = _assignable(session, ticket, assignee_id) if assignee_id is not None else None
    previous_user = session.get(StaffUser, previous) if previous is not None else None
    ticket.assignee_id = assignee_id
    ticket.updated_at = now
    body = f"Assigned to {assignee.display_name} ({assignee.username})." if assignee else "Unassigned."
    event = TicketEvent(ticket=ticket, kind="assigned", actor=staff.actor, body=body, public=False, created_at=now)
    session.add(event)
    notice = notify_ticket_event(session, ticket, event, _settings(settings), now=now)
    audit(
        session, staff, "ticket.assign", _target(ticket),
        {"from": previous_user.username if previous_user else None, "to": assignee.username if assignee else None,
         "notified": notice is not None},
        now=now,
    )
    session.flush()
    return notice


def set_priority(
    session: Session, staff: CurrentStaff, ticket: Ticket, priority: str, settings: Settings,
    *, now: datetime | None = None,
) -> None:
    """A new priority also means a new deadline: counted from when the ticket was opened (business
    time, pauses excluded: ``bot.tickets.schedule``)."""
    now = now or utcnow()
    if priority not in PRIORITIES:
        raise ActionRefused(f"Unknown priority {priority!r}.")
    previous = ticket.priority
    if priority == previous:
        return
    ticket.priority = priority
    old_due = ticket.due_at
    schedule.apply_clock(session, ticket, settings, department_commitment(session, ticket.department, priority, settings),
                         now=now)
    ticket.updated_at = now
    session.add(
        TicketEvent(
            ticket=ticket, kind="priority_changed", actor=staff.actor, public=False, created_at=now,
            body=f"Priority changed from {previous} to {priority}.",
        )
    )
    audit(
        session, staff, "ticket.priority", _target(ticket),
        {"from": previous, "to": priority, "due_from": old_due.isoformat(), "due_to": ticket.due_at.isoformat()},
        now=now,
    )
    session.flush()


# Where an agent may say the citizen gave consent, besides the channels the citizen has written on.
CONSENT_CHANNELS_OFFLINE: tuple[str, ...] = ("phone", "in_person", "letter")
MAX_REASON = 500


def set_vulnerable(
    session: Session, staff: CurrentStaff, ticket: Ticket, vulnerable: bool, reason: str, settings: Settings,
    *, now: datetime | None = None,
) -> None:
    """Flag the ticket vulnerable or remove the flag: the reason is required, recorded on the ticket
    as "agent <username>: <reason>", and the due time is recomputed by the one rule."""
    now = now or utcnow()
    reason = " ".join(reason.split())
    if not reason:
        raise ActionRefused("Give a reason for flagging the ticket vulnerable or removing the flag.")
    if len(reason) > MAX_REASON:
        raise ActionRefused(f"The reason is longer than {MAX_REASON} characters.")
    if ticket.vulnerable == vulnerable:
        raise ActionRefused("The ticket is already flagged vulnerable." if vulnerable
                            else "The ticket is not flagged vulnerable.")
    old_due = ticket.due_at
    set_ticket_vulnerable(session, ticket, vulnerable, reason=f"agent {staff.username}: {reason}",
                          actor=staff.actor, settings=settings, now=now)
    audit(
        session, staff, "ticket.vulnerable", _target(ticket),
        {"to": vulnerable, "reason": reason, "due_from": old_due.isoformat(), "due_to": ticket.due_at.isoformat()},
        now=now,
    )
    session.flush()


def consent_channels(session: Session, ticket: Ticket) -> list[str]:
    """Where the citizen may have given consent: their channels, or outside the assistant."""
    channels = session.scalars(
        select(ChannelIdentity.channel).where(ChannelIdentity.citizen_id == ticket.citizen_id).distinct()
    )
    return sorted(set(channels)) + list(CONSENT_CHANNELS_OFFLINE)


def record_citizen_vulnerable(
    session: Session, staff: CurrentStaff, ticket: Ticket, *, consented: bool, channel: str, settings: Settings,
    now: datetime | None = None,
) -> None:
    """Keep on the citizen's record that they are vulnerable, only with their consent; this ticket
    (if it is not flagged yet) and their new tickets are flagged "citizen record"."""
    now = now or utcnow()
    if not consented:
        raise ActionRefused("Only with the citizen's consent: confirm that they agreed to have this on their record.")
    if channel not in consent_channels(session, ticket):
        raise ActionRefused("Choose where the citizen gave their consent.")
    vulnerability.record_vulnerable(session, ticket.citizen_id, actor=staff.username, consented=True,
                                    channel=channel, now=now)
    if not ticket.vulnerable:
        set_ticket_vulnerable(session, ticket, True, reason=CITIZEN_RECORD, actor=staff.actor, settings=settings,
                              now=now)
    audit(session, staff, "citizen.vulnerable", f"citizen:{ticket.citizen_id}",
          {"to": True, "consent_channel": channel, "ticket": ticket.public_id}, now=now)
    session.flush()


def clear_citizen_vulnerable(
    session: Session, staff: CurrentStaff, ticket: Ticket, *, now: datetime | None = None
) -> None:
    """Take it off the record and withdraw the consent; tickets already flagged keep their flag
    (an agent removes it there, with a reason)."""
    now = now or utcnow()
    if not vulnerability.clear_record(session, ticket.citizen_id, actor=staff.username, channel="console", now=now):
        raise ActionRefused("The citizen is not on record as vulnerable.")
    audit(session, staff, "citizen.vulnerable", f"citizen:{ticket.citizen_id}",
          {"to": False, "ticket": ticket.public_id}, now=now)
    session.flush()


def assignable_staff(session: Session, department: str) -> list[StaffUser]:
    """Who a supervisor can assign a ticket of ``department`` to."""
    members = select(StaffDepartment.staff_id).where(StaffDepartment.department == department)
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.active.is_(True), (StaffUser.role != AGENT) | StaffUser.id.in_(members))
            .order_by(StaffUser.display_name)
        )
    )
