"""Replies reach the citizen in order even when the delivery worker takes one of them first."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.channels.telegram.adapter import build_sender
from bot.channels.telegram.handlers import TelegramHandlers
from bot.outbox.delivery import SENT, claim, queue_outbound
from bot.outbox.outbound import OutboundMessage
from bot.runtime import Runtime
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.models import Message
from bot.store.types import utcnow
from tests.channels.telegram.support import telegram_settings


def test_reply_taken_by_the_delivery_worker_is_not_overtaken_by_the_next(db_url, standin):
    sessions = session_factory(db_url)
    with sessions.begin() as session:
        identity = get_or_create_identity(session, "telegram", "71")
        first = queue_outbound(session, identity=identity, text="first", author="assistant").id
        second = queue_outbound(session, identity=identity, text="second", author="assistant").id
    with sessions.begin() as session:
        assert claim(session, first)  # the delivery worker got there first ...
    settings = telegram_settings(db_url, standin)

    async def slow_worker() -> None:  # ... and takes its time sending it
        await asyncio.sleep(0.5)
        await build_sender(settings).send(OutboundMessage(message_id=first, channel="telegram", address="71",
                                                          text="first"))
        with sessions.begin() as session:
            message = session.get(Message, first)
            message.delivery_status, message.sent_at = SENT, utcnow()

    async def main() -> None:
        handlers = TelegramHandlers(None, Runtime(settings).delivery, sessions)
        await asyncio.gather(handlers._deliver(SimpleNamespace(reply_ids=[first, second])), slow_worker())

    asyncio.run(main())
    assert [m.text for m in standin.sent_to(71)] == ["first", "second"]
