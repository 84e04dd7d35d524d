"""Fixtures for the WhatsApp channel: the Graph stand-in, signed webhook posts, an API
app with the channel on and a scripted assistant in place of Rasa."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.channels.whatsapp.signature import sign
from bot.core.rasa_client import RasaUnavailable
from bot.core.turns import METADATA_KEY
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stack import free_port
from bot.store.db import session_factory
from bot.store.messages import record_handling
from bot.store.models import Message
from tests.channels.whatsapp.graph_standin import GraphStandIn

APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "test-verify-token-abc"
ACCESS_TOKEN = "test-access-token-xyz"
PHONE_NUMBER_ID = "106540352242922"
API_KEY = "test-key-0123456789abcdef"

FAQ_ANSWER = "Household waste is collected every Tuesday."

_ids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.HBgLMzQ2{next(_ids):08d}"


class ScriptedRasa:
    """Stands in for Rasa and the action server: answers bin questions from the "KB",
    and is unavailable for anything else, which makes the core escalate with a ticket."""

    def __init__(self, database_url: str) -> None:
        self._sessions = session_factory(database_url)
        self.seen: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.seen.append(text)
        if "bin" not in text.lower():
            raise RasaUnavailable("scripted: not a bin question")
        with self._sessions.begin() as session:
            message = session.get(Message, metadata[METADATA_KEY])
            record_handling(message, intent="faq", confidence=0.99, handling="kb_answer",
                            kb_entry_id="waste-collection-days")
        return [{"recipient_id": sender, "text": FAQ_ANSWER}]

    def close(self) -> None:
        pass


def whatsapp_env(graph_url: str) -> dict[str, str]:
    return {
        "CRM_WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "CRM_WHATSAPP_APP_SECRET": APP_SECRET,
        "CRM_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "CRM_WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "CRM_WHATSAPP_GRAPH_URL": graph_url,
    }


def make_settings(db_url: str, graph_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        api_keys=API_KEY,
        database_url=db_url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_graph_url=graph_url,
        network_timeout_seconds=2.0,
        delivery_backoff_seconds=1.0,
        privacy_notice_channels="",  # the first-contact notice has its own tests (tests/privacy)
    )
    values.update(overrides)
    return Settings(**values)


# --- webhook payloads, as Meta sends them ------------------------------------------------


def message(wa_id: str, kind: str = "text", body: dict[str, Any] | None = None, *, wamid: str | None = None,
            text: str | None = None, **extra: Any) -> dict[str, Any]:
    if kind == "text" and body is None:
        body = {"body": text if text is not None else "When is my bin collected?"}
    raw = {"from": wa_id, "id": wamid or new_wamid(), "timestamp": "1763900000", "type": kind, **extra}
    if body is not None:
        raw[kind] = body
    return raw


def status(wamid: str, state: str, *, wa_id: str = "34600000001", errors: list[dict] | None = None) -> dict[str, Any]:
    raw = {"id": wamid, "status": state, "timestamp": "1763900100", "recipient_id": wa_id}
    if errors:
        raw["errors"] = errors
    return raw


def webhook(messages: list[dict] = (), statuses: list[dict] = (), *, phone_number_id: str = PHONE_NUMBER_ID,
            name: str = "Ana") -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": m.get("from")} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}


class WebhookClient:
    """Posts to the webhook like Meta: the exact bytes, signed (or not, or wrongly)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def post(self, payload: Any = None, *, raw: bytes | None = None, secret: str | None = APP_SECRET,
             signature: str | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        elif secret is not None:
            headers["X-Hub-Signature-256"] = sign(body, secret)
        return self.client.post("/webhooks/whatsapp", content=body, headers=headers)

    def verify(self, **params: str):
        return self.client.get("/webhooks/whatsapp", params=params)


@pytest.fixture
def graph() -> Iterator[GraphStandIn]:
    with GraphStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def rasa(db_url: str) -> ScriptedRasa:
    return ScriptedRasa(db_url)


@pytest.fixture
def wa(db_url: str, graph: GraphStandIn, rasa: ScriptedRasa) -> WebhookClient:
    # Without `with`: the app's lifespan (and so the sweeper) does not run; tests sweep by hand.
    return WebhookClient(TestClient(create_app(Runtime(make_settings(db_url, graph.url), rasa=rasa))))
