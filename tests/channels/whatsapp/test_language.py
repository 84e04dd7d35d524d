"""WhatsApp and languages: its webhook says nothing of the citizen's language (no hint), and the
words the sender adds itself (button and list titles) are in the language of the reply's text."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp.graph import GraphSender
from bot.channels.whatsapp.payload import parse_webhook
from bot.core import clarification
from bot.outbox.outbound import OutboundMessage
from bot.texts import text
from tests.channels.telegram.choice_support import choices_meta
from tests.channels.whatsapp.conftest import PHONE_NUMBER_ID, message, webhook

WA_ID = "34600000078"
LONG = [("¿Cómo " + "realmente " * 20 + "me deshago de un sofá viejo?")[:150],
        ("¿Dónde " + "posiblemente " * 20 + "pago una multa?")[:150],
        ("¿Cuándo " + "doméstica " * 20 + "se recoge la basura?")[:150]]


def _payload(titles: list[str], language: str | None) -> dict:
    sender = GraphSender(graph_url="http://127.0.0.1:9", phone_number_id=PHONE_NUMBER_ID, access_token="t",
                         timeout_seconds=1.0)
    options = [clarification.ChoiceOption(n, f"e{n}", t) for n, t in enumerate(titles, start=1)]
    (payload,) = sender.payloads(OutboundMessage(
        message_id=1, channel="whatsapp", address=WA_ID, text="¿Quiere decir?\n" + "\n".join(o.title for o in options),
        meta=choices_meta("abcdefgh2345", titles), language=language))
    return payload["interactive"]


@pytest.mark.parametrize("language", ["es", None])
def test_reply_buttons_are_titled_in_the_replys_language(language):
    buttons = [b["reply"]["title"] for b in _payload(LONG[:2], language)["action"]["buttons"]]
    assert buttons == [text("whatsapp.option", language, n=1), text("whatsapp.option", language, n=2),
                       text("whatsapp.none_button", language)]
    if language:
        assert buttons[-1] != text("whatsapp.none_button")


def test_a_lists_button_and_section_are_titled_in_it_too():
    action = _payload(LONG, "es")["action"]
    assert action["button"] == text("whatsapp.list_button", "es")
    assert action["sections"][0]["title"] == text("whatsapp.section_title", "es")
    assert action["sections"][0]["rows"][-1]["title"] == text("whatsapp.none_button", "es")


def test_the_webhook_gives_no_language_hint():
    (parsed,) = parse_webhook(webhook([message(WA_ID, text="hola")]), phone_number_id=PHONE_NUMBER_ID).messages
    assert parsed.inbound.text == "hola" and parsed.inbound.language_hint is None
