"""Parsing the mail citizens really send: the common clients, auto-replies, bounces, lists."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.channels.email.parsing import SYNTHETIC_ID_DOMAIN, parse_email

MAILS = Path(__file__).parent / "mails"


def raw(name: str) -> bytes:
    return (MAILS / f"{name}.eml").read_bytes()


def parse(name: str):
    return parse_email(raw(name))


@pytest.mark.parametrize("name", sorted(path.stem for path in MAILS.glob("*.eml")))
def test_every_fixture_parses_without_falling_back(name):
    parsed = parse(name)
    assert not any(problem.startswith(("parse_error", "unparseable_message")) for problem in parsed.problems)
    for value in [parsed.text, parsed.subject, *(v for _, v in parsed.headers)]:
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates: storable in PostgreSQL


def test_gmail_reply_prefers_the_plain_part_and_keeps_threading():
    parsed = parse("gmail_reply")
    assert parsed.message_id == "<CAH9xYz+Qw3_abc=def@mail.gmail.com>"
    assert not parsed.message_id_synthetic
    assert parsed.from_address == "anna.schmidt@gmail.com"  # normalised to lowercase
    assert parsed.from_name == "Anna Schmidt"
    assert parsed.to == ["info@city.example"]
    assert parsed.subject == "Re: Bulky waste collection [Ticket 6AB-90F-42S]"
    assert parsed.in_reply_to == "<crm-reply-17@city.example>"
    assert parsed.references == ["<CAF1234abcd@mail.gmail.com>", "<crm-reply-17@city.example>"]
    assert parsed.date == datetime(2024, 2, 6, 8, 13, 51, tzinfo=timezone.utc)
    assert parsed.text_source == "plain"
    assert parsed.charset == "utf-8"
    assert "Lindenstraße 12" in parsed.text
    assert parsed.content_type == "multipart/alternative"
    assert parsed.attachments == []
    assert parsed.problems == []


def test_outlook_reply_in_windows_1252():
    parsed = parse("outlook_reply")
    assert parsed.charset == "cp1252"
    assert "4 rue du Café" in parsed.text
    assert "resident zone – and" in parsed.text  # 0x96 is an en dash in cp1252
    assert parsed.from_address == "j.dupont@contoso-mail.example"
    assert parsed.first_header("Thread-Topic") == "Parking permit for my street"


def test_apple_mail_reply_with_cc():
    parsed = parse("apple_mail_reply")
    assert parsed.message_id == "<4F7C2E1A-9B3D-4E8F-A1C2-0D9E8F7A6B5C@icloud.example>"
    assert parsed.cc == ["giulia.rossi@icloud.example"]
    assert parsed.text.startswith("Great, and is the pool also open on public holidays?")


def test_rfc2047_subject_names_and_rfc2231_filenames():
    parsed = parse("rfc2047")
    assert parsed.subject == "Straßenbeleuchtung defekt in der Mühlgasse – bitte prüfen"
    assert parsed.from_name == "François Müller"
    assert parsed.from_address == "fm@mail.example"
    assert parsed.to == ["info@city.example", "other@city.example"]
    assert parsed.cc == ["helper@mail.example"]
    assert parsed.text == "Die Straßenlaterne in der Mühlgasse 3 ist defekt."
    assert parsed.charset == "iso8859-1"
    names = [attachment.filename for attachment in parsed.attachments]
    # Encoded names decoded; a path in a name is never kept (only metadata, but still).
    assert names == ["Laterne Mühlgasse.jpg", "Bescheid ü.pdf", "passwd"]


def test_attachments_are_metadata_with_size_and_hash():
    parsed = parse("rfc2047")
    jpeg = parsed.attachments[0]
    content = b"\xff\xd8\xff\xe0fakejpeg" * 50
    assert jpeg.content_type == "image/jpeg"
    assert jpeg.disposition == "attachment"
    assert jpeg.size == len(content)
    assert jpeg.sha256 == hashlib.sha256(content).hexdigest()
    assert jpeg.part == "2"
    assert not jpeg.in_attached_message


def test_forwarded_message_is_an_attachment_with_its_own_parts():
    parsed = parse("forwarded_as_attachment")
    assert parsed.text == "See the forwarded mail from my neighbour: can someone remove the tree?"
    kinds = [(a.content_type, a.filename, a.part, a.in_attached_message) for a in parsed.attachments]
    assert kinds == [
        ("message/rfc822", "Tree on the road.eml", "2", False),
        ("text/plain", None, "2.1.1", True),
        ("image/png", "tree.png", "2.1.2", True),
    ]
    png = parsed.attachments[2]
    assert png.sha256 == hashlib.sha256(b"\x89PNG\r\n\x1a\nfakepng").hexdigest()
    # The forwarded mail's text is not mixed into the citizen's body.
    assert "A tree fell" not in parsed.text


def test_html_only_mail_is_read_as_text_without_scripts():
    parsed = parse("html_only_script")
    assert parsed.text_source == "html"
    assert "The streetlight in front of Gartenweg 7 has been broken for two weeks & the street" in parsed.text
    for hostile in ("document.cookie", "alert", "evil.example", "stolen", "onload", "onerror", "<", "background"):
        assert hostile not in parsed.text
    assert "Streetlight" not in parsed.text  # the <title> is not body text


def test_newsletter_html_keeps_text_drops_style_and_tracking():
    parsed = parse("newsletter")
    assert parsed.subject == "Spring sale: 30% off all seeds 🌱"
    assert parsed.text == "Spring sale!\n\n30% off all seeds this week only.\n\nShop now"
    assert parsed.reply_to == ["no-reply@shop.example"]


def test_delivery_report_parts():
    parsed = parse("dsn_bounce")
    assert parsed.content_type == "multipart/report"
    assert parsed.from_address == "mailer-daemon@mx.city.example"
    assert "could not" in parsed.text
    assert [a.content_type for a in parsed.attachments] == ["message/delivery-status", "message/rfc822", "text/plain"]
    assert parsed.attachments[2].in_attached_message  # the returned mail's own text
    assert parsed.first_header("return-path") == "<>"


def test_missing_message_id_gets_a_stable_synthetic_id():
    data = raw("missing_message_id")
    parsed = parse_email(data)
    assert parsed.message_id_synthetic
    assert parsed.message_id == f"<sha256-{hashlib.sha256(data).hexdigest()}@{SYNTHETIC_ID_DOMAIN}>"
    assert parse_email(data).message_id == parsed.message_id  # the same mail fetched again
    assert parse_email(data + b"\n").message_id != parsed.message_id
    assert "missing_message_id" in parsed.problems
    assert parsed.date == datetime(2024, 2, 13, 22, 30, tzinfo=timezone.utc)  # "-0000": no zone, UTC
    assert parsed.text == "When is the central library open on Saturdays?"


def test_missing_and_unparseable_from():
    missing = parse("missing_from")
    assert missing.from_address is None and missing.from_name is None
    assert "missing_from" in missing.problems
    assert missing.text == "Who sent this? Nobody knows."
    broken = parse("unparseable_from")
    assert broken.from_address is None
    assert "unparseable_from" in broken.problems
    assert broken.text == "Text."


def test_undeclared_latin1_body_and_headers():
    parsed = parse("undeclared_latin1")
    assert parsed.subject == "Problème de ramassage des déchets"
    assert parsed.from_name == "François Lefèvre"
    assert "Les déchets de la rue de l'Église n'ont pas été ramassés" in parsed.text
    # Latin-1 text is read through cp1252 (its superset for printable characters).
    assert parsed.charset == "cp1252"
    assert "charset_undeclared:cp1252" in parsed.problems


def test_undeclared_cp1252_smart_quotes_and_euro():
    parsed = parse("undeclared_cp1252")
    assert parsed.text == "There’s a “huge” pothole on Mill Road – it costs €500 to fix my car!"


def test_declared_charset_that_lies_falls_back():
    parsed = parse("wrong_declared_charset")
    assert parsed.text == "La fuente de la plaza está rota desde el miércoles."
    assert "charset_fallback:cp1252" in parsed.problems


def test_unknown_charset_name_falls_back_to_utf8():
    parsed = parse("unknown_charset")
    assert parsed.text == "Café on the square is closed."
    assert parsed.charset == "utf-8"
    assert "charset_fallback:utf-8" in parsed.problems


def test_undecodable_bytes_in_an_undeclared_utf8_mail_never_crash():
    # 0x81 is undefined in cp1252 too: the last resort is latin-1, which reads every byte.
    parsed = parse_email(b"From: a@b.example\nSubject: x\n\nbad \x81 byte \xc3\xa9\n")
    assert parsed.charset == "iso8859-1"  # codecs name of latin-1
    assert parsed.text == "bad \x81 byte Ã©"


def test_us_ascii_declared_but_utf8_sent():
    parsed = parse_email(
        b"From: a@b.example\nContent-Type: text/plain; charset=us-ascii\n\nStra\xc3\x9fe gesperrt\n"
    )
    assert parsed.text == "Straße gesperrt"
    assert parsed.charset == "utf-8"


def test_html_charset_from_meta_tag():
    body = '<html><head><meta charset="windows-1252"></head><body><p>Caf\xe9 closed</p></body></html>'
    parsed = parse_email(b"From: a@b.example\nContent-Type: text/html\n\n" + body.encode("latin-1"))
    assert parsed.text == "Café closed"
    assert parsed.charset == "cp1252"


def test_nul_bytes_are_removed_everywhere():
    parsed = parse("nul_bytes")
    assert parsed.text == "The bench in the park is broken."
    assert parsed.subject == "nul in subject"
    assert "nul_bytes_removed" in parsed.problems


def test_stray_line_in_the_headers_does_not_lose_them():
    parsed = parse("malformed_mime")
    assert parsed.message_id == "<malformed-1@mail.example>"  # after the stray line
    assert parsed.text == "My recycling bin was not emptied on Tuesday."
    assert "broken_header_line_dropped" in parsed.problems
    assert "mime_defect:boundary_recovered" in parsed.problems


def test_multipart_without_boundary_is_read_as_text():
    parsed = parse("multipart_no_boundary")
    assert parsed.text == "The playground gate is broken."
    assert "mime_defect:unsplittable_multipart" in parsed.problems


def test_unterminated_multipart_and_truncated_base64():
    parsed = parse("unterminated_multipart")
    assert parsed.text == "The fountain is leaking."
    assert [a.filename for a in parsed.attachments] == ["report.pdf"]
    assert "mime_defect:CloseBoundaryNotFoundDefect" in parsed.problems
    assert "base64_truncated" in parsed.problems


def test_base64_and_quoted_printable_errors():
    parsed = parse("bad_encodings")
    assert parsed.text.startswith("The bridge railing is loose.")
    assert "Second part =ZZ broken =3 escape and a soft break at the end" in parsed.text
    assert "base64_invalid_characters" in parsed.problems
    attachment = parsed.attachments[0]
    assert attachment.filename == "data.bin"
    assert attachment.size == 9


def test_body_without_text_part():
    parsed = parse_email(
        b"From: a@b.example\nMessage-ID: <p@b.example>\nContent-Type: image/png\n"
        b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
    )
    assert parsed.text == ""
    assert parsed.text_source == "none"
    assert parsed.attachments[0].content_type == "image/png"
    assert parsed.attachments[0].size == 8


def test_several_inline_text_parts_are_joined():
    parsed = parse_email(
        b'From: a@b.example\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nFirst part.\n"
        b"--b\nContent-Type: image/jpeg\nContent-Disposition: inline\n\nxx\n"
        b"--b\nContent-Type: text/plain\n\nSecond part.\n--b--\n"
    )
    assert parsed.text == "First part.\n\nSecond part."
    assert len(parsed.attachments) == 1


def test_empty_plain_alternative_falls_back_to_html():
    parsed = parse_email(
        b'From: a@b.example\nContent-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\n   \n"
        b"--b\nContent-Type: text/html\n\n<p>Only here</p>\n--b--\n"
    )
    assert parsed.text == "Only here"
    assert parsed.text_source == "html"


def test_references_in_order_without_duplicates_and_bare_ids():
    parsed = parse_email(
        b"From: a@b.example\nReferences: <1@x> <2@x>\n <1@x> <3@x>\nIn-Reply-To: 3@x\n\nhi\n"
    )
    assert parsed.references == ["<1@x>", "<2@x>", "<3@x>"]
    assert parsed.in_reply_to == "<3@x>"


def test_overlong_message_id_is_replaced():
    long_id = b"<" + b"a" * 300 + b"@x.example>"
    parsed = parse_email(b"From: a@b.example\nMessage-ID: " + long_id + b"\n\nhi\n")
    assert parsed.message_id_synthetic
    assert "long_message_id" in parsed.problems
    assert len(parsed.message_id) <= 255


def test_bad_date_is_a_problem_not_a_crash():
    parsed = parse_email(b"From: a@b.example\nDate: yesterday-ish\n\nhi\n")
    assert parsed.date is None
    assert "bad_date" in parsed.problems


def test_timezone_of_date_is_kept():
    parsed = parse("gmail_vacation")
    assert parsed.date.utcoffset() == timedelta(hours=1)


def test_header_lookup_is_case_insensitive_and_keeps_repeats():
    parsed = parse_email(b"From: a@b.example\nReceived: one\nRECEIVED: two\n\nhi\n")
    assert parsed.header("Received") == ["one", "two"]
    assert parsed.first_header("received") == "one"
    assert parsed.first_header("x-missing") is None


def test_multiple_from_addresses_take_the_first():
    parsed = parse_email(b"From: A <a@b.example>, C <c@d.example>\n\nhi\n")
    assert parsed.from_address == "a@b.example"
    assert "multiple_from" in parsed.problems


def test_folded_headers_are_unfolded():
    parsed = parse_email(b"From: a@b.example\nSubject: Broken\r\n streetlight\n\tin Elm Street\n\nhi\n")
    assert parsed.subject == "Broken streetlight in Elm Street"


# --- the language the mail says it is in -----------------------------------------------------


def _mail(headers: str, body: str) -> bytes:
    return (f"From: ana@mail.example\r\nTo: info@city.example\r\nSubject: Hola\r\n"
            f"Message-ID: <lang-1@mail.example>\r\nMIME-Version: 1.0\r\n{headers}\r\n{body}").encode()


def test_the_messages_content_language_first_tag_is_the_hint():
    assert parse("outlook_reply").content_language == "en"  # "Content-Language: en-US"
    parsed = parse_email(_mail("Content-Type: text/plain; charset=utf-8\r\nContent-Language: es-ES, en\r\n",
                               "¿Cuándo pasa el camión de la basura?\r\n"))
    assert parsed.content_language == "es"


def test_else_the_text_parts_content_language_and_nothing_else():
    alternative = _mail(
        'Content-Type: multipart/alternative; boundary="b"\r\n',
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Language: pt-BR\r\n\r\nOlá\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Language: de\r\n\r\n<p>Olá</p>\r\n--b--\r\n",
    )
    assert parse_email(alternative).content_language == "pt"  # the part that was read
    # An attachment's language is not the mail's; a tag that is no ISO 639-1 code is no hint.
    attached = _mail(
        'Content-Type: multipart/mixed; boundary="b"\r\n',
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Language: fr\r\n"
        "Content-Disposition: attachment; filename=a.pdf\r\n\r\nJVBER\r\n--b--\r\n",
    )
    assert parse_email(attached).content_language is None
    assert parse_email(_mail("Content-Type: text/plain\r\nContent-Language: x-pig-latin\r\n", "hi\r\n")
                       ).content_language is None
    assert parse("gmail_reply").content_language is None
