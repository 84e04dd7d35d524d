"""The "Do you mean ...?" options of an outbound message, as channels with buttons read them.

The core stores them in the reply's ``meta[CHOICES_KEY]`` (bot.core.clarification). The
"Was it solved?" questions (bot.feedback) use the same shape with ``"none": None`` (no "None
of these" option) and ``"numbered": False`` (buttons show their titles alone: "Yes", "3").
A sender must never fail a delivery because that part is odd: the reply's text
already lists the options numbered, so anything unusable here means "send the
text without buttons", never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.clarification import CHOICES_KEY, none_option_title
from bot.core.inbound import KbChoice

ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Option:
    n: int
    title: str

    def data(self, offer: str) -> str:
        return KbChoice(offer, self.n).encode()


@dataclass(frozen=True)
class OfferedChoices:
    offer: str
    options: list[Option]
    none: Option | None
    # The options' numbers are part of what a button shows ("2. Can my visitors park ...").
    numbered: bool = True

    @property
    def all(self) -> list[Option]:
        """The options in the order shown, "none" last."""
        return [*self.options, self.none] if self.none is not None else list(self.options)


def offered_choices(meta: Mapping[str, Any] | None) -> OfferedChoices | None:
    """The options of ``meta[CHOICES_KEY]``, or None when there are none or they are unusable
    (a token a ``KbChoice`` cannot carry, an option without a number or title)."""
    raw = (meta or {}).get(CHOICES_KEY)
    if not isinstance(raw, Mapping):
        return None
    offer = raw.get("offer")
    if not isinstance(offer, str) or KbChoice.decode(KbChoice(offer, 0).encode()) is None:
        return None
    options: list[Option] = []
    for item in raw.get("options") or []:
        if not isinstance(item, Mapping):
            return None
        n, title = item.get("n"), item.get("title")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 99 or not isinstance(title, str):
            return None
        if not title.strip():
            return None
        options.append(Option(n, " ".join(title.split())))
    if not options:
        return None
    numbered = raw.get("numbered") is not False
    if "none" in raw and raw["none"] is None:
        return OfferedChoices(offer=offer, options=options, none=None, numbered=numbered) if len(options) >= 2 else None
    none = raw.get("none") if isinstance(raw.get("none"), Mapping) else {}
    none_title = none.get("title") if isinstance(none.get("title"), str) and none.get("title").strip() else none_option_title()
    return OfferedChoices(offer=offer, options=options, none=Option(0, " ".join(none_title.split())), numbered=numbered)


def truncate(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at a word when one is near, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    window = text[: limit - 1]
    cut = window.rfind(" ")
    if cut >= limit * 2 // 3:
        window = window[:cut]
    return window.rstrip(" ,;:.-") + ELLIPSIS
