""""Do you mean ...?" on Telegram: the inline keyboard, taps (callback queries) through the
real Conversation and store, and every odd tap: twice, stale, another chat's, tampered."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.channels.telegram.adapter import build_sender
from bot.channels.telegram.choices import (
    BUTTON_TEXT_CHARS,
    MALFORMED_REPLY,
    STALE_BUTTON,
    callback_to_inbound,
    keyboard,
)
from bot.channels.telegram.handlers import ALLOWED_UPDATES
from bot.core import clarification
from bot.core.inbound import KbChoice
from bot.outbox.outbound import OutboundMessage
from bot.store.db import session_factory
from bot.store.models import KbOffer, Message
from bot.texts import text as catalogue_text
from tests.channels.telegram.choice_support import OFFERED, ChoiceRasa, choices_meta
from tests.channels.telegram.support import TOKEN, PollingBot, telegram_settings
from tools.standins.telegram import CALLBACK_DATA_BYTES, UpdateFactory, keyboard_problem

LONG = [("How do I " + "really " * 20 + "get rid of an old sofa?")[:150],
        ("Where can I " + "possibly " * 20 + "pay a parking fine?")[:150],
        ("When is the " + "household " * 20 + "waste collected?")[:150]]
u = UpdateFactory()


def _message_with(markup: InlineKeyboardMarkup | None, chat_id: int = 42, message_id: int = 7) -> dict:
    message = {"message_id": message_id, "date": int(time.time()), "chat": u.chat(chat_id), "from": u.bot_user,
               "text": "Do you mean ...?"}
    if markup is not None:
        message["reply_markup"] = markup.to_dict()
    return message


# --- rendering ---------------------------------------------------------------------------


def test_keyboard_has_one_button_per_option_then_none_within_telegrams_limits():
    markup = keyboard(choices_meta("k7mxd2abc345", LONG))
    rows = markup.to_dict()["inline_keyboard"]
    assert [len(row) for row in rows] == [1, 1, 1, 1]  # one per row: long questions stay readable
    buttons = [row[0] for row in rows]
    assert [b["callback_data"] for b in buttons] == [KbChoice("k7mxd2abc345", n).encode() for n in (1, 2, 3, 0)]
    assert all(len(b["callback_data"].encode()) <= CALLBACK_DATA_BYTES for b in buttons)
    assert all(len(b["text"]) <= BUTTON_TEXT_CHARS for b in buttons)
    assert buttons[0]["text"].startswith("1. How do I really") and buttons[0]["text"].endswith("\u2026")
    assert buttons[3]["text"] == clarification.none_option_title()
    assert keyboard_problem(markup.to_dict()) is None


@pytest.mark.parametrize("meta", [
    {},
    {"choices": None},
    {"choices": {"offer": "has:colons", "options": [{"n": 1, "title": "x"}]}},
    {"choices": {"offer": "t" * 40, "options": [{"n": 1, "title": "x"}]}},
    {"choices": {"offer": "abc", "options": []}},
    {"choices": {"offer": "abc", "options": [{"n": "1", "title": "x"}]}},
    {"choices": {"offer": "abc", "options": [{"n": 1, "title": "  "}]}},
])
def test_no_keyboard_without_usable_choices(meta):
    assert keyboard(meta) is None


def test_callback_queries_are_asked_for_in_both_modes():
    assert "callback_query" in ALLOWED_UPDATES


# --- a tap as an InboundMessage ----------------------------------------------------------


def test_tap_becomes_an_inbound_message_with_the_choice_the_button_text_and_the_query_id():
    markup = keyboard(choices_meta("abcdefgh2345"))
    update = Update.de_json(u.callback(42, _message_with(markup), "kb:abcdefgh2345:2", query_id="981"), None)
    inbound = callback_to_inbound(update, None)
    assert (inbound.channel, inbound.sender, inbound.external_id) == ("telegram", "42", "callback:981")
    assert inbound.choice == KbChoice("abcdefgh2345", 2)
    assert inbound.text == "2. How do I book a bulky waste pickup?"
    assert inbound.metadata["telegram"]["callback_data"] == "kb:abcdefgh2345:2"
    assert inbound.metadata["telegram"]["message_id"] == 7


def test_tap_in_another_chat_is_that_chats_and_an_old_message_falls_back_to_the_number():
    # A group member taps: the group is the sender (its own identity), with who tapped.
    markup = keyboard(choices_meta("abcdefgh2345"))
    group = callback_to_inbound(Update.de_json(
        u.callback(-100, _message_with(markup, chat_id=-100), "kb:abcdefgh2345:1", from_id=77), None), None)
    assert group.sender == "-100" and group.metadata["telegram"]["from_user_id"] == 77
    # Older than 48 hours: Telegram sends an InaccessibleMessage (date 0), without its keyboard.
    old = {"message_id": 7, "date": 0, "chat": u.chat(42)}
    inbound = callback_to_inbound(Update.de_json(u.callback(42, old, "kb:abcdefgh2345:1"), None), None)
    assert (inbound.sender, inbound.text, inbound.choice) == ("42", "1", KbChoice("abcdefgh2345", 1))


def test_a_tap_carries_the_tapping_users_app_language_as_the_hint():
    data = u.callback(42, _message_with(keyboard(choices_meta("abcdefgh2345"))), "kb:abcdefgh2345:1")
    data["callback_query"]["from"]["language_code"] = "es-419"
    assert callback_to_inbound(Update.de_json(data, None), None).language_hint == "es"
    del data["callback_query"]["from"]["language_code"]
    assert callback_to_inbound(Update.de_json(data, None), None).language_hint is None


@pytest.mark.parametrize("data", ["kb:abc", "kb:abc:x", "kb:ab-c:1", "kb:abc:123", "evil", "", None])
def test_malformed_data_is_no_choice_and_is_kept_as_text(data):
    inbound = callback_to_inbound(Update.de_json(u.callback(42, _message_with(None), data), None), None)
    assert inbound.choice is None and inbound.text == (data or "")


# --- the sender and the stand-in's limits ------------------------------------------------


def _send(standin, text: str, meta: dict):
    async def main():
        return await build_sender(telegram_settings("sqlite://", standin)).send(
            OutboundMessage(message_id=1, channel="telegram", address="4242", text=text, meta=meta))

    return asyncio.run(main())


def test_reply_with_choices_goes_out_with_its_keyboard(standin):
    text = "Do you mean one of these?\n" + clarification.options_text(
        [clarification.ChoiceOption(n, f"e{n}", t) for n, t in enumerate(LONG, start=1)])
    _send(standin, text, choices_meta("abcdefgh2345", LONG))
    (sent,) = standin.sent_to(4242)
    assert sent.text == text
    assert [data for _text, data in sent.buttons] == [f"kb:abcdefgh2345:{n}" for n in (1, 2, 3, 0)]


def test_long_reply_has_the_keyboard_under_its_last_part_only(standin):
    text = "word " * 1500 + "\n1. A\n0. None"
    _send(standin, text, choices_meta("abcdefgh2345"))
    first, second = standin.sent_to(4242)
    assert first.reply_markup is None and len(second.buttons) == 3


def test_reply_without_choices_has_no_keyboard(standin):
    _send(standin, "Your bin is collected on Tuesday.", {"ticket": "x"})
    (sent,) = standin.sent_to(4242)
    assert "reply_markup" not in sent.params


def test_stand_in_refuses_what_telegram_refuses(standin):
    async def main():
        bot = Bot(TOKEN, base_url=standin.base_url)
        async with bot:
            too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
            with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
                await bot.send_message(chat_id=5, text="hi", reply_markup=too_long)
            with pytest.raises(BadRequest, match="(?i)query is too old"):
                await bot.answer_callback_query("12345")
            with pytest.raises(BadRequest, match="(?i)message to edit not found"):
                await bot.edit_message_reply_markup(chat_id=5, message_id=99, reply_markup=None)

    asyncio.run(main())
    assert standin.sent == []


# --- taps through the real Conversation and store ----------------------------------------


def _stored(db_url: str, direction: str = "in") -> list[Message]:
    with session_factory(db_url)() as session:
        return list(session.scalars(select(Message).where(Message.direction == direction).order_by(Message.id)))


def _ask(standin, chat_id: int) -> object:
    """The citizen asks; the assistant answers with the keyboard."""
    standin.push(standin.updates.text(chat_id, "I want to build something"))
    (asking,) = standin.wait_for_sent(chat_id)
    return asking


def _offer(db_url: str) -> KbOffer:
    with session_factory(db_url)() as session:
        return session.scalars(select(KbOffer)).one()


def test_a_tap_is_answered_its_keyboard_removed_and_a_second_tap_or_a_retry_changes_nothing(db_url, standin):
    settings = telegram_settings(db_url, standin)
    rasa = ChoiceRasa(settings)
    with PollingBot(settings, rasa, standin):
        asking = _ask(standin, 4242)
        offer = _offer(db_url)
        assert [data for _t, data in asking.buttons] == [f"kb:{offer.token}:{n}" for n in (1, 2, 3, 0)]
        tap = standin.tap(asking, 1)
        standin.push(tap)
        _asking, answer = standin.wait_for_sent(4242, 2)
        query_id = tap["callback_query"]["id"]
        assert standin.wait_for_answer(query_id).get("text") is None  # the answer is in the chat
        assert answer.text == f"answer: {OFFERED[1]}"
        deadline = time.monotonic() + 10
        while standin.keyboard_of(asking) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert standin.keyboard_of(asking) is None
    # Telegram sends the tap again (we crashed before confirming it) to a restarted bot, and
    # a second tap that raced the keyboard's removal arrives: neither is answered again.
    again = standin.tap(asking, 2)
    with PollingBot(settings, rasa, standin):
        standin.push(tap, again)
        assert standin.wait_for_answer(again["callback_query"]["id"])["text"] == "Already answered above."
        sent = standin.wait_for_sent(4242, 3)
    assert [m.text for m in sent[1:]] == [f"answer: {OFFERED[1]}", "choice: already_answered"]
    assert rasa.seen.count(clarification.rasa_payload(KbChoice(offer.token, 2))) == 1
    stored = _stored(db_url)
    assert [m.external_id for m in stored[1:]] == [f"callback:{query_id}", f"callback:{again['callback_query']['id']}"]
    assert stored[1].text == asking.buttons[1][0] and stored[1].meta["kb_choice"] == f"kb:{offer.token}:2"
    assert (stored[1].handling, stored[1].kb_entry_id) == ("kb_answer", OFFERED[1])
    assert stored[2].handling == "choice_already_answered"
    assert _offer(db_url).status == clarification.ANSWERED


def test_a_tap_from_another_chat_settles_nothing_and_leaves_the_keyboard(db_url, standin):
    settings = telegram_settings(db_url, standin)
    rasa = ChoiceRasa(settings)
    with PollingBot(settings, rasa, standin):
        asking = _ask(standin, 4242)
        # Someone in chat 5151 sends a callback with 4242's data (a forwarded keyboard, a forged client).
        tap = standin.tap(asking, 0, chat_id=5151)
        standin.push(tap)
        assert standin.wait_for_answer(tap["callback_query"]["id"])["text"] == catalogue_text(STALE_BUTTON)
        (reply,) = standin.wait_for_sent(5151)
    assert reply.text == "choice: invalid"
    assert _offer(db_url).status == clarification.PENDING
    assert standin.keyboard_of(asking) is not None
    assert standin.calls_of("editMessageReplyMarkup") == []


def test_a_tampered_button_is_answered_stored_and_the_bot_keeps_working(db_url, standin):
    settings = telegram_settings(db_url, standin)
    rasa = ChoiceRasa(settings)
    with PollingBot(settings, rasa, standin):
        asking = _ask(standin, 4242)
        bad = standin.tap(asking, data="kb:../../etc:1")
        standin.push(bad)
        assert standin.wait_for_answer(bad["callback_query"]["id"])["text"] == catalogue_text(STALE_BUTTON)
        _asking, reply = standin.wait_for_sent(4242, 2)
        assert reply.text == catalogue_text(MALFORMED_REPLY)
        # A valid tap after it still works.
        good = standin.tap(asking, 3)  # "None of these": a person takes it
        standin.push(good)
        standin.wait_for_sent(4242, 3)
    stored = _stored(db_url)
    assert (stored[1].text, stored[1].handling) == ("kb:../../etc:1", "choice_invalid")
    assert stored[1].external_id == f"callback:{bad['callback_query']['id']}"
    assert len(rasa.seen) == 2  # the question and the valid "none": the tampered tap never reached it
    assert _offer(db_url).status == clarification.DECLINED and stored[2].handling == "escalated"
