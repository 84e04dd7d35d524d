"""No automatic reply to machines, lists, bulk mail, ourselves, or nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.email.parsing import parse_email
from bot.channels.email.safety import Decision, auto_reply_decision

MAILS = Path(__file__).parent / "mails"
OWN = {"info@city.example"}


def decide(name: str) -> Decision:
    return auto_reply_decision(parse_email((MAILS / f"{name}.eml").read_bytes()), OWN)


def decide_headers(headers: str, body: str = "Hello, when is the bin collected?") -> Decision:
    raw = f"From: Anna <anna@mail.example>\nTo: info@city.example\nMessage-ID: <x@mail.example>\n{headers}"
    return auto_reply_decision(parse_email(f"{raw}\n\n{body}\n".encode()), OWN)


@pytest.mark.parametrize(
    "name",
    ["gmail_reply", "outlook_reply", "apple_mail_reply", "html_only_script", "undeclared_latin1", "rfc2047"],
)
def test_citizens_get_replies(name):
    assert decide(name) == (True, "ok")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("exchange_out_of_office", "auto_submitted:auto-generated"),
        ("gmail_vacation", "auto_submitted:auto-replied"),
        ("dsn_bounce", "auto_submitted:auto-replied"),
        ("mailing_list", "precedence:list"),
        ("newsletter", "precedence:bulk"),
        ("mailing_list_digest_owner", "list_sender"),
        ("read_receipt", "delivery_report"),
        ("missing_from", "missing_from"),
        ("unparseable_from", "unparseable_from"),
    ],
)
def test_machines_lists_and_nobodies_get_none(name, reason):
    allowed, why = decide(name)
    assert not allowed
    assert why == reason


def test_decision_unpacks_as_a_pair():
    allowed, reason = decide("gmail_reply")
    assert allowed is True and reason == "ok"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto_submitted:auto-replied"),
        ("Auto-Submitted: auto-generated", "auto_submitted:auto-generated"),
        ("Auto-Submitted: auto-notified", "auto_submitted:auto-notified"),
        ("Auto-Submitted: Auto-Replied (vacation)", "auto_submitted:auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y.example", "auto_submitted:auto-generated"),
        ("Auto-Submitted: something-new", "auto_submitted:something-new"),
        ("Auto-Submitted:", "auto_submitted:empty"),
        ("Precedence: bulk", "precedence:bulk"),
        ("Precedence: JUNK", "precedence:junk"),
        ("Precedence: list", "precedence:list"),
        ("Precedence: auto_reply", "precedence:auto_reply"),
        ("List-Id: <residents.lists.example>", "list_header:list-id"),
        ("List-Unsubscribe: <mailto:u@lists.example>", "list_header:list-unsubscribe"),
        ("List-Post: NO", "list_header:list-post"),
        ("Mailing-List: contact residents-help@lists.example", "list_header:mailing-list"),
        ("Return-Path: <>", "null_return_path"),
        ("Return-Path:", "null_return_path"),
        ("Return-Path: <MAILER-DAEMON@mx.example>", "bounce_sender:mailer-daemon"),
        ("Return-Path: <bounces+123-abc=city.example@em.shop.example>", "bounce_sender:bounces"),
        ("X-Auto-Response-Suppress: All", "auto_response_suppress:all"),
        ("X-Auto-Response-Suppress: DR, OOF, AutoReply", "auto_response_suppress:autoreply"),
        ("X-Auto-Response-Suppress: OOF", "auto_response_suppress:oof"),
        ("X-Autoreply: yes", "x_autoreply"),
        ("X-Autorespond: vacation", "x_autoreply"),
        ("X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent", "exchange_generated"),
        ("X-Spam-Flag: YES", "spam_flag"),
        ("Content-Type: multipart/report; report-type=delivery-status; boundary=b", "delivery_report"),
        ("X-Loop: info@city.example", "x_loop"),
        ("Reply-To: info@city.example", "own_address"),
        ("Subject: Automatic reply: Bins", "auto_reply_subject"),
        ("Subject: Out of Office: back on Monday", "auto_reply_subject"),
        ("Subject: Abwesenheitsnotiz: Sperrmüll", "auto_reply_subject"),
        ("Subject: Undeliverable: Re: Bins", "bounce_subject"),
        ("Subject: Delivery Status Notification (Failure)", "bounce_subject"),
    ],
)
def test_each_rule(headers, reason):
    assert decide_headers(headers) == (False, reason)


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no",
        "Auto-Submitted: No (a person wrote this)",
        "Precedence: first-class",
        "Return-Path: <anna@mail.example>",
        "X-Auto-Response-Suppress: DR, RN, NRN",  # receipts only: a reply is still welcome
        "X-Spam-Flag: NO",
        "Subject: Out of office hours, who do I call about a burst pipe?",
        "Subject: Re: Bins [Ticket 6AB-90F-42S]",
        "X-Mailer: Microsoft Outlook 16.0",
    ],
)
def test_ordinary_headers_allow_a_reply(headers):
    assert decide_headers(headers) == (True, "ok")


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("MAILER-DAEMON@mx.example", "bounce_sender:mailer-daemon"),
        ("postmaster@mx.example", "bounce_sender:postmaster"),
        ("noreply@shop.example", "noreply_sender"),
        ("no-reply@accounts.example", "noreply_sender"),
        ("no_reply@bank.example", "noreply_sender"),
        ("donotreply@utility.example", "noreply_sender"),
        ("do-not-reply@utility.example", "noreply_sender"),
        ("noreply+notifications@forum.example", "noreply_sender"),
        ("residents-request@lists.example", "list_sender"),
        ("owner-residents@lists.example", "list_sender"),
        ("bounces@shop.example", "bounce_sender:bounces"),
        ("info@city.example", "own_address"),
        ("INFO@City.Example", "own_address"),
    ],
)
def test_senders_that_never_get_a_reply(sender, reason):
    raw = f"From: {sender}\nMessage-ID: <y@x.example>\n\nhello\n".encode()
    assert auto_reply_decision(parse_email(raw), OWN) == (False, reason)


@pytest.mark.parametrize("sender", ["norah@mail.example", "replyhazy@mail.example", "noel.bounce@mail.example"])
def test_names_that_merely_resemble_robots_are_people(sender):
    raw = f"From: {sender}\nMessage-ID: <y@x.example>\n\nhello\n".encode()
    assert auto_reply_decision(parse_email(raw), OWN) == (True, "ok")


def test_own_addresses_are_compared_normalised():
    raw = b"From: Info <info@city.example>\n\nhello\n"
    assert auto_reply_decision(parse_email(raw), [" INFO@CITY.EXAMPLE "]) == (False, "own_address")
    assert auto_reply_decision(parse_email(raw), []) == (True, "ok")


def test_delivery_status_part_inside_mixed_is_a_report():
    raw = (
        b'From: relay@mx.example\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
        b"failed\n--b\nContent-Type: message/delivery-status\n\nAction: failed\n--b--\n"
    )
    assert auto_reply_decision(parse_email(raw), OWN) == (False, "delivery_report")
