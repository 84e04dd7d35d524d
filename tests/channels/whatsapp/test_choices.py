""""Do you mean ...?" on WhatsApp: reply buttons or a list within Meta's limits, and the
citizen's pick back through the webhook and the real Conversation and store."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.api.app import create_app
from bot.channels.whatsapp.graph import (
    BUTTON_TITLE_LIMIT,
    ROW_DESCRIPTION_LIMIT,
    ROW_TITLE_LIMIT,
    TEMPLATE_META_KEY,
    GraphSender,
)
from bot.channels.whatsapp.payload import parse_webhook
from bot.channels.whatsapp.processing import MALFORMED_CHOICE_REPLY
from bot.core import clarification
from bot.core.inbound import KbChoice
from bot.outbox.outbound import DeliveryError, OutboundMessage
from bot.runtime import Runtime
from bot.store.db import session_factory
from bot.store.models import KbOffer, Message
from bot.texts import text as catalogue_text
from tests.channels.telegram.choice_support import OFFERED, ChoiceRasa, choices_meta
from tests.channels.whatsapp.conftest import (
    ACCESS_TOKEN,
    PHONE_NUMBER_ID,
    WebhookClient,
    make_settings,
    message,
    new_wamid,
    webhook,
)
from tests.channels.whatsapp.graph_standin import limit_problem

WA_ID = "34600000077"
LONG = [("How do I " + "really " * 20 + "get rid of an old sofa?")[:150],
        ("Where can I " + "possibly " * 20 + "pay a parking fine?")[:150],
        ("When is the " + "household " * 20 + "waste collected?")[:150]]


def _text(titles: list[str]) -> str:
    options = [clarification.ChoiceOption(n, f"e{n}", t) for n, t in enumerate(titles, start=1)]
    return f"Do you mean one of these?\n{clarification.options_text(options)}\nReply with the number."


def _payloads(text: str, meta: dict) -> list[dict]:
    sender = GraphSender(graph_url="http://127.0.0.1:9", phone_number_id=PHONE_NUMBER_ID, access_token="t",
                         timeout_seconds=1.0)
    return sender.payloads(OutboundMessage(message_id=1, channel="whatsapp", address=WA_ID, text=text, meta=meta))


# --- rendering ---------------------------------------------------------------------------


def test_two_long_questions_and_none_are_three_reply_buttons_under_the_full_text():
    text = _text(LONG[:2])
    (payload,) = _payloads(text, choices_meta("abcdefgh2345", LONG[:2]))
    assert limit_problem(payload) is None
    interactive = payload["interactive"]
    assert interactive["type"] == "button" and interactive["body"]["text"] == text
    buttons = [b["reply"] for b in interactive["action"]["buttons"]]
    assert [b["id"] for b in buttons] == ["kb:abcdefgh2345:1", "kb:abcdefgh2345:2", "kb:abcdefgh2345:0"]
    assert [b["title"] for b in buttons] == ["Option 1", "Option 2", "None of these"]
    assert all(len(b["title"]) <= BUTTON_TITLE_LIMIT for b in buttons)


def test_short_questions_are_their_own_button_titles_unless_two_would_look_alike():
    (payload,) = _payloads(_text(["Bin days?"]), choices_meta("abc", ["Bin days?"]))
    assert [b["reply"]["title"] for b in payload["interactive"]["action"]["buttons"]] == ["Bin days?", "None of these"]
    (payload,) = _payloads(_text(["Bin days?", "bin days?"]), choices_meta("abc", ["Bin days?", "bin days?"]))
    assert [b["reply"]["title"] for b in payload["interactive"]["action"]["buttons"]] == [
        "Option 1", "Option 2", "None of these"]


def test_three_long_questions_and_none_are_a_list_within_metas_limits():
    text = _text(LONG)
    (payload,) = _payloads(text, choices_meta("abcdefgh2345", LONG))
    assert limit_problem(payload) is None
    interactive = payload["interactive"]
    assert interactive["type"] == "list" and interactive["body"]["text"] == text
    assert len(interactive["action"]["button"]) <= 20
    (section,) = interactive["action"]["sections"]
    rows = section["rows"]
    assert [r["id"] for r in rows] == [KbChoice("abcdefgh2345", n).encode() for n in (1, 2, 3, 0)]
    assert [r["title"] for r in rows] == ["Option 1", "Option 2", "Option 3", "None of these"]
    assert all(len(r["title"]) <= ROW_TITLE_LIMIT and len(r["description"]) <= ROW_DESCRIPTION_LIMIT for r in rows)
    assert rows[0]["description"].startswith("How do I really") and rows[0]["description"].endswith("\u2026")
    assert rows[3]["description"] == clarification.none_option_title()


def test_a_question_too_long_for_a_body_goes_as_text_then_the_buttons():
    text = _text(LONG) + "\n" + "More words. " * 100
    *texts, interactive = _payloads(text, choices_meta("abcdefgh2345", LONG))
    assert [p["type"] for p in texts] == ["text"] and texts[0]["text"]["body"] == text
    assert interactive["type"] == "interactive" and interactive["interactive"]["body"]["text"] == catalogue_text("whatsapp.short_body")
    assert limit_problem(interactive) is None


def test_outside_the_window_the_template_goes_without_buttons_and_odd_choices_mean_plain_text():
    template = {"name": "reply_waiting", "language": "en", "parameters": ["x"]}
    (payload,) = _payloads(_text(LONG), {**choices_meta("abc", LONG), TEMPLATE_META_KEY: template})
    assert payload["type"] == "template"
    (payload,) = _payloads("hello", {"choices": {"offer": "no:colons", "options": [{"n": 1, "title": "x"}]}})
    assert payload["type"] == "text"


def test_the_stand_in_refuses_what_meta_refuses_and_the_sender_does_not_retry_it(graph):
    sender = GraphSender(graph_url=graph.url, phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
                         timeout_seconds=2.0)
    good = OutboundMessage(message_id=1, channel="whatsapp", address=WA_ID, text=_text(LONG),
                           meta=choices_meta("abcdefgh2345", LONG))
    assert asyncio.run(sender.send(good)).external_id == "wamid.standin.1"
    assert graph.refused == [] and len(graph.requests[0].choices) == 4
    (payload,) = sender.payloads(good)
    payload["interactive"]["action"]["sections"][0]["rows"][0]["title"] = "x" * 25
    assert "Row title length invalid" in (limit_problem(payload) or "")
    payload = _payloads(_text(LONG[:1]), choices_meta("abc", LONG[:1]))[0]
    payload["interactive"]["action"]["buttons"][0]["reply"]["title"] = "y" * 21

    async def post() -> None:
        import httpx

        async with httpx.AsyncClient() as client:
            await sender._post(client, payload)

    with pytest.raises(DeliveryError) as caught:
        asyncio.run(post())
    assert not caught.value.retryable and "131009" in caught.value.reason
    assert "Button title length invalid" in caught.value.reason


# --- the citizen's pick in the webhook ---------------------------------------------------


def _reply(kind: str, reply_id: str, title: str, *, wa_id: str = WA_ID, wamid: str | None = None) -> dict:
    body = {"type": kind, kind: {"id": reply_id, "title": title}}
    return message(wa_id, "interactive", body, wamid=wamid, context={"from": "15550001111", "id": "wamid.ours"})


@pytest.mark.parametrize("kind", ["button_reply", "list_reply"])
def test_a_pick_is_an_inbound_message_with_its_choice_and_title(kind):
    events = parse_webhook(webhook([_reply(kind, "kb:abcdefgh2345:2", "Option 2", wamid="wamid.X1")]),
                           phone_number_id=PHONE_NUMBER_ID)
    (parsed,) = events.messages
    inbound = parsed.inbound
    assert (inbound.sender, inbound.text, inbound.external_id) == (WA_ID, "Option 2", "wamid.X1")
    assert inbound.choice == KbChoice("abcdefgh2345", 2) and not parsed.malformed_choice


@pytest.mark.parametrize(("reply_id", "malformed"), [("kb:../x:1", True), ("kb:abc:999", True), ("kb:", True),
                                                      ("b1", False), ("", False)])
def test_a_reply_id_that_is_not_a_choice_carries_none(reply_id, malformed):
    (parsed,) = parse_webhook(webhook([_reply("button_reply", reply_id, "Option 1")]),
                              phone_number_id=PHONE_NUMBER_ID).messages
    assert parsed.inbound.choice is None and parsed.malformed_choice is malformed


@pytest.fixture
def choosing(db_url, graph):
    settings = make_settings(db_url, graph.url)
    rasa = ChoiceRasa(settings)
    return WebhookClient(TestClient(create_app(Runtime(settings, rasa=rasa)))), rasa


def _inbound(db_url: str) -> list[Message]:
    with session_factory(db_url)() as session:
        return list(session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def _offer(db_url: str) -> KbOffer:
    with session_factory(db_url)() as session:
        return session.scalars(select(KbOffer)).one()


def test_a_pick_is_answered_once_whether_redelivered_or_tapped_again(choosing, db_url, graph):
    wa, rasa = choosing
    assert wa.post(webhook([message(WA_ID, text="I want to build something")])).status_code == 200
    (asking,) = graph.wait_for(WA_ID)
    offer = _offer(db_url)
    assert asking.body["type"] == "interactive" and asking.interactive["type"] == "list"  # 3 options + none
    assert [row_id for row_id, _t, _d in asking.choices] == [f"kb:{offer.token}:{n}" for n in (1, 2, 3, 0)]
    row_id, title, _description = asking.choices[1]
    pick = webhook([_reply("list_reply", row_id, title, wamid=new_wamid())])
    assert wa.post(pick).status_code == 200
    assert wa.post(pick).status_code == 200  # Meta delivers the webhook again
    again = webhook([_reply("list_reply", asking.choices[2][0], asking.choices[2][1], wamid=new_wamid())])
    assert wa.post(again).status_code == 200  # the list opened and tapped a second time
    texts = [r.text for r in graph.wait_for(WA_ID, 3)]
    assert texts[1:] == [f"answer: {OFFERED[1]}", "choice: already_answered"]
    assert rasa.seen.count(clarification.rasa_payload(KbChoice(offer.token, 2))) == 1
    stored = _inbound(db_url)
    assert len(stored) == 3 and stored[1].text == title and stored[1].meta["kb_choice"] == row_id
    assert stored[1].handling == "kb_answer" and stored[2].handling == "choice_already_answered"


def test_another_citizens_pick_and_a_tampered_id_are_answered_and_settle_nothing(choosing, db_url, graph):
    wa, rasa = choosing
    assert wa.post(webhook([message(WA_ID, text="I want to build something")])).status_code == 200
    (asking,) = graph.wait_for(WA_ID)
    other = "34600000078"
    assert wa.post(webhook([_reply("list_reply", asking.choices[0][0], "Option 1", wa_id=other)])).status_code == 200
    assert wa.post(webhook([_reply("button_reply", "kb:../../x:1", "Option 1")])).status_code == 200
    assert [r.text for r in graph.wait_for(other)] == ["choice: invalid"]
    assert [r.text for r in graph.wait_for(WA_ID, 2)][1] == catalogue_text(MALFORMED_CHOICE_REPLY)
    assert _offer(db_url).status == clarification.PENDING
    tampered = _inbound(db_url)[-1]
    assert (tampered.text, tampered.handling) == ("Option 1", "choice_invalid")
    assert tampered.meta["interactive"]["id"] == "kb:../../x:1"
    assert len(rasa.seen) == 2  # the question and the other citizen's pick; never the tampered one
