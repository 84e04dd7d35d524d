"""Outgoing mail: the reply message itself, its threading, and the ticket ID in the subject.

Threading is what makes a citizen's mail client show our answer under their
question, and what lets us recognise their next reply: In-Reply-To and
References point at their mail, the subject carries the ticket ID once, and
our Message-ID is derived from the stored outbound row, so a reply re-sent
after a crash has the same ID (receiving servers and clients drop the
duplicate, and a reply to either copy leads back to the same row).

Automatic replies are marked as such (RFC 3834 ``Auto-Submitted:
auto-replied``) so that well-behaved responders never answer them, and carry
``X-Auto-Response-Suppress: All`` which Exchange and Outlook honour instead.
No ``Precedence`` header: it is not standardised, RFC 3834 gives it no role
in responses, and "bulk"/"junk" would get the answer filtered as bulk mail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from bot.texts import text as catalogue_text
from bot.tickets.ids import extract_ticket_ids

MAX_SUBJECT_CHARS = 200
# References kept on a reply: the thread's first message and the most recent ones (RFC 5322 3.6.4
# lets responders trim the middle; some servers reject very long headers).
MAX_REFERENCES = 20

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|antw|odp|r|ref|res|rif|atb|yn|vá|odg)\s*(\[\d+\])?\s*:\s*)+", re.I)
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
_OUR_ID = re.compile(r"<crm-reply-(\d+)@([^<>\s]+)>")


def _one_line(value: str) -> str:
    """Header values never carry line breaks: no header injection from citizen text."""
    return re.sub(r" {2,}", " ", _LINE_BREAKS.sub(" ", value)).strip()


def make_message_id(outbound_id: int, domain: str) -> str:
    """Our Message-ID for the outbound row ``outbound_id``: the same row always gets the same ID."""
    return f"<crm-reply-{int(outbound_id)}@{domain.strip().lower()}>"


def outbound_id_from_message_id(message_id: str | None, domain: str) -> int | None:
    """The outbound row id in one of our Message-IDs (from In-Reply-To/References), else None."""
    found = _OUR_ID.fullmatch((message_id or "").strip())
    if found is None or found.group(2).lower() != domain.strip().lower():
        return None
    return int(found.group(1))


def find_ticket_id(subject: str | None, body: str | None = None) -> str | None:
    """The first valid ticket ID in the subject, else in the body (canonical ``K7M-39Q-XD2``).

    Only a hint: the caller still checks that the ticket belongs to the sender.
    """
    for text in (subject, body):
        for found in extract_ticket_ids(text or ""):
            if found.valid:
                return found.canonical
    return None


def strip_reply_prefixes(subject: str | None) -> str:
    """The subject without "Re:", "AW:", "SV:"... prefixes (and on one line)."""
    return _REPLY_PREFIX.sub("", _one_line(subject or "")).strip()


def reply_subject(original_subject: str | None, ticket_id: str | None) -> str:
    """ "Re: <original> [Ticket <ID>]": one "Re:", the ticket ID only if not already there."""
    subject = strip_reply_prefixes(original_subject) or catalogue_text("email.subject_default")
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    subject = f"Re: {subject}"
    if ticket_id:
        present = {found.canonical for found in extract_ticket_ids(subject) if found.valid}
        if ticket_id not in present:
            subject = catalogue_text("email.subject_with_ticket", subject=subject, ticket_id=ticket_id)
    return subject


def reply_threading(parsed) -> tuple[str | None, list[str]]:  # noqa: ANN001 - a ParsedEmail
    """(In-Reply-To, References) for answering ``parsed``; nothing from a synthetic Message-ID."""
    references = list(parsed.references)
    if parsed.message_id_synthetic:
        return None, references
    if parsed.message_id not in references:
        references.append(parsed.message_id)
    return parsed.message_id, references


def _trim_references(references: Sequence[str]) -> list[str]:
    unique: list[str] = []
    for value in references:
        value = _one_line(value)
        if value and value not in unique:
            unique.append(value)
    if len(unique) > MAX_REFERENCES:
        unique = unique[:1] + unique[-(MAX_REFERENCES - 1) :]
    return unique


def _address(address: str, name: str | None = None) -> Address:
    address = _one_line(address)
    return Address(display_name=_one_line(name or ""), addr_spec=address)


def compose_reply(
    *,
    from_address: str,
    to_address: str,
    body: str,
    message_id: str,
    original_subject: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    ticket_id: str | None = None,
    from_name: str | None = None,
    automatic: bool = True,
    date: datetime | None = None,
) -> EmailMessage:
    """The reply as a UTF-8 text/plain message, ready for SMTP.

    ``automatic`` marks a reply written by the assistant; a reply written by a
    member of staff is a person's answer and goes out unmarked.
    """
    message = EmailMessage()
    message["From"] = _address(from_address, from_name)
    message["To"] = _address(to_address)
    message["Subject"] = reply_subject(original_subject, ticket_id)
    message["Date"] = format_datetime(date or datetime.now(timezone.utc))
    message["Message-ID"] = _one_line(message_id)
    if in_reply_to:
        message["In-Reply-To"] = _one_line(in_reply_to)
    trimmed = _trim_references([*references, *([in_reply_to] if in_reply_to else [])])
    if trimmed:
        message["References"] = " ".join(trimmed)
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.endswith("\n"):
        text += "\n"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    return message


def _quoted(part: str, limit: int = 200) -> str:
    text = " ".join(part.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f'"{text}"'


def compose_combined_reply(
    answers: Sequence[str], escalated_parts: Sequence[str], ticket_id: str | None, commitment: str
) -> str:
    """One reply to a mail that asked several things: the answers, then what went to staff.

    ``commitment`` is the ticket's own, as the core reports it (``TicketInfo.commitment``,
    "3 days"), so the promise matches the ticket's due time.
    """
    blocks: list[str] = []
    answers = [answer.strip() for answer in answers if answer and answer.strip()]
    escalated = [part.strip() for part in escalated_parts if part and part.strip()]
    if answers and escalated:
        blocks.append(catalogue_text("email.reply.thanks_with_answers"))
    elif answers:
        blocks.append(catalogue_text("email.reply.thanks"))
    if len(answers) == 1:
        blocks.append(answers[0])
    else:
        blocks.extend(f"{index}. {answer}" for index, answer in enumerate(answers, 1))
    if escalated:
        what = "message" if not answers else "rest" if len(escalated) > 1 else "other_question"
        listed = "\n".join(f"- {_quoted(part)}" for part in escalated)
        if ticket_id:
            tail = catalogue_text(f"email.reply.passed_with_ticket.{what}", ticket_id=ticket_id, commitment=commitment)
        else:
            tail = catalogue_text(f"email.reply.passed.{what}", commitment=commitment)
        blocks.append(f"{tail}\n{listed}" if answers else tail)
    return "\n\n".join(blocks)
