"""Telegram messages -> InboundMessage, without a network."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from telegram import Update

from bot.channels.telegram.updates import command_and_argument, for_us, to_inbound, without_mention
from tools.standins.telegram import BOT_ID, BOT_USERNAME, UpdateFactory

BOT = SimpleNamespace(id=BOT_ID, username=BOT_USERNAME)
u = UpdateFactory()


def _update(data: dict) -> Update:
    return Update.de_json(data, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"@{BOT_USERNAME} when is the bin collected?", "when is the bin collected?"),
        (f"@{BOT_USERNAME.upper()}, when?", "when?"),
        (f"Ask @{BOT_USERNAME}: about glass", "Ask about glass"),
        (f"@{BOT_USERNAME}_fan is not us", f"@{BOT_USERNAME}_fan is not us"),
        (f"mail@{BOT_USERNAME}.org stays", f"mail@{BOT_USERNAME}.org stays"),
    ],
)
def test_mention_of_the_bot_is_removed_and_nothing_else(text, expected):
    assert without_mention(text, BOT_USERNAME) == expected


def test_command_and_argument():
    assert command_and_argument(f"/Status@{BOT_USERNAME}   K7M-39Q-XD2 ") == ("status", "K7M-39Q-XD2")
    assert command_and_argument("/human") == ("human", "")


def test_text_mention_of_the_bot_addresses_it_in_a_group():
    entity = {"type": "text_mention", "offset": 0, "length": 8, "user": u.bot_user}
    update = _update(u.text(-100, "City bot where do I pay?", entities=[entity]))
    assert for_us(update.message, BOT)
    assert to_inbound(update, BOT).metadata["telegram"]["addressed_by"] == "mention"


def test_messages_from_bots_and_channel_posts_are_not_for_us():
    from_bot = _update(u.text(5, "hi"))
    from_bot.message.from_user._unfreeze()
    from_bot.message.from_user.is_bot = True
    assert not for_us(from_bot.message, BOT)
    assert not for_us(_update(u.text(-1007, "news", chat_type="channel")).message, BOT)


def test_venue_is_a_location_and_a_poll_is_other():
    venue = _update(u.update(u.message(5, venue={"location": {"latitude": 1.5, "longitude": 2.5},
                                                 "title": "Town Hall", "address": "1 High St"})))
    inbound = to_inbound(venue, BOT)
    assert inbound.kind == "location"
    assert inbound.metadata["attachment"] == {"type": "venue", "latitude": 1.5, "longitude": 2.5,
                                              "title": "Town Hall", "address": "1 High St"}
    poll = _update(u.update(u.message(5, poll={"id": "1", "question": "?", "options": [], "total_voter_count": 0,
                                               "is_closed": False, "is_anonymous": True, "type": "regular",
                                               "allows_multiple_answers": False, "allows_revoting": False,
                                               "members_only": False})))
    assert (to_inbound(poll, BOT).kind, to_inbound(poll, BOT).metadata["attachment"]["type"]) == ("other", "poll")


def test_each_edit_is_its_own_message_pointing_at_the_original():
    original = u.text(5, "colected")
    first, second = _update(u.edited(original, "collected")), _update(u.edited(original, "collected!"))
    a, b = to_inbound(first, BOT), to_inbound(second, BOT)
    message_id = original["message"]["message_id"]
    assert a.edit_of == b.edit_of == f"5:{message_id}"
    assert a.external_id != b.external_id and a.metadata["edited"]["message"] == f"5:{message_id}"


def test_private_message_metadata_is_minimal():
    inbound = to_inbound(_update(u.text(5, "hello")), BOT)
    assert inbound.sender == "5" and inbound.kind == "text" and inbound.text_for_assistant is None
    assert set(inbound.metadata["telegram"]) == {"update_id", "message_id", "chat_type", "language_code"}


def _from_language(data: dict, language_code: str | None) -> dict:
    message = data.get("message") or data.get("edited_message")
    if language_code is None:
        message["from"].pop("language_code", None)
    else:
        message["from"]["language_code"] = language_code
    return data


@pytest.mark.parametrize(("language_code", "hint"), [("es", "es"), ("es-ES", "es"), ("pt-br", "pt"), ("EN", "en"),
                                                     (None, None), ("und", None)])
def test_the_senders_app_language_is_the_hint(language_code, hint):
    inbound = to_inbound(_update(_from_language(u.text(5, "hola"), language_code)), BOT)
    assert inbound.language_hint == hint


def test_an_edit_and_a_group_message_carry_the_hint_too():
    edited = to_inbound(_update(_from_language(u.edited(u.text(5, "colected"), "recogido"), "es-MX")), BOT)
    assert edited.edit_of is not None and edited.language_hint == "es"
    mention, entities = u.mention()
    group = _update(_from_language(u.text(-100, f"{mention} hola", from_id=77, entities=entities(f"{mention} hola")),
                                   "ca-ES"))
    assert to_inbound(group, BOT).language_hint == "ca"
