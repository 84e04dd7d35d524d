"""Hostile and huge mail: no crash, nothing lost, memory kept sane."""

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.email.parsing import MAX_TEXT_CHARS, parse_email

MAILS = Path(__file__).parent / "mails"


def _message(text: str = "See the attached scan.") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Big Sender <big@mail.example>"
    message["To"] = "info@city.example"
    message["Subject"] = "Scan of the letter"
    message["Message-ID"] = "<big-1@mail.example>"
    message.set_content(text)
    return message


@pytest.fixture(scope="module")
def big_attachment() -> tuple[bytes, int, str]:
    """A mail with a 25 MB attachment, generated (never committed)."""
    content = random.Random(25).randbytes(25 * 1024 * 1024)
    message = _message()
    message.add_attachment(content, maintype="application", subtype="pdf", filename="scan.pdf")
    return message.as_bytes(), len(content), hashlib.sha256(content).hexdigest()


def test_25_mb_attachment_is_hashed_not_kept(big_attachment):
    raw, size, digest = big_attachment
    parsed = parse_email(raw)
    assert parsed.text == "See the attached scan."
    assert parsed.message_id == "<big-1@mail.example>"
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == ("scan.pdf", "application/pdf", size)
    assert attachment.sha256 == digest
    assert parsed.problems == []
    assert parsed.size == len(raw)


def test_25_mb_attachment_memory_stays_small(big_attachment):
    raw, _, _ = big_attachment
    tracemalloc.start()
    try:
        parse_email(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The raw bytes are the caller's; parsing adds a fraction of them (the stdlib parser alone
    # would add about seven times the raw size).
    assert peak < len(raw) // 2, f"peak {peak / 2**20:.1f} MB for {len(raw) / 2**20:.1f} MB of mail"


def test_25_mb_attachment_with_crlf_line_endings(big_attachment):
    raw, size, digest = big_attachment
    parsed = parse_email(raw.replace(b"\n", b"\r\n"))
    [attachment] = parsed.attachments
    assert (attachment.size, attachment.sha256) == (size, digest)
    assert parsed.text == "See the attached scan."


def test_large_attachment_inside_a_forwarded_message():
    content = random.Random(3).randbytes(2 * 1024 * 1024)
    inner = _message("Inner text.")
    inner.add_attachment(content, maintype="image", subtype="jpeg", filename="photo.jpg")
    outer = _message("Forwarding this.")
    outer.add_attachment(inner)
    parsed = parse_email(outer.as_bytes())
    assert parsed.text == "Forwarding this."
    by_type = {attachment.content_type: attachment for attachment in parsed.attachments}
    assert by_type["image/jpeg"].sha256 == hashlib.sha256(content).hexdigest()
    assert by_type["image/jpeg"].in_attached_message
    assert by_type["message/rfc822"].size > len(content)


def test_large_base64_text_body_is_decoded():
    text = "The pothole on Mill Road is getting bigger.\n" * 20000  # ~900 kB of text
    message = _message()
    message.set_content(text, cte="base64")
    parsed = parse_email(message.as_bytes())
    assert parsed.text == text.rstrip("\n")


def test_one_megabyte_single_line_is_kept_whole():
    line = "Begin " + "x" * (1024 * 1024) + " end"
    raw = b"From: a@mail.example\nMessage-ID: <line@mail.example>\nSubject: long\n\n" + line.encode() + b"\n"
    parsed = parse_email(raw)
    assert parsed.text == line
    assert parsed.problems == []


def test_one_megabyte_line_of_base64_alphabet_in_a_text_part_is_kept():
    # Looks like base64 to the pre-parser (only letters), but it is the body of a 7bit text part.
    line = "a" * (1024 * 1024)
    raw = b"From: a@mail.example\nContent-Type: text/plain\n\n" + line.encode() + b"\nbye\n"
    parsed = parse_email(raw)
    assert parsed.text == line + "\nbye"


def test_text_beyond_the_cap_is_truncated_with_a_problem():
    raw = b"From: a@mail.example\n\n" + b"word " * (MAX_TEXT_CHARS // 4)
    parsed = parse_email(raw)
    assert len(parsed.text) == MAX_TEXT_CHARS
    assert "body_truncated" in parsed.problems


def test_text_that_imitates_the_internal_placeholder_is_just_text():
    content = random.Random(5).randbytes(400 * 1024)
    message = _message("CRMELIDED0X CRMELIDED-0- literally")
    message.add_attachment(content, maintype="application", subtype="octet-stream", filename="a.bin")
    parsed = parse_email(message.as_bytes())
    assert parsed.text == "CRMELIDED0X CRMELIDED-0- literally"
    assert parsed.attachments[0].sha256 == hashlib.sha256(content).hexdigest()


def test_many_parts_are_capped():
    parts = b"".join(b"--b\nContent-Type: text/plain\n\npart\n" for _ in range(300))
    raw = b'From: a@mail.example\nContent-Type: multipart/mixed; boundary="b"\n\n' + parts + b"--b--\n"
    parsed = parse_email(raw)
    assert "too_many_parts" in parsed.problems
    assert parsed.text.startswith("part")


def test_deeply_nested_multiparts_are_capped():
    depth = 60
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (level, level) for level in range(depth)
    )
    tail = b"".join(b"\n--b%d--\n" % level for level in reversed(range(depth)))
    parsed = parse_email(b"From: a@mail.example\n" + head + b"Content-Type: text/plain\n\ndeep\n" + tail)
    assert "too_many_parts" in parsed.problems


def test_many_headers_are_capped():
    raw = b"From: a@mail.example\n" + b"".join(b"X-H%d: v\n" % i for i in range(2000)) + b"\nhi\n"
    parsed = parse_email(raw)
    assert len(parsed.headers) == 500
    assert "too_many_headers" in parsed.problems
    assert parsed.text == "hi"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe\xfd",
        b"no headers at all, just text",
        b"From:\n\n",
        b"From: <>\n\n",
        b"From: =?utf-8?q?broken\n\n",
        b"Subject: =?x-unknown?b?!!!?=\n\nhi",
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: text/plain; charset=\"\xff\xfe\"\n\nhi",
        b"Content-Type: ;;;\nContent-Transfer-Encoding: base64\n\n====",
        b"Content-Type: message/rfc822\n\nnot a message",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        b"Content-Type: message/delivery-status\n\n\n\n--b--",
        b"Content-Disposition: attachment; filename*=utf-8''%ff%fe\nContent-Type: application/x\n\nxx",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\n\nhi",
        b"From: " + b"a" * 5000 + b"@x.example\n\nhi",
        b"\n\n\n\n",
        b"From: a@b.example\r\r\r\nSubject: \r\n\r\n\rbody\r",
    ],
)
def test_garbage_never_raises(data):
    parsed = parse_email(data)
    assert isinstance(parsed.text, str)
    assert parsed.message_id
    for value in [parsed.text, parsed.subject, parsed.from_address or "", *(v for _, v in parsed.headers)]:
        assert "\x00" not in value
        value.encode("utf-8")


_MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2**20), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("del"), st.integers(0, 2**20), st.integers(1, 50)),
    st.tuples(st.just("ins"), st.integers(0, 2**20), st.sampled_from([b"\n", b"--", b"=?", b"\x00", b":", b"<", b"=", b";"])),
), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(fixture=st.sampled_from(sorted(MAILS.glob("*.eml"))), mutations=_MUTATIONS)
def test_random_mutations_of_real_mail_never_raise(fixture, mutations):
    data = bytearray(fixture.read_bytes())
    for kind, position, change in mutations:
        position %= len(data) or 1
        if kind == "set":
            data[position:position + 1] = change
        elif kind == "del":
            del data[position : position + change]
        else:
            data[position:position] = change
    parsed = parse_email(data)  # a bytearray is accepted too
    assert not any(problem.startswith("parse_error") for problem in parsed.problems), parsed.problems
    parsed.text.encode("utf-8")


def test_base64_body_with_junk_between_chunks():
    content = b"hello world, this is a test of base64 junk handling" * 10
    encoded = base64.encodebytes(content).replace(b"\n", b"\n\x00!\n")
    raw = b"From: a@mail.example\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + encoded
    parsed = parse_email(raw)
    assert parsed.attachments[0].sha256 == hashlib.sha256(content).hexdigest()
    assert "base64_invalid_characters" in parsed.problems
