"""Request and response bodies of the generic channel API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


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
        max_length=256,
        description="Your id for this message. A repeated id is not processed again; the first result is returned.",
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Anything else the channel knows.")

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str, info: ValidationInfo) -> str:
        channels = (info.context or {}).get("channels")
        if channels is not None and value not in channels:
            raise ValueError(f"unknown channel {value!r}; known channels: {', '.join(channels)}")
        return value

    @field_validator("text", "sender")
    @classmethod
    def _storable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (unpaired surrogate escape)") from None
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
