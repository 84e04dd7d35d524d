"""Subscribing by topic on any channel, "unsubscribe", "stop" honoured for what is already queued,
and the bad input: a "stop" or an "unsubscribe" from an unknown sender, an unknown topic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.api.app import create_app
from bot.identity.consent import current_consents
from bot.identity.models import Consent
from bot.notices import announcements
from bot.notices.commands import VERBS, SubscriptionCommand, parse_subscription_command
from bot.outbox.delivery import queue_outbound
from bot.privacy.notice import parse_privacy_command
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from tests.notices.helpers import API_KEY, settings
from tests.privacy.test_notice import KbRasa


@contextmanager
def _client(db_url: str) -> Iterator[tuple[TestClient, KbRasa]]:
    rasa = KbRasa(db_url)
    with TestClient(create_app(Runtime(settings(db_url), rasa=rasa))) as client:
        yield client, rasa


def _say(client: TestClient, sender: str, text: str, channel: str = "sms") -> dict:
    response = client.post("/api/v1/messages", headers={"X-API-Key": API_KEY},
                           json={"channel": channel, "sender": sender, "text": text})
    assert response.status_code == 200, response.text
    return response.json()


def _reply(body: dict) -> str:
    return body["replies"][-1]["text"]


@pytest.mark.parametrize(("text", "expected"), [
    ("subscribe waste", SubscriptionCommand("subscribe", "waste")),
    ("  News   Waste! ", SubscriptionCommand("subscribe", "waste")),
    ("/subscribe@CityBot bins", SubscriptionCommand("subscribe", "bins")),
    ("subscribe", SubscriptionCommand("usage", "")),
    ("news", SubscriptionCommand("usage", "")),
    ("unsubscribe waste", SubscriptionCommand("unsubscribe", "waste")),
    ("subscribe all", SubscriptionCommand("subscribe", "all")),
    ("unsubscribe", None),  # the privacy command "stop"
    ("how do I subscribe to the waste calendar app on my phone please", None),
    ("newsletter", None),
])
def test_parsing(text, expected) -> None:
    assert parse_subscription_command(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("suscribirme a residuos", SubscriptionCommand("subscribe", "residuos")),
    ("Suscribir basura", SubscriptionCommand("subscribe", "basura")),
    ("/suscribir@CityBot basura", SubscriptionCommand("subscribe", "basura")),
    ("¡Noticias de tráfico!", SubscriptionCommand("subscribe", "trafico")),
    ("suscribirse al agua", SubscriptionCommand("subscribe", "agua")),
    ("suscribirme", SubscriptionCommand("usage", "")),
    ("noticias", SubscriptionCommand("usage", "")),
    ("suscribirme a todo", SubscriptionCommand("subscribe", "todo")),
    ("darme de baja de basura", SubscriptionCommand("unsubscribe", "basura")),
    ("desuscribirme de residuos", SubscriptionCommand("unsubscribe", "residuos")),
    ("subscribe to waste", SubscriptionCommand("subscribe", "waste")),
    ("unsubscribe from basura", SubscriptionCommand("unsubscribe", "basura")),
    ("desuscribirme", None),  # the privacy command "stop", like "unsubscribe"
    ("darme de baja", None),
    ("baja", None),
    ("baja tensión en mi calle", None),
    ("noticias sobre el corte de agua de hoy?", None),
    ("¿cómo me suscribo al calendario de residuos en el móvil, por favor?", None),
    ("suscripción", None),
])
def test_parsing_spanish(text, expected) -> None:
    assert parse_subscription_command(text) == expected


def test_every_unsubscribe_verb_alone_is_the_privacy_stop() -> None:
    """Else "desuscribirme" alone would be neither command, and reach the assistant."""
    for words in VERBS.values():
        for verb, kind in words.items():
            if kind == "unsubscribe":
                assert parse_subscription_command(verb) is None
                command = parse_privacy_command(verb)
                assert command is not None and command.kind == "stop", verb


def test_suscribirme_a_basura_then_darme_de_baja(db_url: str) -> None:
    with _client(db_url) as (client, rasa):
        given = _say(client, "+3460009", "Suscribirme a la basura")
        unknown = _say(client, "+3460009", "suscribirme a piscinas")
        left = _say(client, "+3460009", "darme de baja de residuos")
    assert given["handling"]["kind"] == "consent_given" and "Waste collection" in _reply(given)
    assert unknown["handling"]["kind"] == "subscription_unknown"
    assert left["handling"]["kind"] == "consent_withdrawn"
    assert rasa.seen == []
    with session_factory(db_url)() as session:
        (consent,) = session.scalars(select(Consent)).all()
        assert consent.purpose == "announcements:waste" and consent.source == "command:subscribe waste"


def test_subscribe_by_topic_word_then_unsubscribe(db_url: str) -> None:
    with _client(db_url) as (client, rasa):
        usage = _say(client, "+3460001", "subscribe")
        given = _say(client, "+3460001", "subscribe bins")
        again = _say(client, "+3460001", "news waste")
        left = _say(client, "+3460001", "unsubscribe waste")
    assert "Waste collection (\"waste\")" in _reply(usage) and usage["handling"]["kind"] == "subscription_usage"
    assert given["handling"]["kind"] == "consent_given" and "Waste collection" in _reply(given)
    assert again["handling"]["kind"] == "consent_unchanged"
    assert left["handling"]["kind"] == "consent_withdrawn"
    assert rasa.seen == []
    with session_factory(db_url)() as session:
        (consent,) = session.scalars(select(Consent)).all()
        assert (consent.purpose, consent.channel, consent.source) == ("announcements:waste", "sms",
                                                                      "command:subscribe waste")
        assert consent.withdrawn_source == "command:unsubscribe waste"


def test_subscribe_all_and_a_topic_cannot_be_left_out_of_it(db_url: str) -> None:
    with _client(db_url) as (client, _rasa):
        _say(client, "+3460002", "subscribe all")
        kept = _say(client, "+3460002", "unsubscribe waste")
        left = _say(client, "+3460002", "unsubscribe all")
    assert kept["handling"]["kind"] == "consent_unchanged" and '"unsubscribe all"' in _reply(kept)
    assert left["handling"]["kind"] == "consent_withdrawn"
    with session_factory(db_url)() as session:
        assert session.scalars(select(Consent.purpose)).all() == ["announcements"]
        assert session.scalars(select(Consent.withdrawn_at)).one() is not None


def test_unknown_topic_and_unknown_sender_change_nothing(db_url: str) -> None:
    with _client(db_url) as (client, _rasa):
        unknown = _say(client, "+3460003", "subscribe <b>parking</b>")
        stranger_stop = _say(client, "+3460004", "stop")
        stranger_unsubscribe = _say(client, "+3460005", "unsubscribe waste")
    assert unknown["handling"]["kind"] == "subscription_unknown" and "Waste collection" in _reply(unknown)
    assert stranger_stop["handling"]["kind"] == "consent_unchanged"
    assert stranger_unsubscribe["handling"]["kind"] == "consent_unchanged"
    assert "do not receive news on Waste collection" in _reply(stranger_unsubscribe)
    with session_factory(db_url)() as session:
        assert session.scalars(select(Consent)).all() == []


def test_stop_cancels_what_is_queued_even_where_the_client_fetches_it(db_url: str) -> None:
    """The web chat's client fetches its messages, so no delivery-time check would stop them:
    "stop" settles them at once. Other pending messages (an agent's reply) are left alone."""
    config = settings(db_url)
    with _client(db_url) as (client, _rasa):
        first = _say(client, "browser-1", "subscribe waste", channel="web")
        with session_factory(db_url).begin() as session:
            citizen_id = session.get(Message, first["message_id"]).citizen_id
            announcements.send(session, config, "topic", "waste", "Bins on Tuesday.", ["web"], created_by="sue")
            identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.address == "browser-1")).one()
            queue_outbound(session, identity=identity, text="An agent's reply", author="agent:ana")
        _say(client, "browser-1", "stop", channel="web")
        fetched = client.get("/api/v1/conversations/web/browser-1/replies", headers={"X-API-Key": API_KEY})
    with session_factory(db_url)() as session:
        assert current_consents(session, citizen_id) == {}
        statuses = dict(session.execute(select(Message.author, Message.delivery_status)
                                        .where(Message.author.in_(("announcement", "agent:ana")))).all())
    assert statuses["announcement"] == "failed"
    assert fetched.status_code == 200, fetched.text
    assert [r["text"] for r in fetched.json()["replies"]] == ["An agent's reply"]
