"""Announcements: who receives them, one message each, throttled, and never after "stop"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.identity.consent import withdraw_consent
from bot.notices import announcements
from bot.notices.announcements import AnnouncementRefused
from bot.notices.models import Announcement
from bot.outbox.delivery import CONDITIONS_META_KEY, FAILED, PENDING, SENT, due_ids
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from tests.notices.helpers import RecordingSender, citizen, settings

PUSH = ("telegram", "whatsapp", "email")
TEXT = "Waste collection moves by one day after the holiday: Monday's bins are collected on Tuesday."


def _seed(session) -> dict[str, int]:
    ids = {}
    ids["waste"] = citizen(session, "telegram", "2001", purposes=["announcements:waste"]).citizen_id
    ids["all"] = citizen(session, "email", "all@example.org", purposes=["announcements"]).citizen_id
    ids["taxes"] = citizen(session, "telegram", "2002", purposes=["announcements:taxes"]).citizen_id
    ids["none"] = citizen(session, "telegram", "2003", purposes=["notifications"]).citizen_id
    ids["web_only"] = citizen(session, "web", "browser-9", purposes=["announcements:waste"]).citizen_id
    gone = citizen(session, "telegram", "2004", purposes=["announcements:waste"])
    withdraw_consent(session, gone.citizen_id, "announcements:waste", channel="telegram", source="command:stop")
    # Two identities: the one written from last is chosen.
    both = citizen(session, "email", "two@example.org", purposes=["announcements:waste"], hours_ago=5)
    session.add(ChannelIdentity(citizen_id=both.citizen_id, channel="telegram", address="2005"))
    session.flush()
    telegram = session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == "2005")).one()
    citizen(session, "telegram", "2005", hours_ago=1)
    ids["both"], ids["both_identity"] = both.citizen_id, telegram.id
    return ids


def test_a_topic_reaches_its_subscribers_and_those_of_every_topic_once_each(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        ids = _seed(session)
        shown = announcements.preview(session, config, "topic", "waste", TEXT, PUSH)
        by_citizen = {r.citizen_id: r for r in shown.recipients}
        assert set(by_citizen) == {ids["waste"], ids["all"], ids["both"]}
        assert shown.unreachable == 1  # the web chat has nobody to push to
        assert by_citizen[ids["both"]].identity.id == ids["both_identity"]
        assert by_citizen[ids["all"]].word == "all" and by_citizen[ids["waste"]].word == "waste"
        assert shown.by_channel == {"email": 1, "telegram": 2}
        assert shown.rendered.startswith(TEXT) and '"unsubscribe waste"' in shown.rendered


def test_a_department_reaches_the_subscribers_of_its_topics(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        ids = _seed(session)
        shown = announcements.preview(session, config, "department", "taxes", "Pay by 31 March.", PUSH)
        assert {r.citizen_id for r in shown.recipients} == {ids["taxes"], ids["all"]}


def test_sending_stores_it_and_spreads_the_messages(db_url: str) -> None:
    config = settings(db_url, announcement_rate_per_minute=2)
    now = utcnow()
    with session_factory(db_url).begin() as session:
        _seed(session)
        row, shown = announcements.send(session, config, "topic", "waste", TEXT, PUSH, created_by="sue", now=now)
        assert (row.recipients, row.audience_kind, row.audience, row.text) == (3, "topic", "waste", TEXT)
        assert row.last_due_at - row.first_due_at == timedelta(seconds=60)
        messages = session.scalars(select(Message).where(Message.author == "announcement").order_by(Message.id)).all()
        assert [m.next_attempt_at - now for m in messages] == [timedelta(0), timedelta(seconds=30), timedelta(seconds=60)]
        assert all(m.meta["announcement"] == row.id and m.delivery_status == PENDING and m.ticket_id is None
                   for m in messages)
        assert messages[0].meta[CONDITIONS_META_KEY] == {"consent_any": ["announcements:waste", "announcements"]}
        # The delivery worker finds only those that are due: the rest go out later.
        assert len(due_ids(session, PUSH, now=now + timedelta(seconds=1))) == 1
        assert len(due_ids(session, PUSH, now=now + timedelta(seconds=61))) == 3


def test_zero_recipients_is_refused_and_nothing_is_stored(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        citizen(session, "telegram", "2002", purposes=["announcements:taxes", "notifications"])
        citizen(session, "web", "browser-9", purposes=["announcements:roads"])
        shown = announcements.preview(session, config, "topic", "roads", "Closed.", PUSH)
        assert (shown.count, shown.unreachable) == (0, 1)
        with pytest.raises(AnnouncementRefused, match="Nobody would receive"):
            announcements.send(session, config, "topic", "roads", "Elm Street is closed.", PUSH, created_by="sue")
        with pytest.raises(AnnouncementRefused, match="Nobody would receive"):
            announcements.send(session, config, "topic", "taxes", TEXT, (), created_by="sue")  # no push channel on
        assert session.scalar(select(func.count()).select_from(Announcement)) == 0
        assert session.scalar(select(func.count()).select_from(Message).where(Message.author == "announcement")) == 0


@pytest.mark.parametrize(("kind", "audience", "text", "error"), [
    ("topic", "nonsense", TEXT, "Choose a topic"),
    ("department", "general", TEXT, "Choose a topic"),  # a department without topics
    ("topic", "waste", "   ", "empty"),
    ("topic", "waste", "x" * 2001, "longer than"),
])
def test_bad_compositions_are_refused(db_url: str, kind, audience, text, error) -> None:
    with session_factory(db_url).begin() as session, pytest.raises(AnnouncementRefused, match=error):
        announcements.preview(session, settings(db_url), kind, audience, text, PUSH)


def test_stop_before_its_turn_means_it_is_not_sent(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        ids = _seed(session)
        announcements.send(session, config, "topic", "waste", TEXT, PUSH, created_by="sue")
    with session_factory(db_url).begin() as session:
        withdraw_consent(session, ids["waste"], "announcements:waste", channel="telegram", source="command:stop")
        queued = {m.citizen_id: m.id for m in session.scalars(select(Message).where(Message.author == "announcement"))}
    delivery = Runtime(config).delivery_service({c: RecordingSender(c) for c in PUSH})
    statuses = {citizen_id: asyncio.run(delivery.deliver(message_id)) for citizen_id, message_id in queued.items()}
    assert statuses == {ids["waste"]: FAILED, ids["all"]: SENT, ids["both"]: SENT}
