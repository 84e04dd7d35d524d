"""The optional per-channel preparer: runs in the claiming transaction and may change,
settle or redirect a message before the sender sees it."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.outbox.delivery import FAILED, PENDING, SENT, DeliveryService, Settled, queue_outbound
from bot.outbox.outbound import OutboundMessage, SendResult
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message


class RecordingSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(external_id=f"{self.channel}-{len(self.sent)}")


def _queue(db_url: str) -> int:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "telegram", "42")
        return queue_outbound(session, identity=identity, text="hello", author="agent:ana").id


def _deliver(db_url: str, preparer, *senders: RecordingSender) -> tuple[int, str | None]:
    message_id = _queue(db_url)
    service = DeliveryService(
        session_factory(db_url), {s.channel: s for s in senders}, preparers={"telegram": preparer}
    )
    return message_id, asyncio.run(service.deliver(message_id))


def test_preparer_may_change_what_is_sent_and_record_it(db_url: str) -> None:
    def prepare(session, message, outbound):
        assert message.delivery_status == "sending"  # called after the claim
        message.meta = {**message.meta, "prepared": True}
        return dataclasses.replace(outbound, meta={**outbound.meta, "template": "notice"})

    sender = RecordingSender("telegram")
    message_id, status = _deliver(db_url, prepare, sender)
    assert status == SENT and sender.sent[0].meta == {"template": "notice"}
    with session_factory(db_url)() as session:
        assert session.get(Message, message_id).meta == {"prepared": True}


def test_preparer_returning_none_sends_unchanged(db_url: str) -> None:
    sender = RecordingSender("telegram")
    _message_id, status = _deliver(db_url, lambda *_: None, sender)
    assert status == SENT and sender.sent[0].text == "hello"


def test_settled_failed_is_not_sent_and_says_why(db_url: str) -> None:
    sender = RecordingSender("telegram")
    message_id, status = _deliver(db_url, lambda *_: Settled(FAILED, "no way to reach the citizen"), sender)
    assert status == FAILED and sender.sent == []
    with session_factory(db_url)() as session:
        message = session.get(Message, message_id)
        assert message.delivery_error == "no way to reach the citizen" and message.next_attempt_at is None


def test_redirect_queues_a_copy_that_is_delivered_at_once(db_url: str) -> None:
    def prepare(session, message, outbound):
        other = get_or_create_identity(session, "email", "ana@example.org")
        other.citizen_id = message.citizen_id
        copy = queue_outbound(session, identity=other, text=message.text, author=message.author)
        message.meta = {"redirected_to": copy.id}
        return Settled(SENT, "sent by email instead", then_deliver=(copy.id,))

    telegram, email = RecordingSender("telegram"), RecordingSender("email")
    message_id, status = _deliver(db_url, prepare, telegram, email)
    assert status == SENT and telegram.sent == []
    assert [(m.channel, m.address, m.text) for m in email.sent] == [("email", "ana@example.org", "hello")]
    with session_factory(db_url)() as session:
        copy = session.get(Message, session.get(Message, message_id).meta["redirected_to"])
        assert copy.delivery_status == SENT and copy.channel == "email"


def test_failing_preparer_keeps_the_message_for_a_retry(db_url: str) -> None:
    def prepare(session, message, outbound):
        session.add(ChannelIdentity(channel="email", address="half-done", citizen_id=message.citizen_id))
        session.flush()
        raise RuntimeError("bug")

    sender = RecordingSender("telegram")
    message_id, status = _deliver(db_url, prepare, sender)
    assert status == PENDING and sender.sent == []
    with session_factory(db_url)() as session:
        message = session.get(Message, message_id)
        assert message.delivery_attempts == 1 and "RuntimeError: bug" in message.delivery_error
        assert session.query(ChannelIdentity).filter_by(address="half-done").first() is None  # undone
