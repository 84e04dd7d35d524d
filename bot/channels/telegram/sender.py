"""Outbound Telegram messages: the bot's sendMessage, with Telegram's errors turned
into the delivery queue's terms (retry later, retry after N seconds, give up)."""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram.choices import keyboard
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult
from bot.texts import override

# Telegram refuses texts over 4096 characters (counted in UTF-16 units); stay below.
MAX_CHARS = 4000


def split_text(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Long replies (an agent's detailed answer) as several messages, cut at paragraph,
    line or word boundaries when there is one."""
    chunks: list[str] = []
    rest = text
    while len(rest.encode("utf-16-le")) // 2 > limit:
        window = rest[:limit]
        while len(window.encode("utf-16-le")) // 2 > limit:  # astral characters count twice
            window = window[:-1]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = len(window)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    chunks.append(rest)
    return [chunk for chunk in chunks if chunk] or [text]


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """What the delivery queue should do about a failed sendMessage."""
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return DeliveryError(f"Telegram flood control: retry after {seconds:g} s", retry_after=seconds)
    if isinstance(exc, Forbidden):
        # Blocked by the user, removed from the group, deactivated account: only the citizen
        # can change that, so an agent must see it now rather than after a day of retries.
        return DeliveryError(f"Telegram refused the message: {exc.message}", retryable=False)
    if isinstance(exc, BadRequest):
        # "chat not found", an empty text...: the same request will be refused again.
        return DeliveryError(f"Telegram rejected the message: {exc.message}", retryable=False)
    if isinstance(exc, InvalidToken):
        # Our configuration, not the message: keep it queued until the token is fixed.
        return DeliveryError("Telegram rejected the bot token (check CRM_TELEGRAM_BOT_TOKEN)")
    # TimedOut, NetworkError (5xx, connection problems), Conflict...: try again later.
    return DeliveryError(f"Telegram unavailable: {type(exc).__name__}: {exc.message}")


def _chat_id(address: str) -> int | str:
    try:
        return int(address)
    except ValueError:
        return address  # a channel's @username


class TelegramSender:
    """``ChannelSender`` for Telegram. Timeouts are the bot's request timeouts
    (``Settings.network_timeout_seconds``), so a send never hangs."""

    channel = "telegram"

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, message: OutboundMessage) -> SendResult:
        chat_id = _chat_id(message.address)
        sent_ids: list[int] = []
        meta: dict[str, object] = {}
        chunks = split_text(message.text)
        # "Do you mean ...?" buttons go under the last part, the one that lists the options.
        with override(message.language):  # a "none" title the stored choices lack: as the text
            markup = keyboard(message.meta)
        try:
            await self._bot.initialize()  # no-op once done
            for position, chunk in enumerate(chunks):
                extra = {"reply_markup": markup} if markup is not None and position == len(chunks) - 1 else {}
                try:
                    sent = await self._bot.send_message(chat_id=chat_id, text=chunk, **extra)
                except ChatMigrated as exc:
                    # The group became a supergroup with a new id; Telegram tells us which.
                    chat_id = exc.new_chat_id
                    meta["migrated_to_chat_id"] = chat_id
                    sent = await self._bot.send_message(chat_id=chat_id, text=chunk, **extra)
                sent_ids.append(sent.message_id)
        except TelegramError as exc:
            error = delivery_error(exc)
            if sent_ids:  # a retry sends the whole message again; say what the citizen already has
                error = DeliveryError(f"{error.reason} (after {len(sent_ids)} part(s) were sent)",
                                      retryable=error.retryable, retry_after=error.retry_after)
            raise error from exc
        if len(sent_ids) > 1:
            meta["telegram_message_ids"] = sent_ids
        # Telegram numbers messages per chat: the id alone is not unique across citizens.
        return SendResult(external_id=f"{chat_id}:{sent_ids[0]}", meta=meta)
