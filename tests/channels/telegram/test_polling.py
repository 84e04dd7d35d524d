"""The channel in polling mode: python-telegram-bot polls the stand-in, messages go
through the real Conversation and store (Rasa replaced by an echo), replies come
back through sendMessage."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from bot.channels.telegram.handlers import HANDLE_ATTEMPTS
from bot.store.db import session_factory
from bot.store.models import Message
from tests.channels.telegram.support import TOKEN, FakeRasa, PollingBot, store_fails, telegram_settings


def _stored(db_url: str, direction: str = "in") -> list[Message]:
    with session_factory(db_url)() as session:
        return list(session.scalars(select(Message).where(Message.direction == direction).order_by(Message.id)))


def test_text_message_is_answered_and_stored(db_url, standin):
    rasa = FakeRasa(db_url)
    update = standin.updates.text(4242, "When is my bin collected?")
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(update)
        sent = standin.wait_for_sent(4242)
    assert sent[0].text == "echo: When is my bin collected?"
    (inbound,) = _stored(db_url)
    assert (inbound.channel, inbound.text) == ("telegram", "When is my bin collected?")
    assert inbound.external_id == f"4242:{update['message']['message_id']}"
    assert inbound.meta["telegram"]["update_id"] == update["update_id"]
    (reply,) = _stored(db_url, "out")
    assert (reply.delivery_status, reply.external_id) == ("sent", f"4242:{sent[0].message_id}")


def test_replies_to_different_chats_may_have_the_same_telegram_message_id(db_url, standin):
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(standin.updates.text(4243, "hi"), standin.updates.text(4244, "hi"))
        (first,), (second,) = standin.wait_for_sent(4243), standin.wait_for_sent(4244)
        assert first.message_id == second.message_id  # Telegram counts per chat
        deadline = time.monotonic() + 10
        while {m.delivery_status for m in _stored(db_url, "out")} != {"sent"} and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sorted(m.external_id for m in _stored(db_url, "out")) == [f"4243:{first.message_id}",
                                                                     f"4244:{second.message_id}"]


def test_start_greets_and_says_what_is_stored_without_asking_the_assistant(db_url, standin):
    rasa = FakeRasa(db_url)
    # What is stored is the privacy notice's to say (bot.privacy.notice): on first contact it ends the welcome.
    with PollingBot(telegram_settings(db_url, standin, privacy_notice_channels="telegram"), rasa, standin):
        standin.push(standin.updates.text(11, "/start"))
        (greeting,) = standin.wait_for_sent(11)
    assert rasa.seen == []
    assert "store" in greeting.text and "/status" in greeting.text and "/human" in greeting.text
    assert "/privacy" in greeting.text and greeting.text.endswith('write "privacy".')
    assert [m.text for m in _stored(db_url)] == ["/start"]
    assert [m.text for m in _stored(db_url, "out")] == [greeting.text]


def test_status_and_human_reach_the_assistant_in_its_words_and_are_stored_as_typed(db_url, standin):
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        # kmxtrwzqz: one ID in twenty has no digit; typed in lowercase it is still an ID here.
        standin.push(*(standin.updates.text(12, text) for text in ("/status k7m39qxd2", "/human", "/status kmxtrwzqz")))
        standin.wait_for_sent(12, 3)
    assert rasa.texts() == [
        "what is the status of k7m39qxd2?", "I want to talk to a real person", "what is the status of kmxtrwzqz?",
    ]
    assert [m.text for m in _stored(db_url)] == ["/status k7m39qxd2", "/human", "/status kmxtrwzqz"]


def test_status_without_an_id_asks_for_it_and_unknown_commands_get_help(db_url, standin):
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(standin.updates.text(13, "/status"), standin.updates.text(13, "/weather"))
        asked, helped = standin.wait_for_sent(13, 2)
    assert rasa.seen == []
    assert "ID" in asked.text and "/status K7M-39Q-XD2" in asked.text
    assert "don't know that command" in helped.text


def test_link_command_reaches_the_conversation_as_typed(db_url, standin):
    """Linking channels is the core's (bot.identity); Telegram must not swallow /link as unknown."""
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(standin.updates.text(20, "/link email ana@example.org"))
        (reply,) = standin.wait_for_sent(20)
    assert "don't know that command" not in reply.text
    (stored,) = _stored(db_url)
    assert stored.text == "/link email ana@example.org" and stored.handling != "channel_command"


def test_every_kind_of_attachment_is_stored_and_answered_never_downloaded(db_url, standin):
    u = standin.updates
    chat = 14
    contents = {
        "photo": {"photo": u.photo_sizes()},
        "document": {"document": {"file_id": "BQAC", "file_unique_id": "AgAD1", "file_name": "letter.pdf",
                                  "mime_type": "application/pdf", "file_size": 52311}},
        "voice": {"voice": {"file_id": "AwAC", "file_unique_id": "AgAD2", "duration": 7, "mime_type": "audio/ogg"}},
        "audio": {"audio": {"file_id": "CQAC", "file_unique_id": "AgAD3", "duration": 95, "title": "noise"}},
        "video": {"video": {"file_id": "BAAC", "file_unique_id": "AgAD4", "width": 640, "height": 480,
                            "duration": 12}},
        "sticker": {"sticker": {"file_id": "CAAC", "file_unique_id": "AgAD5", "width": 512, "height": 512,
                                "is_animated": False, "is_video": False, "type": "regular", "emoji": "👍"}},
        "location": {"location": {"latitude": 52.2053, "longitude": 0.1218}},
        "contact": {"contact": {"phone_number": "+441234567890", "first_name": "Sam"}},
        "other": {"dice": {"emoji": "🎲", "value": 4}},
    }
    updates = [u.update(u.message(chat, **content)) for content in contents.values()]
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(*updates)
        replies = standin.wait_for_sent(chat, len(updates))
    assert rasa.seen == []  # nothing to read without words
    assert all("describe" in r.text for r in replies)
    stored = _stored(db_url)
    assert [m.meta["kind"] for m in stored] == list(contents)
    photo = stored[0].meta["attachment"]
    assert photo["file_id"] == "AgACAgQAAxkBAAIB" and (photo["width"], photo["height"]) == (1280, 960)
    assert stored[6].meta["attachment"]["latitude"] == 52.2053
    assert stored[1].meta["attachment"]["file_name"] == "letter.pdf"
    assert not standin.calls_of("getFile")


def test_photo_with_a_caption_is_read_by_the_assistant(db_url, standin):
    rasa = FakeRasa(db_url)
    u = standin.updates
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(u.update(u.message(15, photo=u.photo_sizes(), caption="Broken street light here")))
        standin.wait_for_sent(15)
    assert rasa.texts() == ["Broken street light here"]
    (stored,) = _stored(db_url)
    assert stored.meta["kind"] == "photo" and stored.text == "Broken street light here"


def test_group_talk_is_ignored_and_not_stored_unless_the_bot_is_addressed(db_url, standin):
    u = standin.updates
    group = -100777
    handle, entities_for = u.mention()
    mention_text = f"{handle}, when is the bin collected on Mill Road?"
    ours = {"message_id": 555, "date": 0, "chat": u.chat(group), "from": u.bot_user, "text": "earlier answer"}
    updates = [
        u.text(group, "has anyone seen the bin lorry today?", from_id=31),
        u.text(group, "/start", from_id=31),  # a bare command in a group may be for another bot
        u.text(group, "/status@some_other_bot K7M-39Q-XD2", from_id=31),
        u.text(group, mention_text, from_id=32, entities=entities_for(mention_text)),
        u.text(group, "and what about glass?", from_id=33, reply_to=ours),
        u.text(group, f"/status@{handle[1:]} K7M-39Q-XD2", from_id=34),
    ]
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(*updates)
        standin.wait_for_sent(group, 3)
        standin.wait_until_fetched(updates[-1]["update_id"])
    assert rasa.texts() == ["when is the bin collected on Mill Road?", "and what about glass?",
                            "what is the status of K7M-39Q-XD2?"]
    stored = _stored(db_url)
    assert [m.text for m in stored] == [mention_text, "and what about glass?", f"/status@{handle[1:]} K7M-39Q-XD2"]
    assert [m.meta["telegram"]["addressed_by"] for m in stored] == ["mention", "reply", "command"]
    assert [m.meta["telegram"]["from_user_id"] for m in stored] == [32, 33, 34]


def test_edited_message_is_kept_and_not_answered_twice(db_url, standin):
    rasa = FakeRasa(db_url)
    original = standin.updates.text(16, "when is the libary open?")
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(original)
        standin.wait_for_sent(16)
        standin.push(standin.updates.edited(original, "when is the library open?"))
        standin.push(standin.updates.edited(original, "when is the central library open?"))
        answer, note = standin.wait_for_sent(16, 2)
        standin.push(standin.updates.text(16, "thanks"))
        standin.wait_for_sent(16, 3)
    assert rasa.texts() == ["when is the libary open?", "thanks"]
    assert "edited your message" in note.text
    first, edit1, edit2, _thanks = _stored(db_url)
    assert edit1.meta["edited"]["message"] == first.external_id and edit1.handling == "edit_recorded"
    assert edit2.text == "when is the central library open?"
    assert first.meta["edits"] == 2


def test_other_update_types_are_ignored_and_the_bot_keeps_working(db_url, standin):
    u = standin.updates
    odd = [
        {"update_id": 900001, "callback_query": {"id": "1", "from": u.user(17), "chat_instance": "x", "data": "y"}},
        {"update_id": 900002, "channel_post": u.message(-1009, "news", chat_type="channel")},
        {"update_id": 900003, "my_chat_member": {"chat": u.chat(17), "from": u.user(17), "date": 0,
                                                 "old_chat_member": {"status": "member", "user": u.bot_user},
                                                 "new_chat_member": {"status": "kicked", "user": u.bot_user,
                                                                     "until_date": 0}}},
        {"update_id": 900004, "something_new_from_telegram": {"field": 1}},
        u.update(u.message(-100888, new_chat_members=[u.user(40)])),  # a service message in a group
        u.update(u.message(17, pinned_message={"message_id": 1, "date": 0, "chat": u.chat(17)})),
    ]
    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(*odd)
        standin.push(u.text(17, "still there?"))
        (reply,) = standin.wait_for_sent(17)
    assert reply.text == "echo: still there?"
    assert [m.text for m in _stored(db_url)] == ["still there?"]
    assert [m.chat_id for m in standin.sent] == [17]


def test_redelivered_update_is_not_answered_twice(db_url, standin):
    rasa = FakeRasa(db_url)
    update = standin.updates.text(18, "hello")
    settings = telegram_settings(db_url, standin)
    with PollingBot(settings, rasa, standin):
        standin.push(update)
        standin.wait_for_sent(18)
    # Telegram sends it again (say we crashed before confirming it) to a restarted bot.
    with PollingBot(settings, rasa, standin):
        standin.push(update, standin.updates.text(18, "bye"))
        standin.wait_for_sent(18, 2)
    assert [m.text for m in standin.sent_to(18)] == ["echo: hello", "echo: bye"]
    assert rasa.texts() == ["hello", "bye"]


def test_one_chat_is_handled_in_order_while_other_chats_go_ahead(db_url, standin):
    rasa = FakeRasa(db_url, delays={"first, and slow": 1.5})
    u = standin.updates
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(u.text(21, "first, and slow"), u.text(21, "second"), u.text(22, "another citizen"))
        standin.wait_for_sent(21, 2)
        standin.wait_for_sent(22)
    order = [(m.chat_id, m.text) for m in standin.sent]
    # chat 22 did not wait for chat 21's slow message ...
    assert order.index((22, "echo: another citizen")) < order.index((21, "echo: first, and slow"))
    # ... but chat 21's second message waited for its first, in Rasa and in the replies.
    assert [t for a, t in rasa.seen if a == "21"] == ["first, and slow", "second"]
    assert [m.text for m in standin.sent_to(21)] == ["echo: first, and slow", "echo: second"]


def test_many_chats_many_messages_each_chat_in_order(db_url, standin):
    import random

    rng = random.Random(7)
    texts = {chat: [f"chat {chat} message {i}" for i in range(8)] for chat in (31, 32, 33, 34)}
    rasa = FakeRasa(db_url, delays={t: rng.uniform(0, 0.08) for ts in texts.values() for t in ts})
    interleaved = [standin.updates.text(chat, texts[chat][i]) for i in range(8) for chat in texts]
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(*interleaved)
        for chat in texts:
            standin.wait_for_sent(chat, 8)
    for chat, sent_texts in texts.items():
        assert [m.text for m in standin.sent_to(chat)] == [f"echo: {t}" for t in sent_texts]
        assert [t for a, t in rasa.seen if a == str(chat)] == sent_texts


def test_the_bot_token_never_reaches_the_logs(db_url, standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.fail_next("sendMessage", 500)
    with PollingBot(telegram_settings(db_url, standin), FakeRasa(db_url), standin):
        standin.push(standin.updates.text(19, "hello"))
        deadline = time.monotonic() + 20
        while not standin.calls_of("sendMessage") and time.monotonic() < deadline:
            time.sleep(0.05)
    logged = "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records)
    assert "getUpdates" in logged or "get_updates" in logged  # the library did log its requests
    assert TOKEN not in logged and TOKEN.split(":")[1] not in logged


def test_an_update_is_confirmed_to_telegram_only_after_it_was_handled(db_url, standin):
    """Confirming on fetch (the Updater's way) loses the update if the process dies while
    handling it; here Telegram keeps it until the message and its answer are stored."""
    rasa = FakeRasa(db_url, delays={"slow question": 1.5})
    update = standin.updates.text(4250, "slow question")
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(update)
        deadline = time.monotonic() + 10
        while rasa.texts() != ["slow question"] and time.monotonic() < deadline:
            time.sleep(0.02)
        # The assistant is still thinking: the update must not be confirmed yet.
        assert standin._confirmed_offset <= update["update_id"]
        standin.wait_for_sent(4250)
        standin.wait_until_fetched(update["update_id"])


def test_an_update_fetched_again_after_a_stop_is_not_answered_twice(db_url, standin):
    """Stopped before confirming (as after a crash), Telegram sends the batch again."""
    rasa = FakeRasa(db_url)
    update = standin.updates.text(4251, "hello")
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(update)
        standin.wait_for_sent(4251)
    standin.push(update)  # redelivered
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.wait_until_fetched(update["update_id"])
    assert len(standin.sent_to(4251)) == 1
    assert [m.text for m in _stored(db_url)] == ["hello"]


def test_an_update_that_cannot_be_stored_is_fetched_again_not_lost(db_url, standin, monkeypatch):
    """The database is down for longer than one delivery's attempts: the update is not
    confirmed, Telegram sends it again, and it is stored and answered once."""
    attempts = store_fails(monkeypatch, times=HANDLE_ATTEMPTS + 1)
    rasa = FakeRasa(db_url)
    update = standin.updates.text(4260, "is anyone there?")
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(update)
        standin.wait_for_sent(4260)
        standin.wait_until_fetched(update["update_id"])
    assert attempts["n"] == HANDLE_ATTEMPTS + 2  # one whole delivery failed, the next one stored it
    assert [m.text for m in standin.sent_to(4260)] == ["echo: is anyone there?"]
    assert [m.text for m in _stored(db_url)] == ["is anyone there?"]


def test_an_update_that_never_stores_is_given_up_after_the_window_and_the_rest_go_on(
    db_url, standin, monkeypatch, caplog
):
    """One message that can never be stored must not hold the bot back for the 24 hours
    Telegram keeps it: later messages are answered meanwhile, and after
    ``telegram_retry_unstored_seconds`` it is confirmed and logged as lost."""
    attempts = store_fails(monkeypatch, text="cannot be stored")
    rasa = FakeRasa(db_url)
    stuck = standin.updates.text(4261, "cannot be stored")
    later = standin.updates.text(4262, "hello")
    settings = telegram_settings(db_url, standin, telegram_retry_unstored_seconds=1.5)
    with caplog.at_level(logging.WARNING, logger="bot.channels.telegram"):
        with PollingBot(settings, rasa, standin):
            standin.push(stuck, later)
            standin.wait_for_sent(4262)
            standin.wait_until_fetched(stuck["update_id"])
            standin.wait_until_fetched(later["update_id"])
    assert attempts["n"] >= 2 * HANDLE_ATTEMPTS + 1  # fetched again at least once before giving up
    assert [m.text for m in standin.sent_to(4262)] == ["echo: hello"]
    assert standin.sent_to(4261) == []
    assert [m.text for m in _stored(db_url)] == ["hello"]
    assert any(f"update {stuck['update_id']} could not be stored for" in r.getMessage() and "lost" in r.getMessage()
               for r in caplog.records)


def test_mydata_reaches_the_conversation_and_the_code_and_link_arrive_in_the_chat(db_url, standin):
    """/mydata and /erase are the core's (bot.privacy): the code and then the download link come back in the chat."""
    import re

    rasa = FakeRasa(db_url)
    with PollingBot(telegram_settings(db_url, standin), rasa, standin):
        standin.push(standin.updates.text(21, "/mydata"))
        (asked,) = standin.wait_for_sent(21)
        code = re.search(r"\b(\d{6})\b", asked.text)[1]
        standin.push(standin.updates.text(21, code))
        _, link = standin.wait_for_sent(21, 2)
    assert rasa.seen == []
    assert "/privacy/download/" in link.text
