"""Helpers for the e-mail tests: write mail into the city's mailbox, run the worker's
passes in-process, read what citizens received."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select

from bot.channels.email import imap
from bot.channels.email.adapter import build_preparer, delivery_lease
from bot.channels.email.models import EmailInbound
from bot.channels.email.sender import EmailSender
from bot.channels.email.worker import EmailWorker
from bot.core.conversation import Conversation
from bot.core.rasa_client import RasaClient
from bot.outbox.delivery import DeliveryService
from bot.settings import Settings
from bot.store.db import session_factory
from tools.standins.email import DOMAIN, MailServers


def settings_for(servers: MailServers, *, database_url: str, rasa_url: str, **overrides: object) -> Settings:
    env = servers.settings_env()
    values: dict[str, object] = {key[4:].lower(): value for key, value in env.items()}
    values.update(
        database_url=database_url,
        rasa_url=rasa_url,
        api_keys="email-tests-" + uuid.uuid4().hex,
        imap_poll_seconds=1.0,
        network_timeout_seconds=5.0,
        privacy_notice_channels="",  # the first-contact notice has its own tests (tests/privacy)
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


def citizen() -> str:
    return f"citizen-{uuid.uuid4().hex[:10]}@{DOMAIN}"


def make_mail(sender: str | None, to: str, subject: str, body: str, *, message_id: str | None = "auto",
              headers: dict[str, str] | None = None) -> EmailMessage:
    mail = EmailMessage()
    if sender:
        mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    if message_id == "auto":
        message_id = make_msgid(domain=DOMAIN)
    if message_id:
        mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class EmailHarness:
    """The worker in-process, pointed at the test mail servers and the running assistant."""

    def __init__(self, servers: MailServers, assistant, **overrides: object) -> None:  # noqa: ANN001
        self._start(servers, database_url=assistant.database_url, rasa_url=assistant.config.rasa_url,
                    rasa=None, kb_dir=str(assistant.config.kb_dir), **overrides)

    @classmethod
    def with_rasa(
        cls, servers: MailServers, *, database_url: str, rasa: object, **overrides: object
    ) -> EmailHarness:
        """Against a stand-in for Rasa and the action server: no trained model, no stack."""
        harness = cls.__new__(cls)
        harness._start(servers, database_url=database_url, rasa_url="http://127.0.0.1:9", rasa=rasa, **overrides)
        return harness

    def _start(
        self, servers: MailServers, *, database_url: str, rasa_url: str, rasa: object | None, **overrides: object
    ) -> None:
        self.servers = servers
        self.city = servers.city
        self.settings = settings_for(servers, database_url=database_url, rasa_url=rasa_url, **overrides)
        self.sessions = session_factory(self.settings.database_url)
        self.sender = EmailSender(self.settings)
        self.delivery = DeliveryService(
            self.sessions, {"email": self.sender}, preparers={"email": build_preparer(None)},
            lease=delivery_lease(self.settings),
        )
        self.rasa = rasa if rasa is not None else RasaClient(self.settings.rasa_url, self.settings.rasa_timeout_seconds)
        self.runner = asyncio.Runner()
        self.worker = EmailWorker(
            self.settings, self.sessions, Conversation(self.settings, self.sessions, self.rasa), self.delivery,
            run_async=self.runner.run,
        )
        self.client = imap.connect(self.settings)

    def close(self) -> None:
        imap.close(self.client)
        self.runner.run(self.sender.aclose())
        self.runner.close()
        self.rasa.close()

    # --- mail in ---------------------------------------------------------------------------

    def deliver(self, mail: EmailMessage | bytes, envelope_sender: str | None = None) -> None:
        """Into the city's inbox over LMTP, as the city's MTA would after receiving it.

        The envelope sender becomes Return-Path; by default the From address (bounces use "")."""
        if isinstance(mail, bytes):
            raw = mail
            sender = envelope_sender if envelope_sender is not None else "someone@" + DOMAIN
        else:
            raw = mail.as_bytes(policy=email.policy.SMTP)
            sender = envelope_sender if envelope_sender is not None else str(mail["From"] or "")
        refused = self.servers.dovecot.deliver([self.city], raw, sender)
        assert not refused, refused

    def send(self, mail: EmailMessage) -> None:
        """Through the SMTP server (STARTTLS + AUTH), which delivers it into the city's inbox."""
        import smtplib

        with smtplib.SMTP("127.0.0.1", self.servers.smtp.starttls_port, timeout=30) as smtp:
            smtp.starttls(context=self.servers.client_context())
            smtp.login(self.city, self.servers.city_password)
            smtp.send_message(mail, to_addrs=[self.city])

    def poll(self) -> None:
        """One worker pass, and one more so that copies of our replies are filed in Sent."""
        self.worker.poll_once(self.client)
        self.worker.poll_once(self.client)

    # --- what happened ---------------------------------------------------------------------

    def received_by(self, address: str) -> list[email.message.EmailMessage]:
        box = self.servers.dovecot.maildir(address) if self.servers.dovecot.mail_home(address).exists() else {}
        return [parse(box.get_bytes(key)) for key in box.keys()] if box else []

    def replies_to(self, address: str, message_id: str) -> list[email.message.EmailMessage]:
        return [m for m in self.received_by(address) if (m["In-Reply-To"] or "").strip() == message_id]

    def inbound(self, message_id: str) -> EmailInbound | None:
        with self.sessions() as session:
            row = session.scalars(select(EmailInbound).where(EmailInbound.message_key == message_id)).one_or_none()
            if row is not None:
                session.expunge(row)
            return row

    def sent_folder(self) -> list[email.message.EmailMessage]:
        box = self.servers.dovecot.maildir(self.city, self.settings.email_sent_mailbox)
        return [parse(box.get_bytes(key)) for key in box.keys()]
