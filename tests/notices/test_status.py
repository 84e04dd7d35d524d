"""Status notices: to citizens who said "notify me", once per ticket event, on the channel of
their latest message on the ticket; the agent's question reaches every citizen as a reply."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.console import ticket_actions
from bot.identity.consent import withdraw_consent
from bot.notices.models import TicketNotice
from bot.notices.status import notify_ticket_event
from bot.outbox.delivery import CONDITIONS_META_KEY, FAILED, PENDING, SENT
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import TicketEvent
from tests.notices.helpers import RecordingSender, citizen, settings, staff, ticket_of


def _out(session, citizen_id: int) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.citizen_id == citizen_id, Message.direction == "out",
                                                      Message.author.in_(("notices", "agent:sue")))
                                .order_by(Message.id)))


def test_assigned_waiting_and_reopened_are_told_once_each(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "1001", purposes=["notifications"])
        ticket = ticket_of(session, identity)
        sue = staff(session)
        first = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
        other = staff(session, "sam")
        assert ticket_actions.assign(session, sue, ticket, other.user_id, settings=config) is None  # reassigned
        waiting = ticket_actions.set_status(session, sue, ticket, "pending_citizen", settings=config)
        ticket_actions.set_status(session, sue, ticket, "open", settings=config)
        resolved = ticket_actions.set_status(session, sue, ticket, "resolved", settings=config)
        reopened = ticket_actions.set_status(session, sue, ticket, "open", settings=config)
        assert resolved is None  # "resolved" is said by the "Was it solved?" question, not here
        sent = _out(session, identity.citizen_id)
        assert [m.id for m in sent] == [first.id, waiting.id, reopened.id]
        assert all(m.identity_id == identity.id and m.delivery_status == PENDING for m in sent)
        assert ticket.public_id in first.text and "Waste and Recycling" in first.text and "Sue" not in first.text
        assert "information from you" in waiting.text and "reopened" in reopened.text
        assert first.meta[CONDITIONS_META_KEY] == {"consent_any": ["notifications"]}
        kinds = session.scalars(select(TicketNotice.kind).order_by(TicketNotice.id)).all()
        assert kinds == ["assigned", "waiting", "reopened"]


def test_once_per_event_however_often_it_runs(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "email", "ana@example.org", purposes=["notifications"])
        ticket = ticket_of(session, identity)
        sue = staff(session)
        ticket_actions.set_status(session, sue, ticket, "pending_citizen", settings=config)
        event = session.scalars(select(TicketEvent).where(TicketEvent.to_status == "pending_citizen")).one()
        assert notify_ticket_event(session, ticket, event, config) is None
        assert len(_out(session, identity.citizen_id)) == 1


def test_without_consent_nothing_is_sent_but_the_agents_question_is(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "1002")
        ticket = ticket_of(session, identity)
        sue = staff(session)
        assert ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config) is None
        assert ticket_actions.set_status(session, sue, ticket, "pending_citizen", settings=config) is None
        ticket_actions.set_status(session, sue, ticket, "open", settings=config)
        asked = ticket_actions.set_status(session, sue, ticket, "pending_citizen", settings=config,
                                          question="Which  street is the bin on?")
        assert asked is not None and asked.author == "agent:sue"
        assert "Which street is the bin on?" in asked.text and ticket.public_id in asked.text
        assert CONDITIONS_META_KEY not in (asked.meta or {})  # an answer to their request, not a notice
        public = session.scalars(select(TicketEvent.body).where(TicketEvent.kind == "public_update")).all()
        assert public == [asked.text]
        assert ticket.first_response_at is not None


def test_the_notice_goes_where_the_citizen_last_wrote_about_the_ticket(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        web = citizen(session, "web", "browser-1", purposes=["notifications"])
        ticket = ticket_of(session, web)
        mail = ChannelIdentity(citizen_id=web.citizen_id, channel="email", address="ana@example.org")
        session.add(mail)
        session.flush()
        follow_up, _ = record_inbound(session, mail, "More details")
        follow_up.ticket_id = ticket.id
        sue = staff(session)
        notice = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
        assert notice.identity_id == mail.id and notice.channel == "email"


def test_stop_after_queuing_means_it_is_not_sent(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "1003", purposes=["notifications"])
        ticket = ticket_of(session, identity)
        sue = staff(session)
        notice = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
        notice_id, citizen_id = notice.id, identity.citizen_id
    with session_factory(db_url).begin() as session:
        withdraw_consent(session, citizen_id, "notifications", channel="telegram", source="command:stop")
    telegram = RecordingSender("telegram")
    runtime = Runtime(config)
    assert asyncio.run(runtime.delivery_service({"telegram": telegram}).deliver(notice_id)) == FAILED
    assert telegram.sent == []
    with session_factory(db_url)() as session:
        assert "withdrew their consent" in session.get(Message, notice_id).delivery_error


def test_with_consent_it_is_delivered(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "1004", purposes=["notifications"])
        ticket = ticket_of(session, identity)
        sue = staff(session)
        notice_id = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config).id
    telegram = RecordingSender("telegram")
    assert asyncio.run(Runtime(config).delivery_service({"telegram": telegram}).deliver(notice_id)) == SENT
    assert [m.address for m in telegram.sent] == ["1004"]
