"""The privacy notice and the consent commands, through the API as a client sends them.

A fake Rasa answers every question from the KB (it records the turn as the action server
would), so what the tests see is the assistant's normal first answer with the notice on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from pydantic import ValidationError
from sqlalchemy import select

from bot.api.app import create_app
from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.core.turns import METADATA_KEY
from bot.identity.consent import current_consents, give_consent
from bot.identity.models import Consent
from bot.privacy.notice import notice_text, parse_privacy_command
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.messages import record_handling
from bot.store.models import ChannelIdentity, Message
from bot.texts import text

API_KEY = "test-key-0123456789abcdef"
ANSWER = "Bins are collected on Mondays."


class KbRasa:
    """Answers everything from the KB and records the turn, as the action server does."""

    def __init__(self, db_url: str) -> None:
        self.sessions = session_factory(db_url)
        self.seen: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.seen.append(text)
        with self.sessions.begin() as session:
            message = session.get(Message, metadata[METADATA_KEY])
            record_handling(message, intent="faq", confidence=0.99, handling="kb_answer", kb_entry_id="bins")
        return [{"recipient_id": sender, "text": ANSWER}]

    def close(self) -> None:
        pass


def _settings(db_url: str, **overrides: object) -> Settings:
    return Settings(_env_file=None, api_keys=API_KEY, database_url=db_url, **overrides)


@contextmanager
def _client(db_url: str, **overrides: object) -> Iterator[tuple[TestClient, KbRasa, Settings]]:
    rasa = KbRasa(db_url)
    settings = _settings(db_url, **overrides)
    with TestClient(create_app(Runtime(settings, rasa=rasa))) as client:
        yield client, rasa, settings


def _say(client: TestClient, sender: str, text: str, channel: str = "web") -> dict:
    response = client.post("/api/v1/messages", headers={"X-API-Key": API_KEY},
                           json={"channel": channel, "sender": sender, "text": text})
    assert response.status_code == 200, response.text
    return response.json()


def _texts(body: dict) -> list[str]:
    return [reply["text"] for reply in body["replies"]]


def _stored_notices(db_url: str, notice: str) -> int:
    with session_factory(db_url)() as session:
        texts = session.scalars(select(Message.text).where(Message.direction == "out"))
        return sum(notice in text for text in texts)


def test_first_contact_gets_the_notice_once_with_the_answer(db_url: str) -> None:
    with _client(db_url) as (client, rasa, settings):
        notice = notice_text(settings)
        first = _say(client, "ana", "When are bins collected?")
        second = _say(client, "ana", "And glass?")
    # One reply: the answer intact, then the notice as its footer.
    assert _texts(first) == [f"{ANSWER}\n\n{notice}"] and first["handling"]["kind"] == "kb_answer"
    assert _texts(second) == [ANSWER]
    assert _stored_notices(db_url, notice) == 1
    with session_factory(db_url)() as session:
        identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == "ana")).one()
        assert identity.notice_sent_at is not None


def test_the_notice_names_the_retention_periods_and_the_data_commands(db_url: str) -> None:
    notice = notice_text(_settings(db_url))
    assert "1 year" in notice and "2 years" in notice and "90 days" in notice
    assert '"my data"' in notice and '"erase my data"' in notice and '"privacy"' in notice
    shorter = notice_text(_settings(db_url, retention_conversation_days=30, retention_ticket_days=365))
    assert "30 days" in shorter and "1 year" in shorter


def test_a_second_channel_is_a_first_contact_too(db_url: str) -> None:
    with _client(db_url) as (client, _rasa, settings):
        notice = notice_text(settings)
        assert _texts(_say(client, "+34600123456", "When are bins collected?", channel="sms"))[-1].endswith(notice)
        assert _texts(_say(client, "+34600123456", "When are bins collected?", channel="web"))[-1].endswith(notice)
        assert _texts(_say(client, "+34600123456", "Thanks", channel="sms")) == [ANSWER]
    assert _stored_notices(db_url, notice) == 2


def test_privacy_repeats_the_notice_without_asking_the_assistant(db_url: str) -> None:
    with _client(db_url) as (client, rasa, settings):
        notice = notice_text(settings)
        _say(client, "ben", "When are bins collected?")
        again = _say(client, "ben", "  Privacy. ")
        first_word = _say(client, "cleo", "privacy")  # as the very first message: the notice once, not twice
    assert _texts(again) == [notice] and _texts(first_word) == [notice]
    assert again["handling"]["kind"] == "privacy_notice"
    assert rasa.seen == ["When are bins collected?"]
    with session_factory(db_url)() as session:
        inbound = session.scalars(select(Message).where(Message.text == "  Privacy. ")).one()
        stored = session.scalars(select(Message).where(Message.reply_to_id == inbound.id)).one()
        assert stored.text == notice and stored.author == "assistant" and inbound.handling == "privacy_notice"


def test_a_question_that_contains_the_words_goes_to_the_assistant(db_url: str) -> None:
    with _client(db_url) as (client, rasa, _settings_):
        _say(client, "dan", "The bus stop on Elm Street is broken, please stop the leak")
        _say(client, "dan", "what is your privacy policy for cameras")
    assert len(rasa.seen) == 2


def test_notify_me_then_stop_records_consent_with_time_and_channel(db_url: str) -> None:
    with _client(db_url) as (client, rasa, _s):
        _say(client, "eve", "When are bins collected?")
        given = _say(client, "eve", "Notify me")
        again = _say(client, "eve", "start")
        stopped = _say(client, "eve", "STOP")
        stopped_again = _say(client, "eve", "stop")
    assert given["handling"]["kind"] == "consent_given" and '"stop"' in _texts(given)[0]
    assert again["handling"]["kind"] == "consent_unchanged" and "already" in _texts(again)[0]
    assert stopped["handling"]["kind"] == "consent_withdrawn" and '"notify me"' in _texts(stopped)[0]
    assert stopped_again["handling"]["kind"] == "consent_unchanged"
    assert len(rasa.seen) == 1
    with session_factory(db_url)() as session:
        (consent,) = session.scalars(select(Consent)).all()
        assert consent.purpose == "notifications" and consent.channel == "web"
        assert consent.source == "command:notify me" and consent.withdrawn_source == "command:stop"
        assert consent.given_at <= consent.withdrawn_at


def test_stop_from_an_unknown_sender_changes_no_consent(db_url: str) -> None:
    with _client(db_url) as (client, rasa, settings):
        body = _say(client, "stranger", "stop", channel="sms")
    assert body["handling"]["kind"] == "consent_unchanged"
    assert _texts(body)[0].startswith("You do not receive notifications")
    assert rasa.seen == []
    with session_factory(db_url)() as session:
        assert session.scalars(select(Consent)).all() == []


def test_stop_withdraws_every_purpose_in_force(db_url: str) -> None:
    with _client(db_url) as (client, _rasa, _s):
        body = _say(client, "fay", "notify me")
        with session_factory(db_url).begin() as session:
            citizen_id = session.get(Message, body["message_id"]).citizen_id
            give_consent(session, citizen_id, "announcements:waste", channel="console", source="console:ana")
        _say(client, "fay", "stop")
    with session_factory(db_url)() as session:
        assert current_consents(session, citizen_id) == {}
        assert len(session.scalars(select(Consent).where(Consent.withdrawn_at.is_not(None))).all()) == 2


def test_unknown_consent_purposes_are_refused(session) -> None:
    with pytest.raises(ValueError, match="unknown consent purpose"):
        give_consent(session, 1, "marketing", channel="web", source="x")


def test_the_citys_own_notice_and_a_bad_one(db_url: str) -> None:
    own = "We keep chats {conversations} and tickets {tickets}. Write privacy to read this again."
    assert notice_text(_settings(db_url, privacy_notice=own)) == (
        "We keep chats 1 year and tickets 2 years. Write privacy to read this again.")
    with pytest.raises(ValidationError, match="unknown placeholders"):
        _settings(db_url, privacy_notice="We keep {everything} forever")
    with pytest.raises(ValidationError, match="empty"):
        _settings(db_url, privacy_notice="  ")


def test_channels_without_the_notice_get_none(db_url: str) -> None:
    with _client(db_url, privacy_notice_channels="sms") as (client, _rasa, _s):
        assert _texts(_say(client, "gus", "When are bins collected?", channel="web")) == [ANSWER]


def test_telegram_commands_and_a_channel_answer_carry_the_notice(db_url: str) -> None:
    """Telegram's /start is answered by the channel (answer_directly): on first contact the welcome
    ends with the notice, in one message; "/privacy@CityBot" is the privacy command."""
    settings = _settings(db_url)
    conversation = Conversation(settings, session_factory(db_url), KbRasa(db_url))
    welcome = conversation.answer_directly(
        InboundMessage(channel="telegram", sender="4242", text="/start", external_id="1"), "Hello!",
        replies_in_response=False,
    )
    assert welcome.replies == [f"Hello!\n\n{notice_text(settings)}"] and len(welcome.reply_ids) == 1
    again = conversation.handle_inbound(
        InboundMessage(channel="telegram", sender="4242", text="/privacy@CityBot", external_id="2"),
        replies_in_response=False,
    )
    assert again.replies == [notice_text(settings)] and again.handling == "privacy_notice"
    assert parse_privacy_command("/stop") is not None and parse_privacy_command("stop it") is None


def test_the_web_chat_page_shows_the_same_notice_and_the_data_commands(db_url: str) -> None:
    with _client(db_url) as (client, _rasa, settings):
        page = client.get("/chat").text
    assert str(escape(notice_text(settings))) in page
    assert "data protection officer" not in page and "&#34;erase my data&#34;" in page


def test_the_notice_is_claimed_once_per_identity(db_url: str) -> None:
    """Two first messages racing: the conditional update lets exactly one of them carry the notice."""
    from datetime import UTC, datetime

    from bot.privacy.notice import claim_notice
    from bot.store.citizens import get_or_create_identity

    sessions = session_factory(db_url)
    with sessions.begin() as session:
        identity_id = get_or_create_identity(session, "whatsapp", "+34600999000").id
    claims = []
    for _ in range(2):
        with sessions.begin() as session:
            claims.append(claim_notice(session, identity_id, datetime(2030, 1, 1, tzinfo=UTC)))
    assert claims == [True, False]


@pytest.mark.parametrize(("text", "kind", "word"), [
    ("privacy", "privacy", "privacy"), ("Privacidad", "privacy", "privacidad"), ("/privacidad", "privacy", "/privacidad"),
    ("stop", "stop", "stop"), ("¡Baja!", "stop", "baja"), ("baja.", "stop", "baja"), ("Darme de baja", "stop",
     "darme de baja"), ("parar", "stop", "parar"), ("desuscribirme", "stop", "desuscribirme"),
    ("/baja@CityBot", "stop", "/baja"), ("unsubscribe", "stop", "unsubscribe"),
    ("notify me", "give", "notify me"), ("Avísame", "give", "avisame"), ("avisarme", "give", "avisarme"),
    ("NOTIFÍCAME", "give", "notificame"), ("notificarme!", "give", "notificarme"),
])
def test_privacy_commands_in_either_language(text: str, kind: str, word: str) -> None:
    command = parse_privacy_command(text)
    assert command is not None and (command.kind, command.word) == (kind, word)


@pytest.mark.parametrize("text", [
    "baja tensión en mi calle", "la parada del bus está rota", "¿qué es la privacidad?", "para", "bajar",
    "avísame cuando recojan la basura", "no entiendo nada", "dar de baja el coche",
])
def test_spanish_sentences_with_the_words_go_to_the_assistant(text: str) -> None:
    assert parse_privacy_command(text) is None


def test_avisame_then_baja_records_consent_like_the_english_words(db_url: str) -> None:
    with _client(db_url) as (client, rasa, _s):
        _say(client, "eva", "¿Cuándo recogen la basura?")
        given = _say(client, "eva", "Avísame")
        stopped = _say(client, "eva", "¡Baja!")
    assert given["handling"]["kind"] == "consent_given" and stopped["handling"]["kind"] == "consent_withdrawn"
    assert rasa.seen == []  # Spanish is understood without Rasa (bot.core.languages); commands never reach it
    assert text("privacy.consent.given", "es") in given["replies"][0]["text"]  # and answered in Spanish
    assert text("privacy.consent.withdrawn", "es") in stopped["replies"][0]["text"]
    with session_factory(db_url)() as session:
        (consent,) = session.scalars(select(Consent)).all()
        assert consent.source == "command:avisame" and consent.withdrawn_source == "command:baja"
