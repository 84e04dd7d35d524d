from __future__ import annotations

import pytest

from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.tickets.replies import EmptyReply, reply_to_ticket
from bot.tickets.service import attach_to_ticket, open_or_join_ticket


def test_reply_goes_to_the_channel_the_citizen_last_used(session) -> None:
    web = get_or_create_identity(session, "web", "w1")
    first, _ = record_inbound(session, web, "My tax bill is wrong")
    ticket, _ = open_or_join_ticket(session, inbound=first, reason="personal_case", department="taxes")
    email = get_or_create_identity(session, "email", "ana@example.org")
    email.citizen_id = web.citizen_id
    session.flush()
    follow_up, _ = record_inbound(session, email, "Here is my reference number")
    attach_to_ticket(session, ticket, follow_up)

    reply = reply_to_ticket(session, ticket, "We corrected it.", author="agent:ana")
    assert (reply.channel, reply.identity_id, reply.delivery_status) == ("email", email.id, "pending")
    assert reply.ticket_id == ticket.id and reply.author == "agent:ana"
    assert ticket.first_response_at is not None
    assert ticket.events[-1].kind == "public_update" and ticket.events[-1].message_id == reply.id


def test_empty_reply_is_refused(session) -> None:
    identity = get_or_create_identity(session, "web", "w2")
    inbound, _ = record_inbound(session, identity, "help")
    ticket, _ = open_or_join_ticket(session, inbound=inbound, reason="request_human", department="general")
    with pytest.raises(EmptyReply):
        reply_to_ticket(session, ticket, "  \n", author="agent:ana")


def test_closed_ticket_is_refused(session) -> None:
    from bot.tickets.replies import TicketClosed
    from bot.tickets.service import change_status

    identity = get_or_create_identity(session, "web", "w3")
    inbound, _ = record_inbound(session, identity, "help")
    ticket, _ = open_or_join_ticket(session, inbound=inbound, reason="request_human", department="general")
    change_status(session, ticket, "closed", actor="agent:bo")
    with pytest.raises(TicketClosed, match="is closed"):
        reply_to_ticket(session, ticket, "Anything else?", author="agent:ana")
