"""WhatsApp's 24-hour window applies to notices and announcements like to any message: free text
inside it; outside it the template (the text held until the citizen writes again), another
channel of the citizen, or a clear failure. Copies keep the consent condition, so a held
announcement released after "stop" is not sent."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.channels.whatsapp.graph import TEMPLATE_META_KEY
from bot.channels.whatsapp.window import WindowPolicy, release_held
from bot.console import ticket_actions
from bot.identity.consent import consent_guard, withdraw_consent
from bot.notices import announcements
from bot.outbox.delivery import CONDITIONS_META_KEY, FAILED, SENT, DeliveryService
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from tests.notices.helpers import RecordingSender, citizen, settings, staff, ticket_of

WA = "34600000077"


def _service(db_url: str, *, template: str | None = None, parameters=("ticket",)):
    senders = {"whatsapp": RecordingSender("whatsapp"), "email": RecordingSender("email")}
    policy = WindowPolicy(template_name=template, template_language="en", template_parameters=list(parameters),
                          other_channels=["whatsapp", "email"])
    return DeliveryService(session_factory(db_url), senders, preparers={"whatsapp": policy},
                           guards=(consent_guard,)), senders


def _notice(db_url: str, hours_ago: float, *, email: bool = False) -> tuple[int, str, int]:
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "whatsapp", WA, purposes=["notifications"], hours_ago=hours_ago)
        ticket = ticket_of(session, identity, hours_ago=hours_ago)
        if email:
            session.add(ChannelIdentity(citizen_id=identity.citizen_id, channel="email", address="ana@example.org"))
        sue = staff(session)
        notice = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=settings(db_url))
        return notice.id, ticket.public_id, identity.citizen_id


def _message(db_url: str, message_id: int) -> Message:
    with session_factory(db_url)() as session:
        return session.get(Message, message_id)


def test_inside_the_window_the_notice_is_free_text(db_url: str) -> None:
    notice_id, ticket_id, _ = _notice(db_url, hours_ago=2)
    service, senders = _service(db_url, template="ticket_update")
    assert asyncio.run(service.deliver(notice_id)) == SENT
    (sent,) = senders["whatsapp"].sent
    assert TEMPLATE_META_KEY not in sent.meta and ticket_id in sent.text


def test_outside_the_window_a_template_and_the_text_is_held_then_stop_keeps_it_back(db_url: str) -> None:
    notice_id, ticket_id, citizen_id = _notice(db_url, hours_ago=30)
    service, senders = _service(db_url, template="ticket_update")
    assert asyncio.run(service.deliver(notice_id)) == SENT
    (sent,) = senders["whatsapp"].sent
    assert sent.meta[TEMPLATE_META_KEY]["parameters"] == [ticket_id]
    assert _message(db_url, notice_id).meta["whatsapp"]["held"] is True
    # The citizen writes "stop" (reopening the window): the held text is released, and not sent.
    with session_factory(db_url).begin() as session:
        withdraw_consent(session, citizen_id, "notifications", channel="whatsapp", source="command:stop")
        identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == WA)).one()
        citizen(session, "whatsapp", WA, hours_ago=0, text="stop")
        (released,) = release_held(session, identity.id)
        assert CONDITIONS_META_KEY in session.get(Message, released).meta
    assert asyncio.run(service.deliver(released)) == FAILED
    assert len(senders["whatsapp"].sent) == 1


def test_outside_the_window_without_a_template_another_channel_carries_it(db_url: str) -> None:
    notice_id, _ticket, _ = _notice(db_url, hours_ago=30, email=True)
    service, senders = _service(db_url)
    assert asyncio.run(service.deliver(notice_id)) == SENT
    (copy,) = senders["email"].sent
    assert senders["whatsapp"].sent == []
    assert CONDITIONS_META_KEY in _message(db_url, copy.message_id).meta


def test_an_announcement_outside_the_window_with_nowhere_else_fails_clearly(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        citizen(session, "whatsapp", WA, purposes=["announcements:waste"], hours_ago=48)
        announcements.send(session, config, "topic", "waste", "Bins on Tuesday.", ["whatsapp"], created_by="sue")
        (message_id,) = session.scalars(select(Message.id).where(Message.author == "announcement")).all()
    service, senders = _service(db_url)
    assert asyncio.run(service.deliver(message_id)) == FAILED
    assert senders["whatsapp"].sent == [] and "24 hours" in _message(db_url, message_id).delivery_error
