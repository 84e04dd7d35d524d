"""How citizens write addresses, and how the channels store them.

The spelling must match what each channel adapter stores as the sender, or a
code would go to a new identity instead of the citizen's existing one:
e-mail addresses lowercased, WhatsApp numbers as the Cloud API's ``wa_id``
(digits only, country code first), Telegram chats by their numeric id.
"""

from __future__ import annotations

import re

from bot.texts import text

# Channels a code can be sent to: they deliver to an address the citizen holds.
LINKABLE_CHANNELS: tuple[str, ...] = ("email", "telegram", "whatsapp")

# Channels with a word of their own for one address on them (link.channel_label.<channel> in bot.texts).
LABELLED_CHANNELS = ("email", "telegram", "whatsapp", "web", "sms", "api")

_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+")
_PHONE_NOISE = re.compile(r"[\s\-.()/]")


def label(channel: str, language: str | None = None) -> str:
    """What one address on ``channel`` is called inside a sentence ("this Telegram chat")."""
    if channel in LABELLED_CHANNELS:
        return text(f"link.channel_label.{channel}", language)
    return text("link.other_channel_label", language, channel=channel)


def normalize_email(raw: str) -> str | None:
    address = raw.strip().strip("<>")
    if address.lower().startswith("mailto:"):
        address = address[7:]
    address = address.lower()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        return None
    return address


def normalize_whatsapp(raw: str) -> str | None:
    number = _PHONE_NOISE.sub("", raw.strip())
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]
    # E.164: at most 15 digits with the country code; shorter than 8 is not a mobile number.
    if not number.isdigit() or not 8 <= len(number) <= 15:
        return None
    return number


def normalize_telegram(raw: str) -> str | None:
    chat_id = raw.strip()
    # A private chat's id is the user's positive numeric id; @usernames cannot be messaged by a bot.
    if not chat_id.isdigit() or len(chat_id) > 20:
        return None
    return chat_id


_NORMALIZERS = {"email": normalize_email, "whatsapp": normalize_whatsapp, "telegram": normalize_telegram}


def normalize_address(channel: str, raw: str) -> str | None:
    """The stored spelling of ``raw`` on ``channel``, or None if it is not a valid address there."""
    normalizer = _NORMALIZERS.get(channel)
    return normalizer(raw) if normalizer is not None else None
