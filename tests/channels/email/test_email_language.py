"""One KB, many languages, by e-mail: the mail's Content-Language reaches the core as a hint,
and what the channel words itself (the combined reply, the subject) speaks the turn's language.

No mail servers: a stand-in for the IMAP client hands the worker its mail, the stand-in for Rasa
and the action server of test_email_commitment answers it, and the SMTP transmission is caught.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.email.models import EmailInbound
from bot.channels.email.sender import EmailSender
from bot.channels.email.worker import EmailWorker, reply_language
from bot.core.conversation import Conversation, HandledMessage
from bot.outbox.outbound import OutboundMessage
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.models import Message
from bot.texts import template, text
from tests.channels.email.test_email_commitment import FAQ_ANSWER, ActionServerStandIn

CITY = "info@city.example"
ANA = "ana@mail.example"


class MailboxStandIn:
    """What the worker asks of IMAPClient for one pass over an inbox of ``mails``."""

    def __init__(self, mails: list[bytes]) -> None:
        self.mails = dict(enumerate(mails, start=1))

    def select_folder(self, _name: str) -> dict:
        return {b"UIDVALIDITY": 7}

    def search(self, _criteria: list) -> list[int]:
        return list(self.mails)

    def fetch(self, uids: list[int], items: list[str]) -> dict:
        if items == ["RFC822.SIZE"]:
            return {uid: {b"RFC822.SIZE": len(self.mails[uid])} for uid in uids}
        return {uid: {b"BODY[]": self.mails[uid]} for uid in uids}

    def add_flags(self, *_args: Any, **_kwargs: Any) -> None:
        pass


class QueuedOnly:
    """The delivery service, leaving the reply queued: the tests read the stored row."""

    async def deliver(self, _message_id: int) -> None:
        pass

    async def run_once(self) -> int:
        return 0


class WordedIn(Conversation):
    """The real core, recording what it was handed, with the turn's language set to ``language``
    (the core decides it; here the test does)."""

    def __init__(self, *args: Any, language: str | None) -> None:
        super().__init__(*args)
        self.language = language
        self.seen = []

    def handle_inbound(self, inbound, **options) -> HandledMessage:  # noqa: ANN001
        self.seen.append(inbound)
        return replace(super().handle_inbound(inbound, **options), language=self.language)


def _settings(db_url: str) -> Settings:
    return Settings(_env_file=None, api_keys="k" * 20, database_url=db_url, email_address=CITY,
                    imap_host="imap.city.example", imap_user=CITY, imap_password="secret-password",
                    smtp_host="smtp.city.example", privacy_notice_channels="")


def _mail(body: str, headers: str = "") -> bytes:
    return (f"From: Ana <{ANA}>\r\nTo: {CITY}\r\nSubject: Dos cosas\r\nMessage-ID: <q-{abs(hash(body))}@mail.example>"
            f"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{headers}\r\n{body}\r\n").encode()


def _run(db_url: str, mail: bytes, language: str | None) -> tuple[WordedIn, dict[str, Any]]:
    settings = _settings(db_url)
    sessions = session_factory(db_url)
    conversation = WordedIn(settings, sessions, ActionServerStandIn(db_url), language=language)
    with asyncio.Runner() as runner:
        worker = EmailWorker(settings, sessions, conversation, QueuedOnly(), run_async=runner.run)
        worker.poll_once(MailboxStandIn([mail]))
    with sessions() as session:
        row = session.scalars(select(EmailInbound)).one()
        assert row.outcome == "replied", row.outcome
        reply = session.get(Message, row.reply_id)
        stored = {"text": reply.text, "language": reply.language,
                  "ticket": reply.ticket.public_id if reply.ticket is not None else None}
    return conversation, stored


TWO_THINGS = "When is my bin collected?\n\nWhy has nobody repaired the pothole on Mill Road?"


@pytest.mark.parametrize(("headers", "hint"), [("Content-Language: es-ES\r\n", "es"), ("", None),
                                               ("Content-Language: klingon\r\n", None)])
def test_the_mails_content_language_is_every_parts_hint(db_url: str, headers: str, hint: str | None) -> None:
    conversation, _reply = _run(db_url, _mail(TWO_THINGS, headers), None)
    assert [inbound.language_hint for inbound in conversation.seen] == [hint, hint]


@pytest.mark.parametrize("language", ["es", None])
def test_the_combined_reply_is_worded_in_the_turns_language(db_url: str, language: str | None) -> None:
    _conversation, reply = _run(db_url, _mail(TWO_THINGS), language)
    assert reply["text"].startswith(text("email.reply.thanks_with_answers", language)) and FAQ_ANSWER in reply["text"]
    assert reply["ticket"] is not None and reply["ticket"] in reply["text"]
    assert reply["language"] == language
    # What went to staff is said in it too (the template up to its first placeholder).
    assert template("email.reply.passed_with_ticket.other_question", language).split("{")[0] in reply["text"]
    if language is not None:
        assert text("email.reply.thanks_with_answers", language) != text("email.reply.thanks_with_answers")


def _handled(language: str | None) -> HandledMessage:
    return HandledMessage(message_id=1, replies=[], handling=None, intent=None, confidence=None, kb_entry_id=None,
                          ticket=None, duplicate=False, language=language)


def test_several_parts_reply_in_the_first_language_there_is() -> None:
    assert reply_language([_handled(None), _handled("es"), _handled("en")]) == "es"
    assert reply_language([_handled(None)]) is None


@pytest.mark.parametrize("language", ["es", None])
def test_the_subject_line_speaks_the_replys_language(language: str | None) -> None:
    sender = EmailSender(_settings("sqlite://"))
    sent: list[bytes] = []

    async def transmit(_envelope: str, _recipients: list[str], raw: bytes) -> None:
        sent.append(raw)

    sender._transmit = transmit  # the SMTP conversation itself is test_email_transport's
    message = OutboundMessage(message_id=41, channel="email", address=ANA, text="Respuesta.",
                              meta={"email": {"automatic": True, "subject": ""}}, ticket_public_id="K7M-39Q-XD2",
                              language=language)
    asyncio.run(sender.send(message))
    subject = email.message_from_bytes(sent[0], policy=email.policy.default)["Subject"]
    expected = text("email.subject_with_ticket", language, subject="Re: " + text("email.subject_default", language),
                    ticket_id="K7M-39Q-XD2")
    assert subject == expected
