"""The ``/link`` command, read the same way on every channel.

Kept apart from the flow so that the conversation can ask cheaply, before any
database work, whether a message might be for linking at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "/link", "/LINK", Telegram's "/link@CityBot" in a group.
_COMMAND = re.compile(r"\s*/link(?:@\w+)?(?:\s+(?P<args>.*?))?\s*", re.IGNORECASE | re.DOTALL)
# Six digits, maybe typed as "123 456" or "123-456".
_CODE = re.compile(r"\s*(?P<a>\d{3})[ \-]?(?P<b>\d{3})\s*")

# Words for the channels in bot.identity.addresses.LINKABLE_CHANNELS.
CHANNEL_WORDS = {
    "email": "email", "e-mail": "email", "mail": "email",
    "telegram": "telegram", "tg": "telegram",
    "whatsapp": "whatsapp", "wa": "whatsapp",
}


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
    command = _COMMAND.fullmatch(text)
    if command is None:
        code = _code(text)
        return EnterCode(code, explicit=False) if code is not None else None
    args = command["args"] or ""
    if not args:
        return LinkUsage()
    code = _code(args)
    if code is not None:
        return EnterCode(code, explicit=True)
    first, _, rest = args.partition(" ")
    channel = CHANNEL_WORDS.get(first.lower().rstrip(":"))
    if channel is not None:
        rest = rest.strip()
        return RequestCode(channel, rest) if rest else LinkUsage(channel)
    if "@" in args and not any(ch.isspace() for ch in args):
        return RequestCode("email", args)
    return LinkUsage()


def might_be_link_command(text: str) -> bool:
    """Cheap pre-check so that ordinary messages skip the linking flow's database work."""
    return parse_link_command(text) is not None

