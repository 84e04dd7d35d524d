"""The one inbound-message type every channel adapter produces.

The core never sees a Telegram update, a WhatsApp webhook or a raw email; an
adapter turns its payload into this and hands it to
``bot.core.conversation.handle_inbound``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PRIMARY_SUBTAG = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True)
class KbChoice:
    """A tap on a "Do you mean ...?" button: which offer (its token) and which option.

    ``option`` counts from 1 in the order shown; 0 is "None of these / talk to a person".
    Channels with native buttons encode it as ``kb:<offer>:<option>`` (``encode``/``decode``);
    the core checks it against the stored offer, so a stale or tampered one is harmless."""

    offer: str
    option: int

    PREFIX = "kb"

    def encode(self) -> str:
        return f"{self.PREFIX}:{self.offer}:{self.option}"

    @classmethod
    def decode(cls, data: str | None) -> "KbChoice | None":
        """None for anything that is not a well-formed choice (callers answer it as stale)."""
        parts = (data or "").split(":")
        if len(parts) != 3 or parts[0] != cls.PREFIX or not parts[1].isalnum() or len(parts[1]) > 16:
            return None
        if not parts[2].isdigit() or len(parts[2]) > 2:
            return None
        return cls(offer=parts[1], option=int(parts[2]))


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    # The citizen's address on that channel: chat id, phone number, email address, web session.
    sender: str
    # Exactly as received; stored unchanged.
    text: str
    # The channel's own id for the message (Telegram update id, email Message-ID, a client's
    # idempotency key). The same id is never processed twice.
    external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # "text", or what else the citizen sent: photo, document, voice, video, audio, sticker,
    # location, contact, other. Non-text messages carry their details (file ids, coordinates,
    # sizes; never the file itself) in ``metadata["attachment"]`` and any caption in ``text``.
    kind: str = "text"
    # The channel already knows a person must answer (a ticket reason, e.g. "low_confidence"
    # for an e-mail asking several things it could not separate): stored and escalated, not
    # classified, so no single guessed answer goes out.
    needs_person: str | None = None
    # What the assistant reads instead of ``text`` when a channel's own syntax means
    # something the assistant knows in other words (Telegram's "/status K7M-39Q-XD2",
    # "@citybot" in a group). ``text`` is still what is stored: exactly what was typed.
    text_for_assistant: str | None = None
    # The channel's id (``external_id``) of the message this one corrects (an edited
    # Telegram message). The correction is stored and kept with the original; the
    # original was answered already, so it is not answered again.
    edit_of: str | None = None
    # A native "Do you mean ...?" button was tapped (Telegram callback query, WhatsApp
    # interactive reply, web chat button). ``text`` is what the citizen saw on the button.
    choice: KbChoice | None = None
    # A ticket's public ID the channel read off the message's threading (an e-mail whose
    # subject or quoted reply carries "[Ticket K7M-39Q-XD2]"): the citizen is writing in
    # that ticket's thread. Only a hint, since anyone can copy a subject: the core joins
    # the ticket only if it is the sender's and still open, and otherwise handles the
    # message like any other.
    thread_ticket: str | None = None
    # The language the channel says the citizen uses (Telegram's ``language_code``, an e-mail's
    # Content-Language, the web chat's browser language), as ``language_tag`` reads it: a
    # lower-case ISO 639-1 code or None. A hint that weighs in when the message itself is too
    # short to tell (bot.nlu.language).
    language_hint: str | None = None

    @property
    def assistant_text(self) -> str:
        return self.text if self.text_for_assistant is None else self.text_for_assistant


def language_tag(value: object) -> str | None:
    """The ISO 639-1 code a channel's language tag starts with: ``"es-ES"`` -> ``"es"``,
    ``"pt_BR"`` -> ``"pt"``; of a list (Accept-Language, Content-Language) its first tag.

    Every channel reads its language field through this one function, so the core gets the
    same form whatever the payload said. The value is the sender's to choose, so anything
    that is not two ASCII letters (``"*"``, ``"fil"``, ``"x-klingon"``, a number) is None,
    not a guess."""
    if not isinstance(value, str):
        return None
    first = value.split(",", 1)[0].split(";", 1)[0].strip()
    primary = re.split(r"[-_]", first, maxsplit=1)[0]
    return primary.lower() if _PRIMARY_SUBTAG.fullmatch(primary) else None
