"""WhatsApp end to end: signed webhooks into the running stack (API, Rasa, action server,
delivery worker), replies out to the local Graph API stand-in."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.channels.whatsapp.signature import sign
from bot.stack import Stack, StackConfig
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import Ticket
from bot.training import train
from tests.channels.whatsapp.conftest import APP_SECRET, VERIFY_TOKEN, message, status, webhook, whatsapp_env
from tests.channels.whatsapp.graph_standin import GraphStandIn

pytestmark = pytest.mark.e2e

TICKET_ID = re.compile(r"\b[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{2}[0-9A-Z*~$=](?![\w*~$=])")  # the last is a check symbol


@dataclass
class WhatsAppStack:
    config: StackConfig
    graph: GraphStandIn
    client: httpx.Client

    def post(self, payload: object, *, secret: str | None = APP_SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Hub-Signature-256"] = sign(body, secret)
        return self.client.post(f"{self.config.api_url}/webhooks/whatsapp", content=body, headers=headers)

    def sessions(self):
        return session_factory(self.config.database_url)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhatsAppStack]:
    work: Path = tmp_path_factory.mktemp("whatsapp-stack")
    with GraphStandIn() as graph:
        config = StackConfig.throwaway(
            train(quiet=True),
            work,
            deliveries=True,  # as `bot run` does once a channel can send
            # The machine running the tests may be busy; a slow Rasa must not turn answers into escalations.
            extra_env={**whatsapp_env(graph.url), "CRM_RASA_TIMEOUT_SECONDS": "120"},
        )
        with Stack(config), httpx.Client(timeout=60.0) as client:
            yield WhatsAppStack(config, graph, client)


@pytest.fixture
def wa_id() -> str:
    return "346" + str(uuid.uuid4().int)[:8]


def test_verification_handshake(stack) -> None:
    url = f"{stack.config.api_url}/webhooks/whatsapp"
    ok = stack.client.get(url, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"})
    assert (ok.status_code, ok.text) == (200, "42")
    wrong = stack.client.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert wrong.status_code == 403


def test_faq_question_gets_the_kb_answer_on_whatsapp(stack, wa_id) -> None:
    raw = message(wa_id, text="When is my bin collected?")
    assert stack.post(webhook([raw])).status_code == 200
    first = stack.graph.wait_for(wa_id, timeout=180)[0]
    assert first.body["type"] == "text" and "collect" in first.text.lower()
    with stack.sessions()() as session:
        inbound = session.scalars(select(Message).where(Message.external_id == raw["id"])).one()
        assert (inbound.handling, inbound.kb_entry_id) == ("kb_answer", "waste-collection-days")
        replies = session.scalars(select(Message).where(Message.reply_to_id == inbound.id).order_by(Message.id)).all()
    sent = stack.graph.wait_for(wa_id, count=len(replies))
    assert [r.text for r in sent] == [m.text for m in replies]
    out = _wait_until(stack, replies[-1].id, lambda m: m.delivery_status == "sent")
    assert out.external_id.startswith("wamid.")

    # Meta redelivers, and reports the reply read.
    assert stack.post(webhook([raw])).status_code == 200
    assert stack.post(webhook(statuses=[status(out.external_id, "read", wa_id=wa_id)])).status_code == 200
    _wait_until(stack, out.id, lambda m: "read" in (m.meta.get("whatsapp") or {}).get("statuses", {}))
    assert len(stack.graph.sent_to(wa_id)) == len(replies)


def _wait_until(stack, message_id: int, condition, timeout: float = 20.0) -> Message:
    deadline = time.monotonic() + timeout
    with stack.sessions()() as session:
        while True:
            session.expire_all()
            message = session.get(Message, message_id)
            if condition(message) or time.monotonic() > deadline:
                assert condition(message), (message.delivery_status, message.meta)
                return message
            session.rollback()
            time.sleep(0.1)


def test_complaint_gets_a_ticket_id_on_whatsapp(stack, wa_id) -> None:
    text = "The woman at the registry counter was extremely rude to me this morning. Unacceptable."
    assert stack.post(webhook([message(wa_id, text=text)])).status_code == 200
    [reply] = stack.graph.wait_for(wa_id, timeout=180)
    found = TICKET_ID.search(reply.text)
    assert found and "24 hours" in reply.text, reply.text
    with stack.sessions()() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == found.group(0))).one()
        assert ticket.status == "new" and ticket.subject.startswith("The woman at the registry")


def test_unsigned_webhook_is_refused_by_the_running_api(stack, wa_id) -> None:
    assert stack.post(webhook([message(wa_id)]), secret=None).status_code == 401
    assert stack.post(webhook([message(wa_id)]), secret="forged").status_code == 403
    with stack.sessions()() as session:
        assert session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == wa_id)).first() is None


def test_a_citizen_writing_in_spanish_on_whatsapp_is_answered_in_spanish(stack, wa_id) -> None:
    raw = message(wa_id, text="¿Qué día pasan a recoger la basura?")
    assert stack.post(webhook([raw])).status_code == 200
    first = stack.graph.wait_for(wa_id, timeout=180)[0]
    with stack.sessions()() as session:
        inbound = session.scalars(select(Message).where(Message.external_id == raw["id"])).one()
        assert (inbound.handling, inbound.kb_entry_id, inbound.language) == ("kb_answer", "waste-collection-days", "es")
        answers = session.scalars(select(Message).where(Message.reply_to_id == inbound.id).order_by(Message.id)).all()
        assert answers[0].language == "es" and first.text == answers[0].text
    stack.graph.wait_for(wa_id, count=len(answers), timeout=60)  # the answer, its links (and the privacy notice)
    complaint = "Quiero poner una queja: el funcionario de la ventanilla me trató fatal esta mañana"
    assert stack.post(webhook([message(wa_id, text=complaint)])).status_code == 200
    replies = stack.graph.wait_for(wa_id, count=len(answers) + 1, timeout=180)
    found = TICKET_ID.search(replies[-1].text)
    assert found and replies[-1].text.startswith("Gracias"), replies[-1].text
