"""Replies that thread, carry the ticket ID once, and say they are automatic."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from bot.channels.email.compose import (
    MAX_REFERENCES,
    compose_combined_reply,
    compose_reply,
    find_ticket_id,
    make_message_id,
    outbound_id_from_message_id,
    reply_subject,
    reply_threading,
    strip_reply_prefixes,
)
from bot.channels.email.parsing import parse_email
from bot.channels.email.safety import auto_reply_decision
from bot.tickets.ids import new_ticket_id

MAILS = Path(__file__).parent / "mails"
TICKET = "6AB-90F-42S"  # a valid ID (check symbol right)


def parsed(name: str):
    return parse_email((MAILS / f"{name}.eml").read_bytes())


def test_message_id_is_deterministic_and_recognisable():
    assert make_message_id(17, "City.Example") == "<crm-reply-17@city.example>"
    assert make_message_id(17, "city.example") == make_message_id(17, "city.example")
    assert outbound_id_from_message_id("<crm-reply-17@city.example>", "city.example") == 17
    assert outbound_id_from_message_id(" <crm-reply-17@CITY.example> ", "city.example") == 17
    assert outbound_id_from_message_id("<crm-reply-17@other.example>", "city.example") is None
    assert outbound_id_from_message_id("<CAH9xYz@mail.gmail.com>", "city.example") is None
    assert outbound_id_from_message_id(None, "city.example") is None


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Bulky waste collection", f"Re: Bulky waste collection [Ticket {TICKET}]"),
        ("Re: Bulky waste collection", f"Re: Bulky waste collection [Ticket {TICKET}]"),
        ("RE: AW: Re[2]: Bulky waste", f"Re: Bulky waste [Ticket {TICKET}]"),
        (f"Re: Bulky waste [Ticket {TICKET}]", f"Re: Bulky waste [Ticket {TICKET}]"),
        (f"Bulky waste {TICKET.lower()}", f"Re: Bulky waste {TICKET.lower()}"),  # already there, as typed
        ("", f"Re: Your message [Ticket {TICKET}]"),
        (None, f"Re: Your message [Ticket {TICKET}]"),
    ],
)
def test_reply_subject_with_ticket(original, expected):
    assert reply_subject(original, TICKET) == expected


def test_reply_subject_adds_the_ticket_once_over_a_whole_thread():
    subject = "Bins"
    for _ in range(3):
        subject = reply_subject(subject, TICKET)
    assert subject == f"Re: Bins [Ticket {TICKET}]"


def test_reply_subject_with_another_ticket_adds_the_new_one():
    other = new_ticket_id()
    assert reply_subject(f"Re: Bins [Ticket {TICKET}]", other) == f"Re: Bins [Ticket {TICKET}] [Ticket {other}]"


def test_reply_subject_without_ticket_and_length_cap():
    assert reply_subject("Opening hours", None) == "Re: Opening hours"
    long = reply_subject("x" * 1000, TICKET)
    assert len(long) < 250 and long.endswith(f"[Ticket {TICKET}]")


def test_reply_subject_cannot_inject_headers():
    subject = reply_subject("Hello\r\nBcc: victim@example.org\r\n", None)
    assert "\n" not in subject and "\r" not in subject


def test_find_ticket_id_in_subject_then_body():
    assert find_ticket_id(f"Re: Bins [Ticket {TICKET}]") == TICKET
    assert find_ticket_id("Re: Bins", f"my ticket is {TICKET.replace('-', ' ').lower()}") == TICKET
    assert find_ticket_id("Re: Bins", "no id here") is None
    assert find_ticket_id(None, None) is None
    mistyped = TICKET[:-1] + ("0" if TICKET[-1] != "0" else "1")
    assert find_ticket_id(f"Ticket {mistyped}") is None  # a wrong check symbol is no ticket


def test_reply_threading_from_a_parsed_reply():
    in_reply_to, references = reply_threading(parsed("gmail_reply"))
    assert in_reply_to == "<CAH9xYz+Qw3_abc=def@mail.gmail.com>"
    assert references == [
        "<CAF1234abcd@mail.gmail.com>",
        "<crm-reply-17@city.example>",
        "<CAH9xYz+Qw3_abc=def@mail.gmail.com>",
    ]


def test_reply_threading_ignores_a_synthetic_message_id():
    assert reply_threading(parsed("missing_message_id")) == (None, [])


def compose(**overrides):
    original = parsed("gmail_reply")
    in_reply_to, references = reply_threading(original)
    arguments = dict(
        from_address="info@city.example",
        from_name="City Hall",
        to_address=original.from_address,
        body="Dear Anna,\nthe sofa will be collected on Thursday – Straße 12.\n",
        message_id=make_message_id(99, "city.example"),
        original_subject=original.subject,
        in_reply_to=in_reply_to,
        references=references,
        ticket_id=TICKET,
        date=datetime(2024, 2, 6, 10, 0, tzinfo=timezone.utc),
    )
    arguments.update(overrides)
    return compose_reply(**arguments)


def test_composed_reply_headers():
    message = compose()
    assert message["From"] == "City Hall <info@city.example>"
    assert message["To"] == "anna.schmidt@gmail.com"
    assert message["Subject"] == f"Re: Bulky waste collection [Ticket {TICKET}]"
    assert message["Message-ID"] == "<crm-reply-99@city.example>"
    assert message["In-Reply-To"] == "<CAH9xYz+Qw3_abc=def@mail.gmail.com>"
    assert message["References"].split() == [
        "<CAF1234abcd@mail.gmail.com>",
        "<crm-reply-17@city.example>",
        "<CAH9xYz+Qw3_abc=def@mail.gmail.com>",
    ]
    assert message["Date"] == "Tue, 06 Feb 2024 10:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Precedence"] is None
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"


def test_composed_reply_round_trips_as_utf8_text():
    wire = compose().as_bytes()
    wire.decode("ascii")  # 7-bit on the wire: quoted-printable body, encoded headers
    again = message_from_bytes(wire, policy=policy.default)
    assert again.get_content() == "Dear Anna,\nthe sofa will be collected on Thursday – Straße 12.\n"


def test_our_own_reply_would_never_be_auto_answered():
    reply = parse_email(compose().as_bytes())
    assert auto_reply_decision(reply, {"info@city.example"}) == (False, "own_address")
    assert auto_reply_decision(reply, set()) == (False, "auto_submitted:auto-replied")


def test_agent_reply_is_not_marked_automatic():
    message = compose(automatic=False)
    assert message["Auto-Submitted"] is None
    assert message["X-Auto-Response-Suppress"] is None


def test_first_reply_without_thread():
    message = compose(in_reply_to=None, references=[], original_subject="Streetlight", ticket_id=None)
    assert message["In-Reply-To"] is None
    assert message["References"] is None
    assert message["Subject"] == "Re: Streetlight"


def test_long_reference_chains_are_trimmed_keeping_first_and_latest():
    references = [f"<r{n}@x.example>" for n in range(50)]
    message = compose(references=references, in_reply_to="<r49@x.example>")
    kept = message["References"].split()
    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<r0@x.example>" and kept[-1] == "<r49@x.example>"


def test_display_name_and_body_from_citizen_text_cannot_inject():
    message = compose(from_name="City\r\nBcc: x@y.example", body="line\r\nBcc: nothing\x00")
    wire = message.as_bytes()
    headers = wire.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in headers
    assert "\x00" not in message.get_content()


def test_invalid_address_is_a_caller_error():
    with pytest.raises(ValueError):
        compose(to_address="not an address")


def test_combined_reply_answers_and_escalates():
    text = compose_combined_reply(
        ["Bulky waste is collected on the first Monday of the month."],
        ["Also, the streetlight on Elm Street is broken. Who should I tell?"],
        TICKET,
        "24 hours",
    )
    assert text.startswith("Thank you for your message. Here is what we can answer straight away:")
    assert "Bulky waste is collected on the first Monday of the month." in text
    assert f"has been passed to our staff as ticket {TICKET}" in text
    assert "within 24 hours" in text
    assert '"Also, the streetlight on Elm Street is broken. Who should I tell?"' in text


def test_combined_reply_numbers_several_answers():
    text = compose_combined_reply(["Answer one.", "Answer two."], [], None, "24 hours")
    assert "1. Answer one." in text and "2. Answer two." in text
    assert "staff" not in text


def test_combined_reply_with_everything_escalated():
    text = compose_combined_reply([], ["Q1?", "Q2?"], TICKET, "4 hours")
    assert text == (
        f"Your message has been passed to our staff as ticket {TICKET}, and a member of staff will reply "
        "within 4 hours. Please keep the ticket number in the subject if you write again."
    )


def test_combined_reply_quotes_long_parts_shortened():
    text = compose_combined_reply(["A."], ["word " * 200], TICKET, "24 hours")
    quoted = [line for line in text.splitlines() if line.startswith("- ")][0]
    assert len(quoted) < 220 and quoted.endswith('…"')


def test_strip_reply_prefixes():
    assert strip_reply_prefixes("RE: AW: Re[2]: SV: Bins") == "Bins"
    assert strip_reply_prefixes("Regarding bins") == "Regarding bins"
    assert strip_reply_prefixes(None) == ""
