"""SMTP sending (TLS and STARTTLS, AUTH), the no-second-send check, IMAP STARTTLS and IDLE."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from bot.channels.email import imap
from bot.channels.email.adapter import delivery_lease
from bot.channels.email.sender import EmailSender
from bot.channels.email.worker import EmailWorker
from bot.core.conversation import Conversation
from bot.core.rasa_client import RasaClient
from bot.outbox.delivery import DeliveryService
from bot.outbox.outbound import DeliveryError, OutboundMessage
from bot.store.db import session_factory
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail, parse, settings_for
from tools.standins.email import MailServers


def _settings(servers: MailServers, **overrides: object):  # noqa: ANN202
    return settings_for(servers, database_url="sqlite://", rasa_url="http://127.0.0.1:9", **overrides)


def _outbound(address: str, attempt: int = 1) -> OutboundMessage:
    return OutboundMessage(
        message_id=random.randrange(10**9, 10**10), channel="email", address=address, text="Your answer.",
        meta={"email": {"automatic": True, "subject": "Bins", "in_reply_to": "<q1@example.test>",
                        "references": ["<q1@example.test>"]}},
        ticket_public_id=None, attempt=attempt,
    )


def _received(servers: MailServers, address: str) -> list:
    if not servers.dovecot.mail_home(address).exists():
        return []
    box = servers.dovecot.maildir(address)
    return [parse(box.get_bytes(key)) for key in box.keys()]


@pytest.mark.parametrize("security, port", [("tls", "tls_port"), ("starttls", "starttls_port")])
def test_sender_sends_over_tls_and_starttls_with_auth(mail_servers: MailServers, security: str, port: str) -> None:
    settings = _settings(mail_servers, smtp_security=security, smtp_port=getattr(mail_servers.smtp, port))
    sender = EmailSender(settings)
    to = citizen()

    async def go() -> None:
        try:
            result = await sender.send(_outbound(to))
            assert result.external_id.startswith("<crm-reply-")
        finally:
            await sender.aclose()

    asyncio.run(go())
    [mail] = _received(mail_servers, to)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<q1@example.test>"
    assert mail["Return-Path"] == "<>"  # RFC 3834: automatic replies have an empty envelope sender


def test_a_retry_after_a_crash_in_mid_send_does_not_send_twice(mail_servers: MailServers) -> None:
    settings = _settings(mail_servers)
    sender = EmailSender(settings)
    to, other = citizen(), citizen()
    first = _outbound(to)
    never_sent = _outbound(other, attempt=2)

    async def go() -> tuple:
        try:
            await sender.send(first)
            # The worker died after the server accepted the mail, before recording it: the
            # queue hands the same row over again as attempt 2.
            again = await sender.send(OutboundMessage(**{**first.__dict__, "attempt": 2}))
            # Attempt 2 of a row that never reached the server is sent normally.
            fresh = await sender.send(never_sent)
            return again, fresh
        finally:
            await sender.aclose()

    again, fresh = asyncio.run(go())
    assert again.meta == {"email_recovered_from_copy": True}
    assert len(_received(mail_servers, to)) == 1
    assert not fresh.meta and len(_received(mail_servers, other)) == 1


def test_wrong_smtp_password_keeps_the_message_queued(mail_servers: MailServers) -> None:
    sender = EmailSender(_settings(mail_servers, smtp_password="wrong-password-123"))
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(sender.send(_outbound(citizen())))
    assert caught.value.retryable


def test_imap_over_starttls(mail_servers: MailServers) -> None:
    settings = _settings(mail_servers, imap_security="starttls", imap_port=mail_servers.dovecot.imap_port)
    client = imap.connect(settings)
    try:
        assert b"IDLE" in client.capabilities()
        assert client.select_folder("INBOX")[b"UIDVALIDITY"]
    finally:
        imap.close(client)


def _answered_by_a_running_worker(harness: EmailHarness, settings) -> bool:  # noqa: ANN001
    """Start the worker loop in a thread, deliver one FAQ mail after its first pass, wait for the reply."""
    sessions = session_factory(settings.database_url)
    sender = EmailSender(settings)
    delivery = DeliveryService(sessions, {"email": sender}, lease=delivery_lease(settings))
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)
    stop = threading.Event()

    def run() -> None:
        with asyncio.Runner() as runner:
            worker = EmailWorker(settings, sessions, Conversation(settings, sessions, rasa), delivery,
                                 run_async=runner.run)
            worker.run(stop)
            runner.run(sender.aclose())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        time.sleep(3)  # the first pass is done; the worker is waiting
        anna = citizen()
        mail = make_mail(anna, harness.city, "Bins", "When is my bin collected?")
        harness.deliver(mail)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not harness.replies_to(anna, mail["Message-ID"]):
            time.sleep(0.2)
        answered = len(harness.replies_to(anna, mail["Message-ID"])) == 1
    finally:
        stop.set()
        thread.join(timeout=15)
        rasa.close()
    assert not thread.is_alive()
    return answered


@pytest.mark.e2e
def test_worker_waits_in_idle_and_answers_new_mail_at_once(email_harness: EmailHarness) -> None:
    # Polling every 5 minutes: only IDLE can explain an answer within seconds.
    settings = email_harness.settings.model_copy(update={"imap_poll_seconds": 300.0})
    assert _answered_by_a_running_worker(email_harness, settings)


@pytest.mark.e2e
def test_worker_polls_when_the_server_has_no_idle(email_harness: EmailHarness, monkeypatch) -> None:  # noqa: ANN001
    real_connect = imap.connect
    idle_used = []

    def without_idle(settings):  # noqa: ANN001, ANN202
        client = real_connect(settings)
        capabilities = tuple(c for c in client.capabilities() if c != b"IDLE")
        client.capabilities = lambda: capabilities
        client.idle = lambda: idle_used.append(True)
        return client

    monkeypatch.setattr(imap, "connect", without_idle)
    settings = email_harness.settings.model_copy(update={"imap_poll_seconds": 1.0})
    assert _answered_by_a_running_worker(email_harness, settings)
    assert idle_used == []
