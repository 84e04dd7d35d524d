"""\"my data\" and \"erase my data\" by e-mail, against the real mail servers: the code comes back in
our reply (so only the owner of the mailbox, never a forger of From, can answer it), the citizen
mails it back, and the link (or the erasure) follows. Rasa is never asked."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.channels.email.models import EmailInbound
from bot.privacy.jobs import job
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail
from tests.privacy.helpers import find_in_database
from tools.standins.email import MailServers


class NoRasa:
    """The data-rights flow is answered before Rasa; being asked is a failure."""

    def send(self, **_kwargs):
        raise AssertionError("Rasa was asked")

    def close(self) -> None:
        pass


@pytest.fixture
def harness(mail_servers: MailServers, db_url: str) -> Iterator[EmailHarness]:
    harness = EmailHarness.with_rasa(mail_servers, database_url=db_url, rasa=NoRasa(),
                                     public_url="https://assist.city.example")
    yield harness
    harness.close()


def _ask(harness: EmailHarness, sender: str, subject: str, body: str) -> str:
    mail = make_mail(sender, harness.city, subject, body)
    harness.deliver(mail)
    harness.poll()
    (reply,) = harness.replies_to(sender, mail["Message-ID"])
    return reply.get_body(("plain",)).get_content()


def test_my_data_then_erase_by_email(harness: EmailHarness, db_url: str) -> None:
    anna = citizen()
    asked = _ask(harness, anna, "Data", "my data")
    code = re.search(r"\b(\d{6})\b", asked)[1]
    link = _ask(harness, anna, "Re: Data", f"{code}\n\n-- \nAnna")
    assert re.search(r"https://assist\.city\.example/privacy/download/\S+", link)

    asked = _ask(harness, anna, "Erase", "erase my data")
    assert "erases your data for good" in asked
    code = re.search(r"\b(\d{6})\b", asked)[1]
    done = _ask(harness, anna, "Re: Erase", code)
    assert "your data has been erased" in done
    job(harness.sessions, harness.settings)  # the confirmation went out: its address goes too
    with harness.sessions() as session:
        # (The mailbox is shared by the whole session, so other tests' mails may be in the table.)
        assert session.scalars(select(EmailInbound).where(EmailInbound.sender == anna)).first() is None
    assert find_in_database(db_url, (anna, anna.split("@")[0])) == []
