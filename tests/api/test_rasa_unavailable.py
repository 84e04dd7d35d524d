"""When Rasa cannot be reached the message is kept and escalated, never lost."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.api.app import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stack import free_port
from bot.store.db import session_factory, upgrade_database
from bot.store.models import Message
from bot.tickets.models import Ticket

API_KEY = "test-key-0123456789abcdef"


def make_client(tmp_path) -> tuple[TestClient, str]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade_database(url)
    settings = Settings(
        api_keys=API_KEY, database_url=url, rasa_url=f"http://127.0.0.1:{free_port()}", rasa_timeout_seconds=2
    )
    return TestClient(create_app(Runtime(settings))), url


def test_message_is_escalated_when_rasa_is_down(tmp_path):
    client, url = make_client(tmp_path)
    with client:
        response = client.post(
            "/api/v1/messages",
            headers={"X-API-Key": API_KEY},
            json={"channel": "web", "sender": "s1", "text": "Where do I renew my passport?"},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["handling"]["kind"] == "escalated"
    ticket_id = body["handling"]["ticket"]["id"]
    assert ticket_id in body["replies"][0]["text"]
    with session_factory(url)() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == ticket_id))
        assert ticket.reason == "assistant_unavailable"
        texts = [m.text for m in session.scalars(select(Message).order_by(Message.id))]
    assert texts[0] == "Where do I renew my passport?"
    assert texts[1] == body["replies"][0]["text"]


def test_settings_refuse_placeholder_api_keys():
    import pytest
    from pydantic import ValidationError

    for bad in ["", "changeme", "short-key"]:
        with pytest.raises(ValidationError):
            Settings(api_keys=bad)


def test_ready_says_503_until_rasa_answers_while_health_says_the_process_is_up(tmp_path):
    client, _url = make_client(tmp_path)
    with client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["error"] == "not_ready"
