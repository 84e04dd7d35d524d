"""Make two citizen records one, so that their history is one history.

The older citizen is kept (its public id is the one other records and reports
already know); everything of the other moves to it. The emptied record stays,
and ``citizen_merges`` says what moved where, so a mistaken merge can be undone
by hand (see docs/agent-replies-and-linking.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.identity.models import CitizenMerge, Consent, LinkCode
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.status import OPEN_STATUSES

EVENT_KIND = "citizen_linked"


def _channels(session: Session, citizen_id: int) -> list[str]:
    return sorted(set(session.scalars(select(ChannelIdentity.channel).where(ChannelIdentity.citizen_id == citizen_id))))


def merge_citizens(
    session: Session,
    first_id: int,
    second_id: int,
    *,
    actor: str,
    link_code: LinkCode | None = None,
    now: datetime | None = None,
) -> CitizenMerge:
    """Move the newer citizen's identities, messages and tickets to the older one."""
    if first_id == second_id:
        raise ValueError("a citizen cannot be merged with itself")
    now = now or utcnow()
    # Lock both rows in id order: two merges touching the same citizens wait for each other.
    citizens = list(
        session.scalars(select(Citizen).where(Citizen.id.in_((first_id, second_id))).order_by(Citizen.id).with_for_update())
    )
    if len(citizens) != 2:
        raise LookupError(f"citizens {first_id} and {second_id} must both exist")
    keep, drop = sorted(citizens, key=lambda c: (c.created_at, c.id))

    moved_identities = list(session.scalars(select(ChannelIdentity.id).where(ChannelIdentity.citizen_id == drop.id)))
    moved_tickets = list(session.scalars(select(Ticket).where(Ticket.citizen_id == drop.id)))
    kept_open = list(
        session.scalars(select(Ticket).where(Ticket.citizen_id == keep.id, Ticket.status.in_(OPEN_STATUSES)))
    )
    channels = ", ".join(sorted(set(_channels(session, keep.id)) | set(_channels(session, drop.id))))

    session.execute(update(ChannelIdentity).where(ChannelIdentity.citizen_id == drop.id).values(citizen_id=keep.id))
    messages = session.execute(update(Message).where(Message.citizen_id == drop.id).values(citizen_id=keep.id))
    session.execute(update(Ticket).where(Ticket.citizen_id == drop.id).values(citizen_id=keep.id))

    # Consents move as they are: each keeps its own time and channel (the evidence).
    session.execute(update(Consent).where(Consent.citizen_id == drop.id).values(citizen_id=keep.id))
    keep.display_name = keep.display_name or drop.display_name
    # The vulnerability record goes with its consent (bot.identity.vulnerability), which just moved.
    if keep.vulnerable_at is None and drop.vulnerable_at is not None:
        keep.vulnerable_at, keep.vulnerable_by = drop.vulnerable_at, drop.vulnerable_by
    drop.vulnerable_at, drop.vulnerable_by = None, None

    how = "proved with a one-time code" if link_code is not None else f"merged by {actor}"
    note = (
        f"The citizen's records were joined ({how}): this ticket's citizen now writes on {channels}, "
        "and their whole history is shown together."
    )
    for ticket in [*moved_tickets, *kept_open]:
        session.add(TicketEvent(ticket_id=ticket.id, kind=EVENT_KIND, actor=actor, public=False, body=note, created_at=now))

    merge = CitizenMerge(
        created_at=now,
        kept_citizen_id=keep.id,
        merged_citizen_id=drop.id,
        actor=actor,
        link_code_id=link_code.id if link_code is not None else None,
        moved_identity_ids=moved_identities,
        identities_moved=len(moved_identities),
        messages_moved=messages.rowcount,
        tickets_moved=len(moved_tickets),
    )
    session.add(merge)
    session.flush()
    return merge
