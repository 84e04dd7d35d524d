"""Telegram's settings fail at start-up, not on the first citizen message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.channels.registry import enabled_channels
from bot.settings import Settings

BASE = {"api_keys": "k" * 20}


def test_telegram_is_off_without_a_token_and_on_with_one():
    assert "telegram" not in enabled_channels(Settings(**BASE))
    assert "telegram" in enabled_channels(Settings(**BASE, telegram_bot_token="123:abc"))


@pytest.mark.parametrize("secret", ["short", "has spaces in it, sixteen+", "ü" * 20, "x" * 257])
def test_webhook_secret_must_be_one_telegram_accepts_and_long_enough(secret):
    with pytest.raises(ValidationError, match="CRM_TELEGRAM_WEBHOOK_SECRET"):
        Settings(**BASE, telegram_bot_token="123:abc", telegram_mode="webhook",
                 telegram_webhook_url="https://city.example/channels/telegram/webhook", telegram_webhook_secret=secret)


def test_webhook_mode_needs_its_url_and_secret():
    with pytest.raises(ValidationError, match="CRM_TELEGRAM_WEBHOOK_URL.*CRM_TELEGRAM_WEBHOOK_SECRET"):
        Settings(**BASE, telegram_bot_token="123:abc", telegram_mode="webhook")
