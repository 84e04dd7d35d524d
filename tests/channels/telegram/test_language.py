"""Telegram and languages: what the channel words itself around a handled turn (the tap's toast,
a "none of these" button the stored choices lack) speaks the turn's language."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from telegram import Update

from bot.channels.telegram import choices
from bot.channels.telegram.adapter import build_sender
from bot.channels.telegram.handlers import TelegramHandlers
from bot.core.clarification import CHOICES_KEY, none_option_title
from bot.core.conversation import HandledMessage
from bot.outbox.outbound import OutboundMessage
from bot.texts import text
from tests.channels.telegram.choice_support import choices_meta
from tests.channels.telegram.support import telegram_settings
from tools.standins.telegram import UpdateFactory

u = UpdateFactory()


@pytest.mark.parametrize("language", ["es", None])
def test_a_none_button_the_stored_choices_lack_is_in_the_replys_language(standin, language):
    meta = choices_meta("abcdefgh2345")
    del meta[CHOICES_KEY]["none"]  # an older shape: the sender words the title itself

    async def main():
        await build_sender(telegram_settings("sqlite://", standin)).send(OutboundMessage(
            message_id=1, channel="telegram", address="4242", text="¿Quiere decir...?", meta=meta, language=language))

    asyncio.run(main())
    (sent,) = standin.sent_to(4242)
    assert sent.buttons[-1] == (none_option_title(language), "kb:abcdefgh2345:0")


class Answers:
    """The core's side of a tap: handled as ``handling``, in ``language``."""

    def __init__(self, handling: str, language: str | None) -> None:
        self.handling, self.language = handling, language

    def handle_inbound(self, inbound, **_options) -> HandledMessage:  # noqa: ANN001
        return HandledMessage(message_id=1, replies=[], handling=self.handling, intent=None, confidence=None,
                              kb_entry_id=None, ticket=None, duplicate=False, language=self.language)

    def answer_directly(self, inbound, reply, **_options) -> HandledMessage:  # noqa: ANN001
        return self.handle_inbound(inbound)


class NoDelivery:
    async def deliver_many(self, *_args: Any, **_kwargs: Any) -> None:
        pass


def _toast(handling: str, language: str | None, data: str = "kb:abcdefgh2345:1") -> str | None:
    handlers = TelegramHandlers(Answers(handling, language), NoDelivery(), sessions=None)
    toasts: list[str | None] = []

    async def answer_query(_query: Any, toast: str | None) -> None:
        toasts.append(toast)

    async def remove_keyboard(*_args: Any) -> None:
        pass

    handlers._answer_query, handlers._remove_keyboard = answer_query, remove_keyboard
    tapped = {"message_id": 7, "date": 0, "chat": u.chat(42)}
    update = Update.de_json(u.callback(42, tapped, data), None)
    asyncio.run(handlers.choice(update, SimpleNamespace(bot=None)))
    return toasts[0]


@pytest.mark.parametrize("language", ["es", None])
def test_the_taps_toast_is_in_the_turns_language(language):
    assert _toast("choice_closed", language) == text(choices.ANSWER_TEXTS["choice_closed"], language)
    assert _toast("choice_invalid", language, data="tampered") == text(choices.STALE_BUTTON, language)
    if language:
        assert text(choices.ANSWER_TEXTS["choice_closed"], language) != text(choices.ANSWER_TEXTS["choice_closed"])

