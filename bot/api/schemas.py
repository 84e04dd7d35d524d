"""Request and response bodies of the generic channel API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# A client's idempotency key is stored namespaced by the API key that sent it
# (bot.api.app.idempotency_key), in a column of 255 characters.
MAX_MESSAGE_ID_CHARS = 200
# "es", "pt-BR", "zh-Hant-TW": a language tag, not a text.
MAX_LANGUAGE_CHARS = 16


def unstorable(value: str) -> str | None:
    """Why PostgreSQL could not hold this string (SQLite would, silently); None if it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (unpaired surrogate escape)"
    return None


def printable(value: Any) -> Any:
    """An error detail that can be sent as UTF-8 JSON: a lone surrogate a client sent (in a field
    name, say) is shown as its escape instead of failing the response."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if unstorable(value) else value
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    return value


def _json_problem(value: Any) -> str | None:
    """First value in a JSON tree that no JSON column can hold: NaN/Infinity (not JSON at all,
    PostgreSQL refuses them) and unstorable strings, keys included. Iterative: the parser
    already bounds the depth, but a recursive walk should not be the next thing to overflow."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{path or 'value'}: numbers must be finite (no NaN or Infinity)"
        if isinstance(item, str) and (reason := unstorable(item)):
            return f"{path or 'value'}: a string {reason}"
        if isinstance(item, dict):
            for key, child in item.items():
                if reason := unstorable(key):
                    return f"{path or 'value'}: a key {reason}"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="Channel the citizen wrote on, e.g. `web` or `sms`.", examples=["web"])
    sender: str = Field(
        min_length=1,
        max_length=320,
        description="The citizen's address on that channel (web session id, phone number, ...).",
        examples=["web-session-4711"],
    )
    text: str = Field(description="The message exactly as the citizen wrote it.", examples=["When is the bin collected?"])
    message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MESSAGE_ID_CHARS,
        description="Your idempotency key for this message, unique per sender: the same key from the same "
        "sender (channel and sender) with the same API key and text is not processed again, and the first "
        "result is returned; with a different text it is refused with 409. Other senders' keys never collide.",
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Anything else the channel knows.")
    language: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LANGUAGE_CHARS,
        description="The language your channel says the citizen uses, as an ISO 639-1 code or a tag such as "
        "`es-ES` (a browser's language, an app's setting). Only a hint, for messages too short to tell their "
        "language; the replies' language is decided by the assistant. A tag that does not start with a "
        "two-letter code is ignored.",
        examples=["es-ES"],
    )

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str, info: ValidationInfo) -> str:
        channels = (info.context or {}).get("channels")
        if channels is not None and value not in channels:
            raise ValueError(f"unknown channel {value!r}; known channels: {', '.join(channels)}")
        return value

    @field_validator("text", "sender", "message_id", "language")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        if value is not None and (reason := unstorable(value)):
            raise ValueError(reason)
        return value

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (reason := _json_problem(value)):
            raise ValueError(reason)
        return value

    @field_validator("text", "sender")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value


class OptionOut(BaseModel):
    number: int = Field(description="What the citizen replies to pick it (0: none of these / talk to a person).")
    title: str = Field(description="The KB question as shown to the citizen.")
    kb_entry_id: str | None = Field(description="The KB entry it answers; null for \"none of these\".")


class ReplyOut(BaseModel):
    text: str
    options: list[OptionOut] | None = Field(
        default=None,
        description="Only on a \"Do you mean ...?\" reply: the choices, also listed numbered in `text`. "
        "Show them as buttons, or let the citizen reply with the number.",
    )


class TicketOut(BaseModel):
    id: str = Field(description="The ticket ID told to the citizen, e.g. `K7M-39Q-XD2`.")
    status: Literal["new", "open", "pending_citizen", "resolved", "closed"]
    department: str
    priority: Literal["low", "normal", "high", "urgent"]
    due_at: datetime
    created: bool = Field(description="True if this message opened the ticket, false if it joined an open one.")


class HandlingOut(BaseModel):
    kind: str | None = Field(
        description="kb_answer, asked (the assistant asked which question the citizen means; see "
        "`replies[].options`), escalated, ticket_joined, small_talk, status or error."
    )
    intent: str | None
    confidence: float | None
    kb_entry_id: str | None = Field(description="The knowledge-base entry that answered, if any.")
    ticket: TicketOut | None
    offered_kb_entries: list[str] = Field(
        default_factory=list,
        description="kind `asked`: the KB entries the citizen was asked to pick from, in the order offered.",
    )


class MessageOut(BaseModel):
    message_id: int
    duplicate: bool
    replies: list[ReplyOut]
    handling: HandlingOut
