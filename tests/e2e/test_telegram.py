"""Telegram end to end: `python -m bot channel telegram` (polling), `python -m bot deliveries`
and the API in webhook mode, as separate processes like in production, against the Bot
API stand-in and the running assistant (Rasa, action server, store)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.telegram.webhook import WEBHOOK_PATH
from bot.settings import PROJECT_ROOT
from bot.stack import free_port
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import Ticket
from tools.standins.telegram import BotApiStandIn

pytestmark = pytest.mark.e2e

TOKEN = "424242:E2E-stand-in-token"
TICKET_ID = re.compile(r"\b[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{2}[0-9A-Z*~$=]")  # the last is a check symbol
REPLY_TIMEOUT = 90.0


def _env(assistant, standin: BotApiStandIn, **extra: str) -> dict[str, str]:
    config = assistant.config
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(PROJECT_ROOT),
        "CRM_DATABASE_URL": config.database_url,
        "CRM_API_KEYS": config.api_key,
        "CRM_KB_DIR": str(config.kb_dir),
        "CRM_RASA_URL": config.rasa_url,
        "CRM_TELEGRAM_BOT_TOKEN": standin.token,
        "CRM_TELEGRAM_BASE_URL": standin.base_url,
        "CRM_DELIVERY_BACKOFF_SECONDS": "0.5",
        "CRM_DELIVERY_BACKOFF_MAX_SECONDS": "5",
    })
    env.update(extra)
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, *args], cwd=PROJECT_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def telegram(assistant, tmp_path_factory) -> Iterator[BotApiStandIn]:
    """The polling worker and the delivery worker, started once for this module."""
    logs = tmp_path_factory.mktemp("telegram-logs")
    with BotApiStandIn(TOKEN) as standin:
        env = _env(assistant, standin)
        worker = _spawn(["-m", "bot", "channel", "telegram"], env, logs / "channel-telegram.log")
        deliveries = _spawn(["-m", "bot", "deliveries"], env, logs / "deliveries.log")
        try:
            deadline = time.monotonic() + 60
            while not standin.calls_of("getUpdates"):
                assert worker.poll() is None, (logs / "channel-telegram.log").read_text()
                assert time.monotonic() < deadline, "the Telegram worker never polled"
                time.sleep(0.1)
            yield standin
        finally:
            _stop(worker, deliveries)
        log = (logs / "channel-telegram.log").read_text() + (logs / "deliveries.log").read_text()
        assert TOKEN not in log and "Traceback" not in log, log


@pytest.fixture
def chat() -> int:
    return random.randint(10**8, 10**9)


def _say(standin: BotApiStandIn, chat: int, text: str, count: int = 1, **kw) -> list:
    before = len(standin.sent_to(chat))
    standin.push(standin.updates.text(chat, text, **kw))
    return standin.wait_for_sent(chat, before + count, timeout=REPLY_TIMEOUT)[before:]


def _messages(assistant, chat: int, direction: str) -> list[Message]:
    with assistant.sessions()() as session:
        return list(session.scalars(
            select(Message).join(ChannelIdentity, Message.identity_id == ChannelIdentity.id)
            .where(ChannelIdentity.channel == "telegram", ChannelIdentity.address == str(chat),
                   Message.direction == direction)
            .order_by(Message.id)
        ))


def _inbound(assistant, chat: int) -> list[Message]:
    return _messages(assistant, chat, "in")


def test_faq_question_is_answered_from_the_knowledge_base(assistant, telegram, chat):
    answer, links = _say(telegram, chat, "When is my bin collected?", count=2)
    assert "collect" in answer.text.lower() and "https://" in links.text
    (stored,) = _inbound(assistant, chat)
    assert (stored.handling, stored.kb_entry_id) == ("kb_answer", "waste-collection-days")


def test_a_citizen_writing_in_spanish_is_answered_in_spanish(assistant, telegram, chat):
    answer, links = _say(telegram, chat, "¿Qué día pasan a recoger la basura?", count=2)
    assert "https://" in links.text and "Más información" in (answer.text + links.text)
    (stored,) = _inbound(assistant, chat)
    assert (stored.handling, stored.kb_entry_id, stored.language) == ("kb_answer", "waste-collection-days", "es")
    (reply,) = _say(telegram, chat, "Quiero poner una queja: el funcionario de la ventanilla me trató fatal")
    found = TICKET_ID.search(reply.text)
    assert found and reply.text.startswith("Gracias"), reply.text


def test_complaint_gets_a_ticket_id_and_a_photo_joins_the_report(assistant, telegram, chat):
    (reply,) = _say(telegram, chat, "There's a deep pothole on Mill Road outside number 14, a cyclist nearly fell")
    found = TICKET_ID.search(reply.text)
    assert found, (reply.text, [(m.text, m.handling, m.intent) for m in _inbound(assistant, chat)])
    ticket_id = found.group()
    u = telegram.updates
    telegram.push(u.update(u.message(chat, photo=u.photo_sizes("AgAC-pothole"))))
    (photo_reply,) = telegram.wait_for_sent(chat, 2, timeout=REPLY_TIMEOUT)[1:]
    assert ticket_id in photo_reply.text and "photo" in photo_reply.text
    report, photo = _inbound(assistant, chat)
    with assistant.sessions()() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == ticket_id))
        assert ticket.department == "roads" and report.ticket_id == photo.ticket_id == ticket.id
    assert photo.meta["attachment"]["file_id"] == "AgAC-pothole" and photo.handling == "attachment_added"


def test_start_status_and_human(assistant, telegram, chat):
    (welcome,) = _say(telegram, chat, "/start")
    assert "store" in welcome.text
    (handover,) = _say(telegram, chat, "/human")
    found = TICKET_ID.search(handover.text)
    assert found, (handover.text, [(m.text, m.handling, m.intent) for m in _inbound(assistant, chat)])
    ticket_id = found.group()
    (status,) = _say(telegram, chat, f"/status {ticket_id}")
    assert ticket_id in status.text and "waiting for a member of staff" in status.text
    (ask,) = _say(telegram, chat, "/status")
    assert "Which ticket" in ask.text
    stored = _inbound(assistant, chat)
    assert [m.text for m in stored] == ["/start", "/human", f"/status {ticket_id}", "/status"]
    assert [m.handling for m in stored] == ["channel_command", "escalated", "status", "channel_command"]
    with assistant.sessions()() as session:
        assert session.scalar(select(Ticket.reason).where(Ticket.public_id == ticket_id)) == "request_human"


def test_group_is_ignored_unless_the_bot_is_addressed(assistant, telegram):
    group = -random.randint(10**12, 10**13)
    u = telegram.updates
    chatter = u.text(group, "When is my bin collected?", from_id=501)
    handle, entities_for = u.mention()
    addressed = f"{handle} When is my bin collected?"
    telegram.push(chatter)
    telegram.wait_until_fetched(chatter["update_id"])
    reply, _links = _say(telegram, group, addressed, count=2, from_id=502, entities=entities_for(addressed))
    assert "collect" in reply.text.lower()
    (stored,) = _inbound(assistant, group)
    assert stored.text == addressed and stored.kb_entry_id == "waste-collection-days"


def test_one_citizens_messages_are_answered_in_order(assistant, telegram, chat):
    u = telegram.updates
    telegram.push(u.text(chat, "When is my bin collected?"), u.text(chat, "hello"),
                  u.text(chat, "The staff at the registry counter were extremely rude to me, I want to complain"))
    # The KB answer is two messages (the answer, then its links), the greeting one, the ticket one.
    replies = [m.text for m in telegram.wait_for_sent(chat, 4, timeout=REPLY_TIMEOUT)]
    assert "collect" in replies[0].lower() and "More information" in replies[1]
    assert replies[2].startswith("Hello") and TICKET_ID.search(replies[3])
    assert [m.handling for m in _inbound(assistant, chat)] == ["kb_answer", "small_talk", "escalated"]


def _wait_status(assistant, chat: int, status: str, timeout: float = REPLY_TIMEOUT) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        rows = _messages(assistant, chat, "out")
        if rows and rows[0].delivery_status == status:
            return rows[0]
        assert time.monotonic() < deadline, f"reply never became {status}: {[r.delivery_status for r in rows]}"
        time.sleep(0.2)


@pytest.mark.parametrize("failure", [{"status": 429, "retry_after": 1}, {"status": 500}])
def test_failed_reply_is_retried_by_the_delivery_worker(assistant, telegram, chat, failure):
    telegram.fail_next("sendMessage", failure["status"], retry_after=failure.get("retry_after"), chat_id=chat)
    telegram.push(telegram.updates.text(chat, "hello"))
    telegram.wait_for_sent(chat, timeout=REPLY_TIMEOUT)
    reply = _wait_status(assistant, chat, "sent")
    assert reply.delivery_attempts == 2
    assert len(telegram.sent_to(chat)) == 1


def test_reply_to_a_citizen_who_blocked_the_bot_is_marked_failed(assistant, telegram, chat):
    telegram.blocked_chats.add(chat)
    telegram.push(telegram.updates.text(chat, "hello"))
    reply = _wait_status(assistant, chat, "failed")
    assert reply.delivery_attempts == 1 and "blocked" in reply.delivery_error
    assert telegram.sent_to(chat) == []


# --- webhook mode: the API process receives the updates ----------------------------------------

SECRET = "e2e-webhook-secret-" + "s" * 16


@pytest.fixture(scope="module")
def webhook_api(assistant, telegram, tmp_path_factory) -> Iterator[tuple[BotApiStandIn, str]]:
    """The API in webhook mode, beside the module's delivery worker and on the same stand-in.

    One Telegram, as in production: the delivery worker picks up every due reply, so it
    sends some of the webhook's replies itself. On a Telegram of its own it would number
    them apart from the API's and two replies would get the same message id (a flaky test
    that once failed on the store's unique constraint, not a fault of the product)."""
    standin = telegram
    log = tmp_path_factory.mktemp("telegram-webhook") / "api.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    env = _env(assistant, standin, CRM_TELEGRAM_MODE="webhook", CRM_TELEGRAM_WEBHOOK_URL=url,
               CRM_TELEGRAM_WEBHOOK_SECRET=SECRET)
    api = _spawn(["-m", "uvicorn", "bot.api.main:create", "--factory", "--host", "127.0.0.1",
                  "--port", str(port), "--log-level", "warning"], env, log)
    try:
        deadline = time.monotonic() + 60
        while standin.webhook.get("url") != url:
            assert api.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the API never registered the webhook"
            time.sleep(0.1)
        time.sleep(0.2)
        yield standin, url
    finally:
        _stop(api)
    text = log.read_text()
    assert TOKEN not in text and SECRET not in text and "Traceback" not in text, text


def test_webhook_checks_the_secret_on_every_request(assistant, webhook_api, chat):
    standin, url = webhook_api
    assert standin.webhook["url"] == url and standin.webhook["secret_token"] == SECRET
    for secret in (None, "not-the-secret"):
        forged = standin.updates.text(chat, "I want to talk to a human")
        assert standin.post_to_webhook(forged, secret=secret).status_code == 403
    time.sleep(1.0)
    assert _inbound(assistant, chat) == [] and standin.sent_to(chat) == []
    assert standin.post_to_webhook(standin.updates.text(chat, "When is my bin collected?")).status_code == 200
    reply, _links = standin.wait_for_sent(chat, 2, timeout=REPLY_TIMEOUT)
    assert "collect" in reply.text.lower()
    (stored,) = _inbound(assistant, chat)
    assert stored.kb_entry_id == "waste-collection-days"

