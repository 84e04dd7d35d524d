"""TelegramSender against the stand-in: python-telegram-bot's real requests and error
mapping, turned into what the delivery queue should do."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.channels.telegram.adapter import build_sender
from bot.channels.telegram.sender import split_text
from bot.outbox.outbound import DeliveryError, OutboundMessage
from tests.channels.telegram.support import telegram_settings


def _send(settings, address: str, text: str = "Your ticket K7M-39Q-XD2 is resolved."):
    async def main():
        return await build_sender(settings).send(OutboundMessage(message_id=1, channel="telegram",
                                                                 address=address, text=text))

    return asyncio.run(main())


def _error(settings, address: str) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        _send(settings, address)
    return caught.value


def test_sent_message_returns_telegrams_message_id(standin):
    result = _send(telegram_settings("sqlite://", standin), "4242")
    (sent,) = standin.sent_to(4242)
    assert result.external_id == f"4242:{sent.message_id}" and sent.text == "Your ticket K7M-39Q-XD2 is resolved."
    assert "parse_mode" not in sent.params  # citizen and agent text is sent as plain text, never as markup


def test_flood_control_is_retried_after_telegrams_delay(standin):
    standin.fail_next("sendMessage", 429, retry_after=7)
    error = _error(telegram_settings("sqlite://", standin), "1")
    assert error.retryable and error.retry_after == 7


def test_server_errors_are_retried(standin):
    standin.fail_next("sendMessage", 500)
    standin.fail_next("sendMessage", 502)
    settings = telegram_settings("sqlite://", standin)
    assert _error(settings, "1").retryable
    assert _error(settings, "1").retryable
    assert _send(settings, "1").external_id


def test_blocked_bot_and_unknown_chat_are_not_retried(standin):
    standin.blocked_chats.add(66)
    standin.unknown_chats.add(67)
    settings = telegram_settings("sqlite://", standin)
    blocked, unknown = _error(settings, "66"), _error(settings, "67")
    assert not blocked.retryable and "blocked by the user" in blocked.reason
    assert not unknown.retryable and "chat not found" in unknown.reason.lower()


def test_group_that_became_a_supergroup_gets_the_message_at_its_new_id(standin):
    standin.fail_next("sendMessage", 400, "Bad Request: group chat was upgraded to a supergroup chat")
    standin._failures["sendMessage"][0].parameters = {"migrate_to_chat_id": -1001234}
    result = _send(telegram_settings("sqlite://", standin), "-55")
    assert [m.chat_id for m in standin.sent] == [-1001234]
    assert result.meta["migrated_to_chat_id"] == -1001234


def test_long_reply_is_split_into_messages_telegram_accepts(standin):
    text = "\n\n".join(f"Paragraph {i}: " + "words " * 150 for i in range(10))
    result = _send(telegram_settings("sqlite://", standin), "5", text)
    parts = standin.sent_to(5)
    assert len(parts) == 3 and all(len(p.text) <= 4000 for p in parts)
    assert " ".join(" ".join(p.text.split()) for p in parts) == " ".join(text.split())
    assert result.meta["telegram_message_ids"] == [p.message_id for p in parts]


def test_split_counts_characters_telegram_counts_twice():
    parts = split_text("🙂" * 3000)  # each is two UTF-16 units
    assert len(parts) == 2 and all(len(p.encode("utf-16-le")) // 2 <= 4000 for p in parts)
    assert "".join(parts) == "🙂" * 3000


def test_unresponsive_telegram_times_out_and_is_retried(standin):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/bot"
        settings = telegram_settings("sqlite://", standin, telegram_base_url=url, network_timeout_seconds=0.5)
        error = _error(settings, "1")
    assert error.retryable and "TimedOut" in error.reason
