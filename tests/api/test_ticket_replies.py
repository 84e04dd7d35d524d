"""Agents' replies through the API: stored, delivered over the citizen's channel, retried, visible.

A fake ChannelSender stands in for Telegram; the store is real (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.api.app import create_app
from bot.outbox.delivery import DeliveryService
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stack import free_port
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import ChannelIdentity, Message
from bot.tickets import ids
from bot.tickets.service import change_status, open_or_join_ticket

API_KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}


class FakeTelegram:
    """Answers like a channel sender would: each call takes the next scripted outcome."""

    channel = "telegram"

    def __init__(self, outcomes: list[object] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        outcome = self.outcomes.pop(0) if self.outcomes else SendResult(external_id=f"tg-{len(self.sent)}")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _settings(db_url: str) -> Settings:
    return Settings(
        api_keys=API_KEY,
        database_url=db_url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        delivery_backoff_seconds=0.2,
        delivery_max_attempts=4,
    )


@pytest.fixture
def telegram() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def client(db_url: str, telegram: FakeTelegram):
    with TestClient(create_app(Runtime(_settings(db_url), senders={"telegram": telegram}))) as test_client:
        yield test_client


def _ticket(db_url: str, channel: str = "telegram", address: str = "4242", status: str | None = None) -> str:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, channel, address)
        inbound, _ = record_inbound(session, identity, "The streetlight on Elm Street is out")
        ticket, _ = open_or_join_ticket(
            session, inbound=inbound, reason="report_problem", department="roads", settings=_settings(db_url)
        )
        if status is not None:
            change_status(session, ticket, status, actor="agent:bo")
        return ticket.public_id


def _reply(client: TestClient, ticket_id: str, text: str = "We have sent a crew.", author: str = "ana", **kw):
    return client.post(f"/api/v1/tickets/{ticket_id}/replies", json={"text": text, "author": author}, headers=AUTH, **kw)


def _outbound(detail: dict) -> list[dict]:
    return [m for m in detail["messages"] if m["direction"] == "out"]


def test_reply_is_delivered_over_the_citizens_channel(client: TestClient, telegram: FakeTelegram, db_url: str) -> None:
    ticket_id = _ticket(db_url)
    response = _reply(client, ticket_id)
    assert response.status_code == 202, response.text
    stored = response.json()
    assert stored["ticket_id"] == ticket_id and stored["channel"] == "telegram"
    assert stored["author"] == "agent:ana" and stored["text"] == "We have sent a crew."
    assert stored["delivery"]["status"] == "pending" and stored["delivery"]["method"] == "push"

    # Delivered right after the response, by the API's DeliveryService.
    assert [(m.address, m.text, m.ticket_public_id) for m in telegram.sent] == [("4242", "We have sent a crew.", ticket_id)]
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).json()
    (reply,) = _outbound(detail)
    assert reply["id"] == stored["id"]
    assert reply["delivery"]["status"] == "sent" and reply["delivery"]["attempts"] == 1
    assert reply["delivery"]["last_error"] is None and reply["delivery"]["sent_at"] is not None
    assert detail["first_response_at"] is not None
    public = [e for e in detail["events"] if e["kind"] == "public_update"]
    assert public[0]["message_id"] == stored["id"] and public[0]["actor"] == "agent:ana"
    assert detail["messages"][0]["text"] == "The streetlight on Elm Street is out"
    assert detail["messages"][0]["delivery"] is None
    with session_factory(db_url)() as session:
        assert session.get(Message, stored["id"]).external_id == "tg-1"


def test_failed_delivery_is_retried_with_backoff_then_sent(client: TestClient, telegram: FakeTelegram, db_url: str) -> None:
    telegram.outcomes = [DeliveryError("HTTP 502 from Telegram")]
    ticket_id = _ticket(db_url)
    before = time.time()
    reply_id = _reply(client, ticket_id).json()["id"]

    (reply,) = _outbound(client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).json())
    delivery = reply["delivery"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("pending", 1, "HTTP 502 from Telegram")
    assert datetime.fromisoformat(delivery["next_attempt_at"]).timestamp() >= before + 0.2

    # The delivery worker (python -m bot deliveries runs this loop) picks it up once it is due.
    async def worker() -> None:
        stop = asyncio.Event()
        service = DeliveryService(session_factory(db_url), {"telegram": telegram}, backoff_seconds=0.2)
        task = asyncio.create_task(service.run_forever(stop, idle_seconds=0.05))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_factory(db_url)() as session:
                if session.get(Message, reply_id).delivery_status == "sent":
                    break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(worker())
    (reply,) = _outbound(client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).json())
    assert reply["delivery"]["status"] == "sent" and reply["delivery"]["attempts"] == 2
    assert reply["delivery"]["last_error"] is None
    assert len(telegram.sent) == 2


def test_permanent_failure_is_shown_as_failed(client: TestClient, telegram: FakeTelegram, db_url: str) -> None:
    telegram.outcomes = [DeliveryError("Forbidden: bot was blocked by the user", retryable=False)]
    ticket_id = _ticket(db_url)
    _reply(client, ticket_id)
    (reply,) = _outbound(client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).json())
    assert reply["delivery"]["status"] == "failed" and reply["delivery"]["attempts"] == 1
    assert reply["delivery"]["last_error"] == "Forbidden: bot was blocked by the user"
    assert reply["delivery"]["next_attempt_at"] is None


def test_web_client_fetches_agent_replies(client: TestClient, db_url: str) -> None:
    ticket_id = _ticket(db_url, channel="web", address="session-1")
    stored = _reply(client, ticket_id, text="Please send a photo <b>of</b> it.").json()
    assert stored["delivery"]["method"] == "pull" and stored["delivery"]["status"] == "pending"

    url = "/api/v1/conversations/web/session-1/replies"
    first = client.get(url, headers=AUTH).json()
    assert first["replies"] == [
        {"id": stored["id"], "text": "Please send a photo <b>of</b> it.", "created_at": stored["created_at"],
         "sender": "staff", "ticket_id": ticket_id}
    ]
    assert first["last_id"] == stored["id"]
    assert client.get(url, headers=AUTH).json() == {"replies": [], "last_id": None}
    # A client that lost the response asks again from its last shown message.
    again = client.get(url, params={"after": stored["id"] - 1}, headers=AUTH).json()
    assert [r["id"] for r in again["replies"]] == [stored["id"]]
    assert client.get(url, params={"after": stored["id"]}, headers=AUTH).json() == {"replies": [], "last_id": stored["id"]}

    (reply,) = _outbound(client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).json())
    assert reply["delivery"]["status"] == "sent" and reply["delivery"]["attempts"] == 1


def test_fetching_for_a_stranger_returns_nothing_and_creates_nothing(client: TestClient, db_url: str) -> None:
    response = client.get("/api/v1/conversations/web/nobody/replies", headers=AUTH)
    assert response.json() == {"replies": [], "last_id": None}
    with session_factory(db_url)() as session:
        assert session.scalar(select(func.count()).select_from(ChannelIdentity)) == 0


def test_assistant_replies_returned_in_the_response_are_not_fetched_again(client: TestClient, db_url: str) -> None:
    from bot.outbox.delivery import mark_sent_in_response
    from bot.store.messages import record_outbound

    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "web", "s2")
        inbound, _ = record_inbound(session, identity, "hello")
        reply = record_outbound(session, inbound=inbound, text="Hello! How can I help?")
        reply.author = "assistant"
        mark_sent_in_response(reply)
    assert client.get("/api/v1/conversations/web/s2/replies", params={"after": 0}, headers=AUTH).json()["replies"] == []


@pytest.mark.parametrize("channel", ["telegram", "carrier-pigeon"])
def test_fetching_is_refused_for_push_and_unknown_channels(client: TestClient, channel: str) -> None:
    response = client.get(f"/api/v1/conversations/{channel}/4242/replies", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request" and channel in response.json()["detail"][0]["message"]


def test_ticket_ids_are_read_as_people_type_them(client: TestClient, db_url: str) -> None:
    ticket_id = _ticket(db_url)
    typed = ticket_id.replace("-", "").lower()
    assert client.get(f"/api/v1/tickets/{typed}", headers=AUTH).json()["id"] == ticket_id
    assert _reply(client, typed).status_code == 202


def test_bad_input(client: TestClient, db_url: str) -> None:
    ticket_id = _ticket(db_url)
    mistyped = ticket_id[:-1] + ("0" if ticket_id[-1] != "0" else "1")
    for raw in (mistyped, "hello", "K7M-39Q-XD2-EXTRA"):
        response = _reply(client, raw)
        assert response.status_code == 404, raw
        assert response.json()["error"] == "ticket_not_found" and "not a valid ticket ID" in response.json()["detail"]
    unknown = ids.new_ticket_id()
    response = client.get(f"/api/v1/tickets/{unknown}", headers=AUTH)
    assert response.status_code == 404 and response.json() == {
        "error": "ticket_not_found", "detail": f"no ticket with ID {unknown}"
    }

    for body in ({"text": "  \n ", "author": "ana"}, {"text": "ok"}, {"text": "ok", "author": " "}, {"author": "ana"}):
        response = client.post(f"/api/v1/tickets/{ticket_id}/replies", json=body, headers=AUTH)
        assert response.status_code == 422, body
        assert response.json()["error"] == "invalid_request"
    assert client.post(f"/api/v1/tickets/{ticket_id}/replies", content=b"{nope", headers=AUTH).status_code == 422
    response = client.get("/api/v1/conversations/web/x/replies", params={"after": -1}, headers=AUTH)
    assert response.status_code == 422

    with session_factory(db_url)() as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0


def test_closed_ticket_takes_no_reply(client: TestClient, db_url: str) -> None:
    ticket_id = _ticket(db_url, status="closed")
    response = _reply(client, ticket_id)
    assert response.status_code == 409
    assert response.json()["error"] == "ticket_closed" and "is closed" in response.json()["detail"]


def test_every_ticket_route_needs_the_api_key(client: TestClient, db_url: str) -> None:
    ticket_id = _ticket(db_url)
    calls = [
        ("post", f"/api/v1/tickets/{ticket_id}/replies", {"json": {"text": "hi", "author": "ana"}}),
        ("get", f"/api/v1/tickets/{ticket_id}", {}),
        ("get", "/api/v1/conversations/web/s1/replies", {}),
    ]
    for method, url, kw in calls:
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}, {"Authorization": "Bearer nope"}):
            response = getattr(client, method)(url, headers=headers, **kw)
            assert response.status_code == 401, (method, url, headers)
            assert response.json()["error"] == "unauthorized"
        ok = getattr(client, method)(url, headers={"Authorization": f"Bearer {API_KEY}"}, **kw)
        assert ok.status_code in (200, 202)
