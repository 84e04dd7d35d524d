""""my data" and "erase my data", read the same way on every channel.

Small and exact on purpose: a question that merely mentions data ("how do you use my
data?") is for the assistant. Kept apart from the flow so the conversation can ask
cheaply, before any database work, whether a message might be one of these.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bot.identity.commands import channel_word
from bot.privacy.models import ERASE, EXPORT
from bot.texts.words import fold, fold_table

# The phrases per language, as the start of the message, then optionally where to send the
# code; case, accents, an opening "¡" and a final "." or "!" do not matter, and Telegram's
# "/mydata@CityBot" in a group is "/mydata". Every language is read whatever the message's.
# Adding a language is adding its phrases here.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "my data": EXPORT, "send me my data": EXPORT, "/mydata": EXPORT,
        "erase my data": ERASE, "delete my data": ERASE, "/erase": ERASE,
    },
    "es": {
        "mis datos": EXPORT, "enviame mis datos": EXPORT, "mandame mis datos": EXPORT, "ver mis datos": EXPORT,
        "/misdatos": EXPORT,
        "borrar mis datos": ERASE, "borra mis datos": ERASE, "eliminar mis datos": ERASE,
        "elimina mis datos": ERASE, "suprimir mis datos": ERASE, "/borrar": ERASE,
    },
}
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+$")
# The end of the first n words of a message, for n = 1, 2, ...
_WORD_END = re.compile(r"\S+")
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


@functools.cache
def _phrases() -> tuple[dict[str, str], int]:
    """The folded phrases and the most words one has."""
    table = fold_table(PHRASES)
    return table, max(len(phrase.split()) for phrase in table)


def _phrase(text: str) -> tuple[str, str] | None:
    """(the kind, the rest of the message) when the message opens with a phrase; the longest wins."""
    table, longest = _phrases()
    ends = [word.end() for _, word in zip(range(longest), _WORD_END.finditer(text))]
    for end in reversed(ends):
        kind = table.get(_BOT_SUFFIX.sub(r"\1", fold(text[:end])))
        if kind is not None:
            return kind, text[end:]
    return None


def parse_rights_command(text: str) -> RightsCommand | None:
    code = _CODE.fullmatch(text)
    if code is not None:
        return RightsCode(code["a"] + code["b"])
    match = _phrase(text)
    if match is None:
        return None
    kind, args = match
    args = args.strip()
    if not args:
        return RightsRequest(kind)
    first, _, rest = args.partition(" ")
    channel = channel_word(first)
    if channel is not None and rest.strip():
        return RightsRequest(kind, channel, rest.strip())
    if "@" in args and not any(ch.isspace() for ch in args):
        return RightsRequest(kind, "email", args)
    return RightsUsage(kind)


def might_be_rights_command(text: str) -> bool:
    """Cheap pre-check so that ordinary messages skip the flow's database work."""
    return len(text) <= 400 and parse_rights_command(text) is not None
