""""my data" and "erase my data", read the same way on every channel.

Small and exact on purpose: a question that merely mentions data ("how do you use my
data?") is for the assistant. Kept apart from the flow so the conversation can ask
cheaply, before any database work, whether a message might be one of these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.identity.commands import CHANNEL_WORDS
from bot.privacy.models import ERASE, EXPORT

_PHRASES = {
    "my data": EXPORT, "send me my data": EXPORT, "/mydata": EXPORT,
    "erase my data": ERASE, "delete my data": ERASE, "/erase": ERASE,
}
# The phrase, Telegram's "/mydata@CityBot", then optionally where to send the code.
_COMMAND = re.compile(
    r"\s*(?P<phrase>(?:send me |erase |delete )?my data|/mydata|/erase)(?:@\w+)?[.!]?(?:\s+(?P<args>\S.*?))?\s*",
    re.IGNORECASE | re.DOTALL,
)
_CODE = re.compile(r"\s*(?P<a>\d{3})[ \-]?(?P<b>\d{3})\s*")


@dataclass(frozen=True)
class RightsRequest:
    """Asked for an export or an erasure; ``channel``/``address``: where the citizen wants the code."""

    kind: str
    channel: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class RightsCode:
    code: str


@dataclass(frozen=True)
class RightsUsage:
    """The phrase followed by something that is not an address we can send to."""

    kind: str


RightsCommand = RightsRequest | RightsCode | RightsUsage


def parse_rights_command(text: str) -> RightsCommand | None:
    code = _CODE.fullmatch(text)
    if code is not None:
        return RightsCode(code["a"] + code["b"])
    match = _COMMAND.fullmatch(text)
    if match is None:
        return None
    kind = _PHRASES[" ".join(match["phrase"].lower().split())]
    args = (match["args"] or "").strip()
    if not args:
        return RightsRequest(kind)
    first, _, rest = args.partition(" ")
    channel = CHANNEL_WORDS.get(first.lower().rstrip(":"))
    if channel is not None and rest.strip():
        return RightsRequest(kind, channel, rest.strip())
    if "@" in args and not any(ch.isspace() for ch in args):
        return RightsRequest(kind, "email", args)
    return RightsUsage(kind)


def might_be_rights_command(text: str) -> bool:
    """Cheap pre-check so that ordinary messages skip the flow's database work."""
    return len(text) <= 400 and parse_rights_command(text) is not None
