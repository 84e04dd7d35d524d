"""An acknowledged webhook delivery is never lost: it waits in the inbox until handled,
and whatever interrupted its handling (a crash, the database, a bug) it is tried again."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot.api.app import create_app
from bot.channels.whatsapp import inbox
from bot.channels.whatsapp.adapter import build_preparer, build_sender
from bot.channels.whatsapp.models import WhatsAppWebhook
from bot.channels.whatsapp.processing import WebhookProcessor
from bot.core.conversation import Conversation
from bot.outbox.delivery import DeliveryService
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.models import Message
from bot.store.types import utcnow
from tests.channels.whatsapp.conftest import FAQ_ANSWER, PHONE_NUMBER_ID, make_settings, message, webhook

WA_ID = "34600000077"


def _processor(db_url: str, graph, rasa) -> WebhookProcessor:
    settings = make_settings(db_url, graph.url)
    sessions = session_factory(db_url)
    delivery = DeliveryService(sessions, {"whatsapp": build_sender(settings)},
                               preparers={"whatsapp": build_preparer(Runtime(settings))})
    return WebhookProcessor(phone_number_id=PHONE_NUMBER_ID, sessions=sessions,
                            conversation=Conversation(settings, sessions, rasa), delivery=delivery)


def _rows(db_url: str) -> list[WhatsAppWebhook]:
    with session_factory(db_url)() as session:
        return list(session.scalars(select(WhatsAppWebhook)))


def _make_due(db_url: str, **values) -> None:
    with session_factory(db_url).begin() as session:
        session.execute(update(WhatsAppWebhook).values(next_attempt_at=utcnow() - timedelta(seconds=1), **values))


def test_delivery_stored_before_a_crash_is_answered_by_the_sweeper(db_url, graph, rasa) -> None:
    processor = _processor(db_url, graph, rasa)
    # The webhook stored and acknowledged it; then the process died before handling it.
    row_id = processor.store(json.dumps(webhook([message(WA_ID)])))
    assert asyncio.run(processor.sweep()) == 0  # within the grace period the request's own task has it
    _make_due(db_url)
    assert asyncio.run(processor.sweep()) == 1
    assert graph.requests[0].text == FAQ_ANSWER
    assert _rows(db_url) == [] and row_id


def test_delivery_held_by_a_dead_process_is_taken_over_after_its_lease(db_url, graph, rasa) -> None:
    processor = _processor(db_url, graph, rasa)
    row_id = processor.store(json.dumps(webhook([message(WA_ID)])))
    with session_factory(db_url).begin() as session:
        assert inbox.claim(session, row_id) is not None
        assert inbox.claim(session, row_id) is None  # one handler at a time
    assert asyncio.run(processor.sweep()) == 0
    _make_due(db_url, lease_expires_at=utcnow() - timedelta(seconds=1))
    assert asyncio.run(processor.sweep()) == 1 and len(graph.requests) == 1


class BrokenRasa:
    def __init__(self, failures: int = 1_000) -> None:
        self.failures = failures

    def send(self, **kw):
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("a bug, not Rasa being down")
        return [{"text": "answered on a later attempt"}]


def test_message_stored_by_an_attempt_that_failed_is_answered_on_the_retry(db_url, graph) -> None:
    processor = _processor(db_url, graph, BrokenRasa(failures=1))
    row_id = processor.store(json.dumps(webhook([message(WA_ID)])))
    asyncio.run(processor.process(row_id))
    assert graph.requests == []
    _make_due(db_url)
    asyncio.run(processor.sweep())
    # Not skipped as "already stored": answered (here escalated, since no action recorded a
    # handling), once, and the inbox is empty.
    [reply] = graph.requests
    assert "ticket" in reply.text
    assert _rows(db_url) == []


def test_a_concurrent_redelivery_does_not_answer_a_message_being_handled(db_url, graph, rasa) -> None:
    processor = _processor(db_url, graph, rasa)
    raw = message(WA_ID)
    with session_factory(db_url).begin() as session:
        from bot.store.citizens import get_or_create_identity
        from bot.store.messages import record_inbound

        # The first delivery stored the message and is still waiting for Rasa.
        record_inbound(session, get_or_create_identity(session, "whatsapp", WA_ID), "When is my bin collected?",
                       external_id=raw["id"])
    asyncio.run(processor.process(processor.store(json.dumps(webhook([raw])))))
    assert graph.requests == [] and rasa.seen == []


def test_handling_that_fails_is_retried_later_then_kept_as_failed(db_url, graph) -> None:
    processor = _processor(db_url, graph, BrokenRasa())
    row_id = processor.store(json.dumps(webhook([message(WA_ID)])))
    asyncio.run(processor.process(row_id))
    [row] = _rows(db_url)
    assert (row.status, row.attempts) == ("pending", 1) and "RuntimeError" in row.error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=20)
    # The citizen's message itself was stored on the first attempt.
    with session_factory(db_url)() as session:
        assert session.scalars(select(Message.text).where(Message.direction == "in")).all() == ["When is my bin collected?"]
    for _ in range(inbox.MAX_ATTEMPTS - 1):
        _make_due(db_url)
        asyncio.run(processor.sweep())
    [row] = _rows(db_url)
    assert row.status == "failed" and row.attempts == inbox.MAX_ATTEMPTS and row.next_attempt_at is None
    with session_factory(db_url)() as session:
        assert inbox.due(session, now=utcnow() + timedelta(days=1)) == []


def test_the_api_runs_the_sweeper(db_url, graph, rasa) -> None:
    app = create_app(Runtime(make_settings(db_url, graph.url), rasa=rasa))
    with session_factory(db_url).begin() as session:
        inbox.store(session, json.dumps(webhook([message(WA_ID)])), now=utcnow() - timedelta(minutes=1))
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not graph.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    assert graph.requests and graph.requests[0].text == FAQ_ANSWER
    assert _rows(db_url) == []
