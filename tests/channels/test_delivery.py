"""The outbound queue: claimed once, retried with backoff, failed for good when hopeless."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.outbox.delivery import (
    FAILED,
    PENDING,
    SENT,
    DeliveryService,
    backoff,
    claim,
    due_ids,
    queue_outbound,
)
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.models import Message
from bot.store.types import utcnow


class ScriptedSender:
    channel = "telegram"

    def __init__(self, outcomes: list[object]) -> None:
        self.outcomes = outcomes
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        outcome = self.outcomes.pop(0) if self.outcomes else SendResult(external_id=f"x{len(self.sent)}")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _queue(db_url: str, text: str = "hello") -> int:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "telegram", "42")
        return queue_outbound(session, identity=identity, text=text, author="agent:ana").id


def _service(db_url: str, sender: ScriptedSender, **kw) -> DeliveryService:
    return DeliveryService(session_factory(db_url), {"telegram": sender}, backoff_seconds=5, **kw)


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n, base=5, cap=60).total_seconds() for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]


def test_sent_message_records_provider_id(db_url: str) -> None:
    message_id = _queue(db_url)
    sender = ScriptedSender([SendResult(external_id="tg-7")])
    assert asyncio.run(_service(db_url, sender).deliver(message_id)) == SENT
    with session_factory(db_url)() as session:
        message = session.get(Message, message_id)
        assert (message.delivery_status, message.external_id, message.delivery_attempts) == (SENT, "tg-7", 1)
        assert sender.sent[0].address == "42" and sender.sent[0].text == "hello"


def test_retryable_failure_is_rescheduled_then_sent(db_url: str) -> None:
    message_id = _queue(db_url)
    sender = ScriptedSender([DeliveryError("HTTP 502"), SendResult(external_id="ok")])
    service = _service(db_url, sender)
    assert asyncio.run(service.deliver(message_id)) == PENDING
    with session_factory(db_url)() as session:
        message = session.get(Message, message_id)
        assert message.delivery_error == "HTTP 502"
        assert message.next_attempt_at > utcnow() + timedelta(seconds=3)
        assert due_ids(session, ["telegram"]) == []  # not due yet
        assert due_ids(session, ["telegram"], now=utcnow() + timedelta(seconds=6)) == [message_id]
    assert asyncio.run(service.deliver(message_id)) == SENT


def test_permanent_failure_and_exhausted_attempts_fail(db_url: str) -> None:
    hopeless = _queue(db_url)
    assert asyncio.run(_service(db_url, ScriptedSender([DeliveryError("blocked", retryable=False)])).deliver(hopeless)) == FAILED
    flaky = _queue(db_url)
    service = _service(db_url, ScriptedSender([DeliveryError("502"), DeliveryError("502")]), max_attempts=2)
    assert asyncio.run(service.deliver(flaky)) == PENDING
    assert asyncio.run(service.deliver(flaky)) == FAILED


def test_a_message_is_claimed_once_until_its_lease_expires(db_url: str) -> None:
    message_id = _queue(db_url)
    with session_factory(db_url).begin() as session:
        assert claim(session, message_id)
        assert not claim(session, message_id)
        # The worker that claimed it died: after the lease another may take it.
        assert claim(session, message_id, now=utcnow() + timedelta(minutes=3))


def test_unexpected_sender_exception_is_retried_not_lost(db_url: str) -> None:
    message_id = _queue(db_url)
    assert asyncio.run(_service(db_url, ScriptedSender([RuntimeError("bug")])).deliver(message_id)) == PENDING


def test_while_one_message_to_a_citizen_is_in_flight_no_other_to_them_is_taken(db_url: str) -> None:
    first, second = _queue(db_url, "first"), _queue(db_url, "second")
    with session_factory(db_url).begin() as session:
        other = get_or_create_identity(session, "telegram", "43")
        elsewhere = queue_outbound(session, identity=other, text="to someone else", author="agent:ana").id
    with session_factory(db_url).begin() as session:
        assert claim(session, first)
    with session_factory(db_url).begin() as session:
        assert not claim(session, second)  # the first is on its way
        assert due_ids(session, ["telegram"]) == [elsewhere]  # other citizens are not held up
        # The worker sending the first died: its lease expires, and neither message is held back.
        assert due_ids(session, ["telegram"], now=utcnow() + timedelta(minutes=3)) == [first, second, elsewhere]


def test_a_reply_retrying_after_a_provider_error_holds_nothing_back(db_url: str) -> None:
    first, second = _queue(db_url, "first"), _queue(db_url, "second")
    sender = ScriptedSender([DeliveryError("HTTP 502")])
    assert asyncio.run(_service(db_url, sender).deliver_many([first, second])) == [PENDING, SENT]
    assert [m.text for m in sender.sent] == ["first", "second"]


def test_replies_keep_their_order_when_the_worker_races_the_turn_that_wrote_them(db_url: str) -> None:
    """The turn delivers its replies while the polling worker picks up every due message."""

    class SlowSender(ScriptedSender):
        async def send(self, message: OutboundMessage) -> SendResult:
            await asyncio.sleep(0.2)
            return await super().send(message)

    ids = [_queue(db_url, f"reply {n}") for n in range(4)]
    sender = SlowSender([])
    service = _service(db_url, sender)

    async def race() -> None:
        async def worker() -> None:
            for _ in range(20):
                await service.run_once()
                await asyncio.sleep(0.01)

        await asyncio.gather(worker(), service.deliver_many(ids))

    asyncio.run(race())
    assert [m.text for m in sender.sent] == [f"reply {n}" for n in range(4)]
