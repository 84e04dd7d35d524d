"""The e-mail auto-responder against real servers and the trained assistant."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.store.models import Message
from bot.tickets.models import Ticket
from bot.tickets.replies import reply_to_ticket
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail

pytestmark = pytest.mark.e2e

FAQ = "When is my bin collected?"
COMPLAINT = "The staff at the counter were rude to me, I want to complain"
TICKET = re.compile(r"\[Ticket ([^\]]+)\]")


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


def _ticket_reply(harness: EmailHarness, sender: str, mail) -> tuple[object, str]:
    replies = harness.replies_to(sender, mail["Message-ID"])
    assert len(replies) == 1, [r["Subject"] for r in harness.received_by(sender)]
    found = TICKET.findall(replies[0]["Subject"])
    assert found, (replies[0]["Subject"], _body(replies[0]))
    return replies[0], found[-1]


def _complaint_acknowledged(harness: EmailHarness, sender: str, subject: str) -> tuple[object, object, str]:
    """A complaint mailed by ``sender`` and handled: (the mail, our acknowledgement, the ticket ID)."""
    mail = make_mail(sender, harness.city, subject, COMPLAINT)
    harness.deliver(mail)
    harness.poll()
    reply, ticket_id = _ticket_reply(harness, sender, mail)
    return mail, reply, ticket_id


def test_complaint_gets_the_ticket_id_and_commitment(email_harness: EmailHarness) -> None:
    mail, reply, ticket_id = _complaint_acknowledged(email_harness, citizen(), "Complaint about the front desk")
    body = _body(reply)
    assert ticket_id in body and "24 hours" in body
    with email_harness.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == ticket_id)).one()
        assert ticket.status == "new"
    assert email_harness.inbound(mail["Message-ID"]).acknowledged_ticket_id is not None


def test_reply_to_our_reply_joins_the_ticket_only_for_its_citizen(email_harness: EmailHarness) -> None:
    carla, mallory = citizen(), citizen()
    first, reply, ticket_id = _complaint_acknowledged(email_harness, carla, "Rude staff")

    follow_up = make_mail(
        carla, email_harness.city, f"Re: {reply['Subject']}",
        "It happened on Monday at 3pm, at the second counter.\n\n> " + _body(reply).replace("\n", "\n> "),
        headers={"In-Reply-To": reply["Message-ID"], "References": f"{first['Message-ID']} {reply['Message-ID']}"},
    )
    # Someone else copying the subject (ticket ID included) must not get into Carla's ticket.
    intruder = make_mail(mallory, email_harness.city, f"Re: {reply['Subject']}", COMPLAINT)
    email_harness.deliver(follow_up)
    email_harness.deliver(intruder)
    email_harness.poll()

    with email_harness.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == ticket_id)).one()
        joined = session.scalars(select(Message).where(Message.external_id == follow_up["Message-ID"])).one()
        assert joined.ticket_id == ticket.id and joined.handling == "ticket_joined"
        assert joined.text.startswith("It happened on Monday")  # quoted reply stripped
        other = session.scalars(select(Message).where(Message.external_id == intruder["Message-ID"])).one()
        assert other.ticket_id != ticket.id
    # At most one automatic reply per ticket: the follow-up is filed, not acknowledged again.
    assert email_harness.replies_to(carla, follow_up["Message-ID"]) == []
    assert email_harness.inbound(follow_up["Message-ID"]).outcome == "no_reply:ticket_already_acknowledged"
    _reply, other_ticket = _ticket_reply(email_harness, mallory, intruder)
    assert other_ticket != ticket_id


def test_agent_reply_is_threaded_under_the_citizens_mail(email_harness: EmailHarness) -> None:
    dora = citizen()
    first, acknowledgement, ticket_id = _complaint_acknowledged(email_harness, dora, "Rude staff")

    with email_harness.sessions.begin() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == ticket_id)).one()
        reply = reply_to_ticket(session, ticket, "We have spoken to the team; sorry.", author="agent:alice")
        reply_id = reply.id
    assert email_harness.runner.run(email_harness.delivery.deliver(reply_id)) == "sent"

    mails = [m for m in email_harness.received_by(dora) if m["Message-ID"] != acknowledgement["Message-ID"]]
    assert len(mails) == 1
    staff = mails[0]
    # A person wrote it: no Auto-Submitted, and the citizen's client files it under their mail.
    assert staff["Auto-Submitted"] is None
    assert staff["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in staff["References"]
    assert staff["Subject"] == f"Re: Rude staff [Ticket {ticket_id}]"
    with email_harness.sessions() as session:
        stored = session.get(Message, reply_id)
        # What was chosen is kept, so a retry would send the very same headers.
        assert stored.meta["email"]["in_reply_to"] == first["Message-ID"]


@pytest.mark.parametrize(
    "kind, headers, envelope_sender, sender",
    [
        ("out_of_office", {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}, None, None),
        ("bounce", {}, "", "MAILER-DAEMON@example.test"),
        ("mailing_list", {"List-Id": "<residents.lists.example.test>", "Precedence": "list",
                          "List-Unsubscribe": "<mailto:leave@lists.example.test>"}, None, None),
    ],
)
def test_auto_replies_bounces_and_lists_get_no_reply(
    email_harness: EmailHarness, kind: str, headers: dict, envelope_sender: str | None, sender: str | None
) -> None:
    sender = sender or citizen()
    mail = make_mail(sender, email_harness.city, f"Automatic: {kind}", FAQ, headers=headers)
    email_harness.deliver(mail, envelope_sender=envelope_sender)
    email_harness.poll()

    assert email_harness.received_by(sender) == []
    row = email_harness.inbound(mail["Message-ID"])
    assert row is not None and row.status == "handled" and row.outcome.startswith("no_reply:"), row.outcome
    assert FAQ in row.body  # stored whole


def test_an_email_asking_several_things_answers_what_it_can_and_escalates_the_rest(
    email_harness: EmailHarness,
) -> None:
    dora = citizen()
    mail = make_mail(
        dora, email_harness.city, "Two things",
        f"Hello,\n\n{FAQ}\n\nWhy were the staff at the counter so rude to me yesterday? I want to complain."
        "\n\nThanks,\nDora\n",
    )
    email_harness.deliver(mail)
    email_harness.poll()

    reply, ticket_id = _ticket_reply(email_harness, dora, mail)
    body = _body(reply)
    with email_harness.sessions() as session:
        parts = session.scalars(
            select(Message).where(Message.external_id.like(mail["Message-ID"] + "#q%")).order_by(Message.id)
        ).all()
        assert [p.handling for p in parts] == ["kb_answer", "escalated"]
        answer = session.scalars(
            select(Message).where(Message.reply_to_id == parts[0].id, Message.author == "assistant")
        ).first()
    assert answer.text.strip()[:60] in body
    assert ticket_id in body and "24 hours" in body


def test_several_questions_that_cannot_be_separated_go_to_a_person(email_harness: EmailHarness) -> None:
    """"When ...? And is it ...?" leans on the first question: answering only the first would be a guess."""
    gus = citizen()
    mail = make_mail(
        gus, email_harness.city, "Bins",
        "Hello,\n\nWhen is the brown bin collected? Is it also collected on public holidays?\n\nGus\n",
    )
    email_harness.deliver(mail)
    email_harness.poll()

    reply, ticket_id = _ticket_reply(email_harness, gus, mail)
    with email_harness.sessions() as session:
        stored = session.scalars(select(Message).where(Message.external_id == mail["Message-ID"])).one()
        assert stored.handling == "escalated" and stored.kb_entry_id is None
    assert ticket_id in _body(reply)


def test_replies_per_sender_are_rate_limited(email_harness: EmailHarness) -> None:
    eve = citizen()
    limit = email_harness.settings.email_replies_per_sender_per_hour
    mails = [make_mail(eve, email_harness.city, f"Question {i}", FAQ) for i in range(limit + 2)]
    for mail in mails:
        email_harness.deliver(mail)
    email_harness.poll()

    assert len(email_harness.received_by(eve)) == limit
    outcomes = [email_harness.inbound(m["Message-ID"]).outcome for m in mails]
    assert outcomes.count("no_reply:rate_limited") == 2


def test_a_new_uidvalidity_rereads_the_mailbox_without_answering_twice(email_harness: EmailHarness) -> None:
    from bot.channels.email.models import EmailMailbox

    fred = citizen()
    mail = make_mail(fred, email_harness.city, "Bins", FAQ)
    email_harness.deliver(mail)
    email_harness.poll()
    assert len(email_harness.replies_to(fred, mail["Message-ID"])) == 1

    # As if the folder had been recreated: the stored UIDs mean nothing any more.
    with email_harness.sessions.begin() as session:
        for mailbox in session.scalars(select(EmailMailbox)):
            mailbox.uidvalidity = (mailbox.uidvalidity or 0) + 1
    email_harness.poll()

    assert len(email_harness.replies_to(fred, mail["Message-ID"])) == 1
    with email_harness.sessions() as session:
        mailbox = session.scalars(
            select(EmailMailbox).where(EmailMailbox.account.like(f"{email_harness.city}@%"))
        ).one()
        assert mailbox.last_uid > 0  # re-read to the end, every mail recognised by its Message-ID


def test_a_spanish_email_is_answered_in_spanish(email_harness: EmailHarness) -> None:
    """The reply, its subject line and the ticket speak the mail's language (read from its words)."""
    ana = citizen()
    mail = make_mail(ana, email_harness.city, "Basura", "Buenas tardes, ¿qué día pasan a recoger la basura en mi calle?")
    email_harness.send(mail)
    email_harness.poll()
    (reply,) = email_harness.replies_to(ana, mail["Message-ID"])
    with email_harness.sessions() as session:
        message = session.scalars(select(Message).where(Message.external_id == mail["Message-ID"])).one()
        assert (message.handling, message.kb_entry_id, message.language) == ("kb_answer", "waste-collection-days", "es")
    assert "Más información" in _body(reply)

    queja = make_mail(ana, email_harness.city, "Queja", "Quiero poner una queja: en la ventanilla me atendieron fatal")
    email_harness.send(queja)
    email_harness.poll()
    (ack,) = email_harness.replies_to(ana, queja["Message-ID"])
    assert "[Ref." in ack["Subject"], ack["Subject"]
    with email_harness.sessions() as session:
        ticket = session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
        assert ticket.language == "es" and ticket.public_id in ack["Subject"]
