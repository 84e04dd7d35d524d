""""Do you mean ...?" as an inline keyboard, and a tap on it as an InboundMessage.

A tap is a callback query, not a message: it leaves nothing in the chat, so the
bot must answer it (answerCallbackQuery, or the citizen's button keeps spinning)
and is what takes the keyboard away once the question is settled. What the tap
means is decided by the core against the stored offer; this module only carries
it there, with the chat it came from as the sender, so a button tapped in another
chat, a tampered one or a stale one can never settle someone else's question.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.channels.choices import OfferedChoices, offered_choices, truncate
from bot.channels.telegram.updates import CHANNEL
from bot.core.inbound import InboundMessage, KbChoice, language_tag
from bot.feedback.service import ANSWER as FEEDBACK_ANSWER
from bot.texts import text

# Bot API: callback_data is 1-64 bytes. KbChoice.encode() is ~17 (a 12-character token).
CALLBACK_DATA_BYTES = 64
# Telegram documents no limit for a button's text but shows one line of it; the message
# above lists every question in full, so a button only needs enough to be recognised.
BUTTON_TEXT_CHARS = 60
# answerCallbackQuery: "0-200 characters".
ANSWER_TEXT_CHARS = 200

# What the toast says after a tap (its bot.texts key), by how the core handled it
# (Message.handling). Nothing for a pick that was answered: the answer itself arrives in the
# chat at once.
STALE_BUTTON = "telegram.stale_button"
ANSWER_TEXTS = {
    "choice_already_answered": "telegram.choice_already_answered",
    "choice_closed": "telegram.choice_closed",
    "choice_invalid": STALE_BUTTON,
}
# Handlings after which the question is settled, so its buttons can go.
SETTLED_HANDLINGS = frozenset({"kb_answer", "escalated", "ticket_joined", "choice_already_answered", "choice_closed",
                               FEEDBACK_ANSWER})

# The chat's reply to a button whose data is not a choice at all (tampered, or from an old
# version of the bot), its bot.texts key; stored with the tap, like every answer the bot gives.
MALFORMED_REPLY = "telegram.malformed_button"


def button_text(option_n: int, title: str, numbered: bool = True) -> str:
    if option_n == 0 or not numbered:
        return truncate(title, BUTTON_TEXT_CHARS)
    return truncate(f"{option_n}. {title}", BUTTON_TEXT_CHARS)


def keyboard_for(choices: OfferedChoices) -> InlineKeyboardMarkup | None:
    rows = []
    for option in choices.all:
        data = option.data(choices.offer)
        if len(data.encode("utf-8")) > CALLBACK_DATA_BYTES:
            return None  # cannot happen with the core's tokens; then the numbered text is enough
        rows.append([InlineKeyboardButton(button_text(option.n, option.title, choices.numbered), callback_data=data)])
    if not choices.numbered:
        # Short answers ("Yes" / "No", 1 to 5) side by side, as a scale reads.
        rows = [[button for row in rows for button in row]]
    return InlineKeyboardMarkup(rows)


def keyboard(meta: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """One button per option, one per row (long questions), "none" last; None without choices."""
    choices = offered_choices(meta)
    return keyboard_for(choices) if choices is not None else None


def tapped_title(query: CallbackQuery) -> str | None:
    """The text of the button whose data came back, as the citizen saw it. None when the
    message is too old for Telegram to include (InaccessibleMessage) or no button has that data."""
    markup = getattr(query.message, "reply_markup", None)
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None


def callback_external_id(query: CallbackQuery) -> str:
    """Telegram's callback query ids are unique; a redelivered update carries the same one."""
    return f"callback:{query.id}"


def callback_to_inbound(update: Update, bot: Bot) -> InboundMessage:
    """A tap -> InboundMessage whose ``choice`` is the decoded data (None when malformed)."""
    del bot  # kept for symmetry with updates.to_inbound
    query = update.callback_query
    assert query is not None
    message = query.message
    assert message is not None, "a tap on an inline-mode message is not ours (see handlers.choice)"
    # The chat the tap happened in: another chat's tap is another sender, whatever its data says.
    chat = message.chat
    sender = str(chat.id)
    choice = KbChoice.decode(query.data)
    title = tapped_title(query)
    if title is not None:
        text = title
    elif choice is not None:
        text = str(choice.option)
    else:
        text = query.data or ""
    info: dict[str, Any] = {"update_id": update.update_id, "callback_query_id": query.id,
                            "callback_data": (query.data or "")[:CALLBACK_DATA_BYTES]}
    info["message_id"] = message.message_id
    info["chat_type"] = chat.type
    if chat.type != "private":
        info["from_user_id"] = query.from_user.id  # in a group: which member tapped
    if query.from_user.language_code:
        info["language_code"] = query.from_user.language_code
    if title is None:
        info["button_found"] = False
    return InboundMessage(
        channel=CHANNEL,
        sender=sender,
        text=text,
        external_id=callback_external_id(query),
        metadata={"telegram": info},
        choice=choice,
        language_hint=language_tag(query.from_user.language_code),
    )


def answer_text(handling: str | None, language: str | None = None) -> str | None:
    key = ANSWER_TEXTS.get(handling or "")
    return text(key, language)[:ANSWER_TEXT_CHARS] if key else None


def is_own_button(query: CallbackQuery) -> bool:
    """The data is one of the tapped message's own buttons (not a tampered client's)."""
    return tapped_title(query) is not None
