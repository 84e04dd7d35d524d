"""The e-mail auto-responder against real servers and the trained assistant."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.store.models import Message, Ticket
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail

pytestmark = pytest.mark.e2e

FAQ = "When is my bin collected?"
COMPLAINT = "The staff at the counter were rude to me, I want to complain"
TICKET = re.compile(r"\[Ticket ([0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3})\]")


def _body(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def test_faq_email_is_answered_from_the_kb(email_harness: EmailHarness) -> None:
    anna = citizen()
    mail = make_mail(anna, email_harness.city, "Bins", FAQ)
    email_harness.send(mail)
    email_harness.poll()

    replies = email_harness.replies_to(anna, mail["Message-ID"])
    assert len(replies) == 1
    reply = replies[0]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Subject"] == "Re: Bins"
    assert mail["Message-ID"] in reply["References"]
    row = email_harness.inbound(mail["Message-ID"])
    assert row.status == "handled" and row.outcome == "replied"
    with email_harness.sessions() as session:
        message = session.scalars(select(Message).where(Message.external_id == mail["Message-ID"])).one()
        assert message.handling == "kb_answer", message.handling
        assert message.kb_entry_id == "waste-collection-days"
        out = session.get(Message, row.reply_id)
        assert out.delivery_status == "sent" and out.text.strip() in _body(reply)
    # The copy to our own address is filed in Sent, not left in the inbox as "mail".
    assert any(m["Message-ID"] == reply["Message-ID"] for m in email_harness.sent_folder())
