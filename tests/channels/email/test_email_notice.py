"""The privacy notice in the one combined e-mail reply: at its end, once per address.

Real mail servers, the stand-in for Rasa and the action server of test_email_commitment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.privacy.notice import notice_text
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail
from tests.channels.email.test_email_commitment import FAQ_ANSWER, ActionServerStandIn
from tools.standins.email import MailServers


@pytest.fixture
def harness(mail_servers: MailServers, db_url: str) -> Iterator[EmailHarness]:
    harness = EmailHarness.with_rasa(mail_servers, database_url=db_url, rasa=ActionServerStandIn(db_url),
                                     privacy_notice_channels="email")
    yield harness
    harness.close()


def _reply_body(harness: EmailHarness, sender: str, mail) -> str:
    (reply,) = harness.replies_to(sender, mail["Message-ID"])
    return reply.get_body(("plain",)).get_content()


def test_a_new_addresss_first_reply_ends_with_the_notice_and_the_next_has_none(harness: EmailHarness) -> None:
    notice = notice_text(harness.settings)
    anna = citizen()
    first = make_mail(anna, harness.city, "Two things",
                      "When is my bin collected?\n\nWhy has nobody repaired the pothole on Mill Road?\n")
    harness.deliver(first)
    harness.poll()
    body = _reply_body(harness, anna, first)
    assert FAQ_ANSWER in body and "ticket" in body
    assert body.count("Privacy notice") == 1 and body.rstrip().endswith(notice.rstrip())
    assert body.index(FAQ_ANSWER) < body.index("Privacy notice")

    second = make_mail(anna, harness.city, "Bins again", "When is my bin collected?")
    harness.deliver(second)
    harness.poll()
    assert "Privacy notice" not in _reply_body(harness, anna, second)

    again = make_mail(anna, harness.city, "privacy", "privacy")
    harness.deliver(again)
    harness.poll()
    assert _reply_body(harness, anna, again).strip() == notice.strip()
