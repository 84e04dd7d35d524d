"""Telegram messages as the project's InboundMessage.

Only this module knows what a Telegram message looks like: which part is the
text, what was attached (described by its file ids and sizes; files are never
downloaded), whether a group message is meant for the bot, and how a command
reads in words the assistant understands.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Bot, Message, MessageEntity, Update

from bot.core.inbound import InboundMessage, language_tag

CHANNEL = "telegram"

# Telegram's attachment types -> the core's kinds (bot.core.inbound.InboundMessage.kind).
KINDS = {
    "photo": "photo",
    "document": "document",
    "animation": "video",
    "video": "video",
    "video_note": "video",
    "voice": "voice",
    "audio": "audio",
    "sticker": "sticker",
    "location": "location",
    "venue": "location",
    "contact": "contact",
}

# What is worth keeping of each attachment: enough for staff to ask for the file
# (file ids stay valid for the bot) and to see what it was; never the file itself.
_ATTACHMENT_FIELDS = (
    "file_id", "file_unique_id", "file_name", "mime_type", "file_size", "width", "height", "length",
    "duration", "emoji", "set_name", "is_animated", "is_video", "title", "performer", "latitude",
    "longitude", "horizontal_accuracy", "live_period", "address", "phone_number", "first_name",
    "last_name", "user_id", "question", "type",
)


def private(message: Message) -> bool:
    return message.chat.type == "private"


def addressed_by(message: Message, bot: Bot) -> str | None:
    """How a group message is meant for us: ``"command"`` (/status@our_bot), ``"mention"``
    (@our_bot in the text or caption), ``"reply"`` (a reply to one of our messages); None
    when it is talk between the group's members, which we neither answer nor store."""
    username = (bot.username or "").lower()
    for entity, text in _entities(message).items():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            if "@" in text and text.split("@", 1)[1].lower() == username:
                return "command"
        elif entity.type == MessageEntity.MENTION and text[1:].lower() == username:
            return "mention"
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id:
            return "mention"
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return "reply"
    return None


def for_us(message: Message, bot: Bot) -> bool:
    if message.from_user is not None and message.from_user.is_bot:
        return False  # other bots (and our own echoes) are not citizens
    if private(message):
        return True
    if message.chat.type in ("group", "supergroup"):
        return addressed_by(message, bot) is not None
    return False  # channels post; they do not write to us


def without_mention(text: str, username: str | None) -> str:
    """The text with ``@our_bot`` (and the comma or colon after it) taken out."""
    if not username:
        return text
    return re.sub(rf"(?i)(?<![\w@])@{re.escape(username)}\b[\s,:]*", "", text).strip()


def command_and_argument(text: str) -> tuple[str, str]:
    """``"/status@our_bot  K7M-39Q-XD2"`` -> ``("status", "K7M-39Q-XD2")``."""
    head, _, rest = text.strip().partition(" ")
    return head[1:].split("@", 1)[0].lower(), rest.strip()


def kind_and_attachment(message: Message) -> tuple[str, dict[str, Any] | None]:
    """``("text", None)`` or the core kind plus the attachment's details."""
    attachment = message.effective_attachment
    if attachment is None:
        return "text", None
    raw = message.to_dict()
    for field_name, kind in KINDS.items():
        if field_name in raw:
            details = raw[field_name]
            if field_name == "photo":  # several sizes of one picture: keep the largest
                details = max(details, key=lambda size: (size.get("width", 0) * size.get("height", 0)))
            described = {"type": field_name}
            if field_name == "venue":
                described.update({k: v for k, v in details.get("location", {}).items() if k in _ATTACHMENT_FIELDS})
            described.update({k: v for k, v in details.items() if k in _ATTACHMENT_FIELDS})
            return kind, described
    # Polls, dice, games, stories...: kept as "other", with what they are.
    field_name = next((name for name in ("poll", "dice", "game", "story", "invoice", "paid_media") if name in raw),
                      type(attachment).__name__.lower())
    return "other", {"type": field_name}


def telegram_metadata(update: Update, message: Message, *, addressed: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"update_id": update.update_id, "message_id": message.message_id,
                            "chat_type": message.chat.type}
    if message.from_user is not None:
        if not private(message):
            info["from_user_id"] = message.from_user.id  # in a group: which member wrote
        if message.from_user.language_code:
            info["language_code"] = message.from_user.language_code
    if addressed is not None:
        info["addressed_by"] = addressed
    if message.forward_origin is not None:
        info["forwarded"] = True
    return {"telegram": info}


def sender_language(message: Message) -> str | None:
    """The language the sender's Telegram app is set to (``User.language_code``, an IETF tag
    Telegram sends for most users): a hint, since an app in English is common among people
    who write in another language."""
    user = message.from_user
    return language_tag(user.language_code) if user is not None else None


def external_id(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"


def to_inbound(update: Update, bot: Bot, *, text_for_assistant: str | None = None) -> InboundMessage:
    """Any message or edited message meant for us -> InboundMessage."""
    message = update.effective_message
    assert message is not None
    addressed = None if private(message) else addressed_by(message, bot)
    text = message.text if message.text is not None else (message.caption or "")
    kind, attachment = kind_and_attachment(message)
    metadata = telegram_metadata(update, message, addressed=addressed)
    if attachment is not None:
        metadata["attachment"] = attachment
    if text_for_assistant is None and addressed == "mention":
        text_for_assistant = without_mention(text, bot.username)
    edit_of = None
    ext_id = external_id(message)
    if update.edited_message is not None:
        edit_of = ext_id
        # One stored row per edit (the update id is unique; a redelivered update is not).
        ext_id = f"{ext_id}:edit:{update.update_id}"
        metadata["edited"] = {"message": edit_of}
        if message.edit_date is not None:
            metadata["edited"]["at"] = message.edit_date.isoformat()
    return InboundMessage(
        channel=CHANNEL,
        sender=str(message.chat.id),
        text=text,
        external_id=ext_id,
        metadata=metadata,
        kind=kind,
        text_for_assistant=text_for_assistant,
        edit_of=edit_of,
        language_hint=sender_language(message),
    )


def _entities(message: Message) -> dict[MessageEntity, str]:
    if message.text is not None:
        return message.parse_entities()
    if message.caption is not None:
        return message.parse_caption_entities()
    return {}
