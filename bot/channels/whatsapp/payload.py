"""Cloud API webhook payloads -> ``InboundMessage``s and delivery status updates.

Shape: ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {"metadata": {"phone_number_id"}, "contacts", "messages",
"statuses"}}]}]}``. Payloads are validated here by hand rather than with a schema:
Meta adds fields and message types over time, and one odd item must not cost the
other messages of the same delivery. What cannot be used is listed in
``problems`` so the caller can log it.

Media is never downloaded: only its id, type and checksum are kept, so an agent
can fetch it deliberately if it matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.core.inbound import InboundMessage, KbChoice

CHANNEL = "whatsapp"

# Cloud API media types -> the core's kinds (bot.core.conversation.ATTACHMENT_KINDS).
_MEDIA_KINDS = {"image": "photo", "video": "video", "document": "document", "sticker": "sticker", "audio": "audio"}
_MEDIA_FIELDS = ("id", "mime_type", "sha256", "caption", "filename", "animated", "voice")
_LOCATION_FIELDS = ("latitude", "longitude", "name", "address", "url")
# Stored but never answered: a reaction or "the user changed number" is not something to reply to.
_SILENT_TYPES = ("reaction", "system")

MAX_ADDRESS = 64
MAX_EXTERNAL_ID = 255


@dataclass(frozen=True)
class ParsedMessage:
    inbound: InboundMessage
    # False for reactions and system notices: stored with the citizen's history, not answered.
    answer: bool = True
    # A reply to a "Do you mean ...?" button or list row whose id is not a choice (tampered,
    # or from an older version of the bot): stored and answered by the channel, never read
    # as a new question (which would hand the open one over).
    malformed_choice: bool = False


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str
    timestamp: datetime | None
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WebhookEvents:
    messages: list[ParsedMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(value: Any) -> datetime | None:
    """Meta sends Unix seconds as a string."""
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _pick(source: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: source[name] for name in names if isinstance(source.get(name), (str, int, float, bool))}


def parse_webhook(payload: Any, *, phone_number_id: str) -> WebhookEvents:
    """Everything usable in one webhook delivery for our phone number."""
    events = WebhookEvents()
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        events.problems.append("not a WhatsApp Business Account webhook (object field)")
        return events
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            if change.get("field") != "messages":
                # Template reviews, account updates...: nothing for the citizen conversation.
                continue
            value = _dict(change.get("value"))
            number = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if number != phone_number_id:
                events.problems.append(f"change for another phone number id {number!r}: ignored")
                continue
            names = {
                _str(contact.get("wa_id")): _str(_dict(contact.get("profile")).get("name"))
                for contact in map(_dict, _list(value.get("contacts")))
            }
            for raw in _list(value.get("messages")):
                parsed = parse_message(_dict(raw), names, events.problems)
                if parsed is not None:
                    events.messages.append(parsed)
            for raw in _list(value.get("statuses")):
                status = parse_status(_dict(raw), events.problems)
                if status is not None:
                    events.statuses.append(status)
            for error in _list(value.get("errors")):
                events.problems.append(f"webhook error from Meta: {_describe_error(_dict(error))}")
    return events


def parse_message(raw: dict[str, Any], names: dict[str, str], problems: list[str]) -> ParsedMessage | None:
    sender, wamid, kind_of = _str(raw.get("from")), _str(raw.get("id")), _str(raw.get("type"))
    if not sender or len(sender) > MAX_ADDRESS or not wamid or len(wamid) > MAX_EXTERNAL_ID:
        problems.append("message without a usable sender or id: skipped")
        return None
    details: dict[str, Any] = {"type": kind_of or "unknown"}
    if names.get(sender):
        details["profile_name"] = names[sender]
    sent_at = _timestamp(raw.get("timestamp"))
    if sent_at is not None:
        details["timestamp"] = sent_at.isoformat()
    context = _dict(raw.get("context"))
    if _str(context.get("id")):
        details["in_reply_to"] = context["id"]

    text, kind, attachment, extra = _content(kind_of, raw)
    metadata: dict[str, Any] = {"whatsapp": details, **extra}
    if kind != "text":
        metadata["attachment"] = attachment
    choice, malformed = _choice(extra.get("interactive"))
    inbound = InboundMessage(
        channel=CHANNEL, sender=sender, text=text, external_id=wamid, metadata=metadata, kind=kind, choice=choice
    )
    return ParsedMessage(inbound, answer=kind_of not in _SILENT_TYPES, malformed_choice=malformed)


def _choice(interactive: Any) -> tuple[KbChoice | None, bool]:
    """(the pick, whether the reply was meant as one but is not well formed)."""
    if not isinstance(interactive, dict) or interactive.get("type") not in ("button_reply", "list_reply"):
        return None, False
    reply_id = _str(interactive.get("id"))
    choice = KbChoice.decode(reply_id)
    return choice, choice is None and reply_id.startswith(f"{KbChoice.PREFIX}:")


def _content(kind_of: str, raw: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(text, kind, attachment, extra metadata) of one message."""
    body = _dict(raw.get(kind_of)) if kind_of else {}
    if kind_of == "text":
        text = _str(body.get("body"))
        if text.strip():
            return text, "text", {}, {}
        return "", "other", {"type": "text", "note": "empty text"}, {}
    if kind_of in _MEDIA_KINDS:
        kind = "voice" if kind_of == "audio" and body.get("voice") is True else _MEDIA_KINDS[kind_of]
        attachment = {"type": kind_of, **_pick(body, _MEDIA_FIELDS)}
        if "id" in attachment:
            attachment["media_id"] = attachment.pop("id")
        return _str(body.get("caption")), kind, attachment, {}
    if kind_of == "location":
        return "", "location", {"type": "location", **_pick(body, _LOCATION_FIELDS)}, {}
    if kind_of == "contacts":
        contacts = [_contact(_dict(c)) for c in _list(raw.get("contacts"))]
        return "", "contact", {"type": "contacts", "contacts": contacts}, {}
    if kind_of == "interactive":
        reply_type = _str(body.get("type"))
        reply = _dict(body.get(reply_type))
        if reply_type in ("button_reply", "list_reply") and _str(reply.get("title")).strip():
            chosen = {"type": reply_type, **_pick(reply, ("id", "title", "description"))}
            return reply["title"], "text", {}, {"interactive": chosen}
        if reply_type == "nfm_reply" and _str(reply.get("body")).strip():
            return reply["body"], "text", {}, {"interactive": {"type": reply_type, **_pick(reply, ("name",))}}
        return "", "other", {"type": "interactive", "reply_type": reply_type}, {}
    if kind_of == "button":
        # A quick-reply button under one of our templates.
        if _str(body.get("text")).strip():
            return body["text"], "text", {}, {"button": _pick(body, ("text", "payload"))}
        return "", "other", {"type": "button"}, {}
    if kind_of == "reaction":
        return _str(body.get("emoji")), "reaction", {"type": "reaction", **_pick(body, ("message_id", "emoji"))}, {}
    if kind_of == "system":
        return _str(body.get("body")), "system", {"type": "system", **_pick(body, ("type", "wa_id", "new_wa_id"))}, {}
    # "unsupported", "order", and types Meta adds later: kept, and the citizen is asked for text.
    errors = [_describe_error(_dict(e)) for e in _list(raw.get("errors"))]
    return "", "other", {"type": kind_of or "unknown", **({"errors": errors} if errors else {})}, {}


def _contact(raw: dict[str, Any]) -> dict[str, Any]:
    """A shared contact card, reduced to what an agent could use."""
    return {
        "name": _str(_dict(raw.get("name")).get("formatted_name")),
        "phones": [_str(_dict(p).get("phone")) for p in _list(raw.get("phones")) if _str(_dict(p).get("phone"))],
        "emails": [_str(_dict(e).get("email")) for e in _list(raw.get("emails")) if _str(_dict(e).get("email"))],
    }


def parse_status(raw: dict[str, Any], problems: list[str]) -> StatusUpdate | None:
    wamid, status = _str(raw.get("id")), _str(raw.get("status"))
    if not wamid or not status or len(wamid) > MAX_EXTERNAL_ID:
        problems.append("status without a message id or status: skipped")
        return None
    errors = [_error_fields(_dict(e)) for e in _list(raw.get("errors"))]
    return StatusUpdate(wamid=wamid, status=status[:32], timestamp=_timestamp(raw.get("timestamp")), errors=errors)


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    fields = _pick(error, ("code", "title", "message"))
    details = _str(_dict(error.get("error_data")).get("details"))
    if details:
        fields["details"] = details
    return fields


def _describe_error(error: dict[str, Any]) -> str:
    return _describe(_error_fields(error))


def _describe(fields: dict[str, Any]) -> str:
    parts = [str(fields["code"])] if "code" in fields else []
    parts += [str(fields[name]) for name in ("title", "message", "details") if name in fields]
    # Meta repeats itself (title == message); say each thing once.
    return ": ".join(dict.fromkeys(parts)) or "unknown error"


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """A status update's errors (as kept in ``StatusUpdate.errors``) in one line for an agent."""
    return "; ".join(_describe(e) for e in errors) or "no details given"
