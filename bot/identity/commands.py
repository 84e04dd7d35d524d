"""The ``/link`` command, read the same way on every channel.

Kept apart from the flow so that the conversation can ask cheaply, before any
database work, whether a message might be for linking at all.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bot.texts.words import fold

# The command's word per language, as the first word of the message; Telegram's "/link@CityBot"
# in a group too. Slash words open a command whatever follows ("/link my facebook" gets the
# instructions); a bare word ("vincular") is ordinary language, so it counts only alone or
# followed by what linking reads (a code, a channel and an address, an e-mail address).
# Adding a language is adding its words here and to CHANNEL_WORDS.
LINK_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"slash": ("/link",), "bare": ()},
    "es": {"slash": ("/vincular", "/enlazar"), "bare": ("vincular", "enlazar")},
}
_FIRST = re.compile(r"\s*(?P<word>\S+?)(?:@\w+)?(?:\s+(?P<args>.*?))?\s*", re.DOTALL)
# Six digits, maybe typed as "123 456" or "123-456".
_CODE = re.compile(r"\s*(?P<a>\d{3})[ \-]?(?P<b>\d{3})\s*")

# Words for the channels in bot.identity.addresses.LINKABLE_CHANNELS, in every language.
CHANNEL_WORDS = {
    "email": "email", "e-mail": "email", "mail": "email", "correo": "email",
    "telegram": "telegram", "tg": "telegram",
    "whatsapp": "whatsapp", "wa": "whatsapp",
}


def channel_word(word: str) -> str | None:
    """The channel a typed word names ("Correo:" -> "email"), or None."""
    return CHANNEL_WORDS.get(fold(word).rstrip(":"))


@functools.cache
def _link_words(kind: str) -> frozenset[str]:
    return frozenset(fold(word) for words in LINK_WORDS.values() for word in words[kind])


@dataclass(frozen=True)
class RequestCode:
    """``/link email ana@example.org``: send a code to that address."""

    channel: str
    address: str


@dataclass(frozen=True)
class EnterCode:
    """``/link 123456``, or just the digits while a code is pending (``explicit`` False)."""

    code: str
    explicit: bool


@dataclass(frozen=True)
class LinkUsage:
    """``/link`` with nothing usable after it: the citizen needs the instructions."""

    channel: str | None = None


LinkCommand = RequestCode | EnterCode | LinkUsage


def _code(text: str) -> str | None:
    match = _CODE.fullmatch(text)
    return match["a"] + match["b"] if match else None


def parse_link_command(text: str) -> LinkCommand | None:
    """What a message asks of the linking flow; None when it is not about linking."""
    command = _FIRST.fullmatch(text)
    word = fold(command["word"]) if command is not None else ""
    slash, bare = word in _link_words("slash"), word in _link_words("bare")
    if not (slash or bare):
        code = _code(text)
        return EnterCode(code, explicit=False) if code is not None else None
    args = command["args"] or ""
    reading = _read_args(args)
    if not slash and args and isinstance(reading, LinkUsage) and reading.channel is None:
        # "vincular mi cuenta del padron" is a sentence for the assistant, not the command.
        return None
    return reading


def _read_args(args: str) -> LinkCommand:
    if not args:
        return LinkUsage()
    code = _code(args)
    if code is not None:
        return EnterCode(code, explicit=True)
    first, _, rest = args.partition(" ")
    channel = channel_word(first)
    if channel is not None:
        rest = rest.strip()
        return RequestCode(channel, rest) if rest else LinkUsage(channel)
    if "@" in args and not any(ch.isspace() for ch in args):
        return RequestCode("email", args)
    return LinkUsage()


def might_be_link_command(text: str) -> bool:
    """Cheap pre-check so that ordinary messages skip the linking flow's database work."""
    return parse_link_command(text) is not None

