"""The 24-hour customer-service window: free text inside it; outside it a template,
another channel of the citizen, or a clear failure for the agent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.channels.whatsapp.graph import GraphSender
from bot.channels.whatsapp.window import WindowPolicy
from bot.outbox.delivery import FAILED, PENDING, SENT, DeliveryService, queue_outbound
from bot.outbox.outbound import OutboundMessage, SendResult
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.tickets.models import TicketEvent
from bot.tickets.service import open_or_join_ticket
from tests.channels.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID, message, webhook

WA_ID = "34600000042"
REPLY = "We have fixed the street light.\nThank you for telling us."


class RecordingSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, outbound: OutboundMessage) -> SendResult:
        self.sent.append(outbound)
        return SendResult(external_id=f"<{len(self.sent)}@city.example>")


def _agent_reply(db_url: str, *, hours_since_citizen_wrote: float, email: bool = False) -> tuple[int, str]:
    """A ticket opened from WhatsApp, and an agent's reply written some hours after the citizen's last message."""
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "whatsapp", WA_ID)
        inbound, _ = record_inbound(session, identity, "The street light on Elm Street is broken", external_id="wamid.in1")
        inbound.created_at = utcnow() - timedelta(hours=hours_since_citizen_wrote)
        ticket, _ = open_or_join_ticket(session, inbound=inbound, reason="report_problem", department="roads")
        if email:
            session.add(ChannelIdentity(citizen_id=identity.citizen_id, channel="email", address="ana@example.org"))
            # An unrelated citizen's identity must never be chosen.
            get_or_create_identity(session, "email", "someone-else@example.org")
        reply = queue_outbound(session, identity=identity, text=REPLY, author="agent:ana", ticket=ticket)
        return reply.id, ticket.public_id


def _service(db_url: str, graph, *, template: str | None = None, parameters=("ticket",), others=()) -> tuple[DeliveryService, RecordingSender]:
    email = RecordingSender("email")
    policy = WindowPolicy(template_name=template, template_language="es", template_parameters=parameters,
                          other_channels=["whatsapp", *others])
    whatsapp = GraphSender(graph_url=graph.url, phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
                           timeout_seconds=2)
    senders = {"whatsapp": whatsapp, "email": email}
    return DeliveryService(session_factory(db_url), senders, preparers={"whatsapp": policy}), email


def _message(db_url: str, message_id: int) -> Message:
    with session_factory(db_url)() as session:
        return session.get(Message, message_id)


def _notes(db_url: str) -> list[str]:
    with session_factory(db_url)() as session:
        return list(session.scalars(select(TicketEvent.body).where(TicketEvent.kind == "note")))


def test_inside_the_window_free_text_is_sent(db_url, graph) -> None:
    message_id, _ticket = _agent_reply(db_url, hours_since_citizen_wrote=23)
    service, _email = _service(db_url, graph, template="reply_waiting")
    assert asyncio.run(service.deliver(message_id)) == SENT
    assert graph.requests[0].text == REPLY
    assert _message(db_url, message_id).meta["whatsapp"]["sent_as"] == "text"


def test_outside_the_window_the_template_is_sent_and_the_reply_follows_when_the_citizen_writes(db_url, graph, wa) -> None:
    message_id, ticket = _agent_reply(db_url, hours_since_citizen_wrote=30)
    service, _email = _service(db_url, graph, template="reply_waiting")
    assert asyncio.run(service.deliver(message_id)) == SENT
    [template] = graph.requests
    assert template.body["type"] == "template" and template.text is None
    assert template.template["name"] == "reply_waiting" and template.template["language"] == {"code": "es"}
    assert template.template["components"][0]["parameters"] == [{"type": "text", "text": ticket}]
    stored = _message(db_url, message_id)
    assert stored.external_id == "wamid.standin.1" and stored.text == REPLY
    assert stored.meta["whatsapp"] == {"sent_as": "template", "template": "reply_waiting", "held": True}

    # The citizen answers the notice: the window reopens and the held reply goes out in full, first.
    wa.post(webhook([message(WA_ID, text="ok, what is the news about my bin?")]))
    assert graph.requests[1].text == REPLY
    assert len(graph.requests) == 3  # then the assistant's answer to what they wrote
    held = _message(db_url, message_id)
    assert held.meta["whatsapp"]["held"] is False
    copy = _message(db_url, held.meta["whatsapp"]["released_as"])
    assert copy.delivery_status == SENT and copy.text == REPLY and copy.author == "agent:ana"

    # A later message does not release it again.
    wa.post(webhook([message(WA_ID, text="thanks, and bin day?")]))
    assert sum(r.text == REPLY for r in graph.requests) == 1


def test_template_can_carry_the_reply_itself(db_url, graph) -> None:
    message_id, ticket = _agent_reply(db_url, hours_since_citizen_wrote=48)
    service, _email = _service(db_url, graph, template="reply_full", parameters=("ticket", "text"))
    asyncio.run(service.deliver(message_id))
    parameters = graph.requests[0].template["components"][0]["parameters"]
    assert [p["text"] for p in parameters] == [ticket, " ".join(REPLY.split())]  # one line, as Meta requires
    assert _message(db_url, message_id).meta["whatsapp"]["held"] is False


def test_outside_the_window_without_a_template_the_reply_goes_to_another_channel_of_the_citizen(db_url, graph) -> None:
    message_id, ticket = _agent_reply(db_url, hours_since_citizen_wrote=25, email=True)
    service, email = _service(db_url, graph, others=["email"])
    assert asyncio.run(service.deliver(message_id)) == SENT
    assert graph.requests == []
    [copy_out] = email.sent
    assert (copy_out.channel, copy_out.address, copy_out.text, copy_out.ticket_public_id) == (
        "email", "ana@example.org", REPLY, ticket)
    original = _message(db_url, message_id)
    redirect = original.meta["whatsapp"]["redirected_to"]
    assert original.meta["whatsapp"]["sent_as"] == "redirected" and redirect["channel"] == "email"
    copy = _message(db_url, redirect["message_id"])
    assert copy.delivery_status == SENT and copy.meta["redirected_from"] == {"channel": "whatsapp", "message_id": message_id}
    [note] = _notes(db_url)
    assert "email" in note and "24 hours" in note


def test_outside_the_window_with_nothing_else_the_reply_fails_with_a_reason_for_the_agent(db_url, graph) -> None:
    message_id, _ticket = _agent_reply(db_url, hours_since_citizen_wrote=25, email=True)
    service, email = _service(db_url, graph, others=[])  # e-mail is not switched on
    assert asyncio.run(service.deliver(message_id)) == FAILED
    assert graph.requests == [] and email.sent == []
    failed = _message(db_url, message_id)
    assert failed.next_attempt_at is None and failed.delivery_attempts == 1
    assert "24 hours" in failed.delivery_error and "template" in failed.delivery_error
    [note] = _notes(db_url)
    assert "could not be delivered" in note


def test_a_citizen_who_never_wrote_on_whatsapp_is_outside_the_window(db_url, graph) -> None:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "whatsapp", WA_ID)
        message_id = queue_outbound(session, identity=identity, text="Hello", author="agent:ana").id
    service, _email = _service(db_url, graph)
    assert asyncio.run(service.deliver(message_id)) == FAILED


def test_meta_saying_the_window_closed_makes_the_next_attempt_decide_again(db_url, graph) -> None:
    message_id, _ticket = _agent_reply(db_url, hours_since_citizen_wrote=23.99)
    service, _email = _service(db_url, graph, template="reply_waiting")
    # Our clock said open, Meta's said closed.
    graph.fail_next(400, code=131047, message="Re-engagement message")
    assert asyncio.run(service.deliver(message_id)) == PENDING
    # By the retry the window is closed by our clock too.
    with session_factory(db_url).begin() as session:
        inbound = session.scalars(select(Message).where(Message.direction == "in")).one()
        inbound.created_at = utcnow() - timedelta(hours=24, minutes=5)
    assert asyncio.run(service.deliver(message_id)) == SENT
    assert graph.requests[1].template["name"] == "reply_waiting"
