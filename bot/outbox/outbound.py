"""What a channel adapter implements to deliver messages to citizens.

Outbound messages (assistant replies that could not be returned in an HTTP
response, agent replies, notifications) are rows in the interaction store with
a delivery status; ``bot.outbox.delivery`` hands them to the channel's
``ChannelSender`` and records the outcome. A sender only talks to its
provider: it never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int
    channel: str
    # The citizen's address on the channel (chat id, phone number, e-mail address).
    address: str
    text: str
    # The stored message's meta: threading headers, ticket id, template parameters...
    meta: dict[str, Any] = field(default_factory=dict)
    ticket_public_id: str | None = None
    # Which attempt this is, starting at 1.
    attempt: int = 1
    # The language ``text`` is worded in (``Message.language``; None: the default): what a sender
    # words its own parts in (button titles, a subject line), so they match the text.
    language: str | None = None


@dataclass(frozen=True)
class SendResult:
    # The provider's id for the sent message (Telegram message id, WhatsApp wamid, Message-ID).
    external_id: str | None = None
    # Anything worth keeping about how it went out (e.g. "sent as template").
    meta: dict[str, Any] = field(default_factory=dict)
    # The provider's ids of the later parts, when it took the message in several (a long
    # WhatsApp reply); receipts come per part.
    part_ids: list[str] = field(default_factory=list)


class DeliveryError(Exception):
    """The provider did not take the message.

    ``retryable`` is False when trying again cannot help (blocked by the user,
    invalid address): the message is marked failed at once so an agent sees it.
    ``retry_after`` is the provider's own hint (HTTP 429 Retry-After), in seconds.
    """

    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class ChannelSender(Protocol):
    channel: str

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message or raise DeliveryError. Must time out on its own."""
        ...
