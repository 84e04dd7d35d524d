"""A reply Telegram does not take is kept in the queue and retried (429, 5xx), or marked
failed at once when retrying cannot help (the citizen blocked the bot)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.outbox.delivery import FAILED, PENDING, SENT
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.models import Message
from bot.store.types import utcnow
from tests.channels.telegram.support import FakeRasa, PollingBot, telegram_settings


def _reply(db_url: str) -> Message:
    with session_factory(db_url)() as session:
        return session.scalars(select(Message).where(Message.direction == "out")).one()


def _retry_worker_pass(settings) -> int:
    """What `python -m bot deliveries` does on each pass."""
    async def main() -> int:
        return await Runtime(settings).delivery.run_once()

    return asyncio.run(main())


def _answered(db_url, standin, chat: int) -> Message:
    """Run the bot until its first try at delivering the reply to ``chat`` is recorded."""
    with PollingBot(telegram_settings(db_url, standin), FakeRasa(db_url), standin):
        standin.push(standin.updates.text(chat, "hello"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with session_factory(db_url)() as session:
                tried = session.scalar(select(Message.delivery_attempts).where(
                    Message.direction == "out", Message.delivery_status.in_([PENDING, SENT, FAILED])))
            if tried:
                break
            time.sleep(0.05)
    return _reply(db_url)


def _answer_with_failure(db_url, standin, chat: int, *failure, **kw) -> Message:
    standin.fail_next("sendMessage", *failure, **kw)
    return _answered(db_url, standin, chat)


def test_flood_control_reply_waits_telegrams_delay_then_goes_out(db_url, standin):
    before = utcnow()
    reply = _answer_with_failure(db_url, standin, 51, 429, retry_after=1)
    assert reply.delivery_status == PENDING and reply.delivery_attempts == 1
    assert (reply.next_attempt_at - before).total_seconds() >= 1.0
    settings = telegram_settings(db_url, standin)
    assert _retry_worker_pass(settings) == 0  # not due yet
    time.sleep(max(0.0, (reply.next_attempt_at - utcnow()).total_seconds()) + 0.1)
    assert _retry_worker_pass(settings) == 1
    reply = _reply(db_url)
    assert (reply.delivery_status, reply.delivery_attempts) == (SENT, 2)
    assert [m.text for m in standin.sent_to(51)] == ["echo: hello"]


def test_server_error_is_retried_with_backoff(db_url, standin):
    reply = _answer_with_failure(db_url, standin, 52, 500)
    assert reply.delivery_status == PENDING and "Internal Server Error" in reply.delivery_error
    time.sleep(max(0.0, (reply.next_attempt_at - utcnow()).total_seconds()) + 0.1)
    assert _retry_worker_pass(telegram_settings(db_url, standin)) == 1
    assert _reply(db_url).delivery_status == SENT and len(standin.sent_to(52)) == 1


def test_reply_to_a_citizen_who_blocked_the_bot_fails_at_once(db_url, standin):
    standin.blocked_chats.add(53)
    reply = _answered(db_url, standin, 53)
    assert reply.delivery_status == FAILED and reply.delivery_attempts == 1
    assert "blocked by the user" in reply.delivery_error
    assert _retry_worker_pass(telegram_settings(db_url, standin)) == 0
