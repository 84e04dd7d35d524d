"""Answer, ask, or hand over: the "Do you mean ...?" turn, from the first message to its end.

A stand-in for Rasa runs the real outcome functions (the ones the thin actions call)
with a scripted NLU result, so every path through the store is checked on SQLite and
PostgreSQL without a trained model; tests/e2e covers the same with the real Rasa."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import func, select

from bot.core import clarification
from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage, KbChoice
from bot.core.rasa_client import RasaUnavailable
from bot.core.turn_outcomes import (
    Turn,
    answer_faq,
    escalate_turn,
    expire_kb_offer,
    offer_kb_choices,
    settle_kb_choice,
    small_talk,
)
from bot.runtime import Runtime
from bot.settings import PROJECT_ROOT, Settings, get_settings
from bot.store.db import session_factory
from bot.store.models import KbOffer, Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket

RESPONSES = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())["responses"]
BULKY, GARDEN, LIBRARY = "waste-bulky-items", "waste-garden-waste", "culture-library-opening-hours"
# What the scripted NLU makes of each text: (intent, kb_match).
NLU = {
    "how do I get rid of an old sofa": ("faq_unsure", {"offer": [BULKY, GARDEN], "ranking": [
        {"entry": BULKY, "similarity": 0.45}, {"entry": GARDEN, "similarity": 0.40}]}),
    "wen is the libary open": ("faq_unsure", {"offer": [LIBRARY], "ranking": [{"entry": LIBRARY, "similarity": 0.44}]}),
    "When is the library open?": ("faq", {"entry": LIBRARY, "ranking": [{"entry": LIBRARY, "similarity": 0.8}]}),
    "The staff were rude, I want to complain": ("complaint", {"ranking": []}),
    "hello": ("greet", {"ranking": []}),
}


class ScriptedRasa:
    """Rasa's part, scripted: NLU from ``NLU`` (or the payload syntax), then the rule's action."""

    def __init__(self) -> None:
        self.down = False
        self.seen: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.seen.append(text)
        if self.down:
            raise RasaUnavailable("connection refused")
        payload = re.fullmatch(r"/(\w+)(\{.*\})?", text)
        if payload:
            intent = payload.group(1)
            entities = [{"entity": k, "value": v} for k, v in json.loads(payload.group(2) or "{}").items()]
            kb_match: dict = {}
        else:
            intent, kb_match = NLU[text]
            entities = []
        turn = Turn(sender_id=sender, text=text, intent=intent, confidence=0.5, metadata=metadata,
                    kb_match=kb_match, entities=entities)
        action = {"faq": answer_faq, "faq_unsure": offer_kb_choices, "choose_kb_entry": settle_kb_choice,
                  "choose_none": settle_kb_choice, "complaint": escalate_turn, "greet": small_talk,
                  "EXTERNAL_kb_offer_expired": expire_kb_offer}[intent]
        return [{"text": _render(reply.response, reply.variables)} for reply in action(turn, Runtime(get_settings()))]


def _render(response: str, variables: dict) -> str:
    if response.startswith("utter_faq/"):
        return f"ANSWER {response.split('/', 1)[1]}"
    return RESPONSES[response][0]["text"].format(**variables)


@pytest.fixture
def conversation(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Conversation:
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_API_KEYS", "k" * 24)
    get_settings.cache_clear()
    # No first-contact notice here (tests/privacy has it).
    settings = Settings(api_keys="k" * 24, database_url=db_url, privacy_notice_channels="")
    yield Conversation(settings, session_factory(db_url), ScriptedRasa())
    get_settings.cache_clear()


def _say(conversation: Conversation, text: str, sender: str = "c1", channel: str = "web", **kw):
    return conversation.handle_inbound(InboundMessage(channel=channel, sender=sender, text=text, **kw))


def _count(db_url: str, model) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_unsure_question_asks_with_numbered_options_and_structured_choices(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa")
    assert asked.handling == "asked" and asked.ticket is None
    assert asked.offered_entries == [BULKY, GARDEN]
    assert "1. How" in asked.replies[-1] and "0. None of these" in asked.replies[-1]
    assert [o["entry"] for o in asked.choices["options"]] == [BULKY, GARDEN]
    assert asked.choices["none"]["n"] == 0
    assert _count(db_url, Ticket) == 0


def test_typed_number_answers_the_picked_question_without_a_ticket(conversation, db_url) -> None:
    _say(conversation, "how do I get rid of an old sofa")
    picked = _say(conversation, "1")
    assert (picked.handling, picked.kb_entry_id, picked.replies) == ("kb_answer", BULKY, [f"ANSWER {BULKY}"])
    assert _count(db_url, Ticket) == 0
    with session_factory(db_url)() as session:
        offer = session.scalars(select(KbOffer)).one()
        assert (offer.status, offer.chosen_entry) == ("answered", BULKY)
        # The citizen's "1" is stored exactly as typed, not as the payload Rasa saw.
        assert session.get(Message, picked.message_id).text == "1"


def test_button_tap_answers_and_a_second_tap_is_told_it_was_answered(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa", sender="tg1", channel="telegram")
    token = asked.choices["offer"]
    first = _say(conversation, "How do I get rid of an old sofa?", sender="tg1", channel="telegram",
                 choice=KbChoice(token, 2), external_id="cb-1")
    assert (first.handling, first.kb_entry_id) == ("kb_answer", GARDEN)
    again = _say(conversation, "How do I get rid of an old sofa?", sender="tg1", channel="telegram",
                 choice=KbChoice(token, 2), external_id="cb-2")
    assert again.handling == "choice_already_answered" and again.kb_entry_id is None
    assert "already answered" in again.replies[0]
    retried = _say(conversation, "How do I get rid of an old sofa?", sender="tg1", channel="telegram",
                   choice=KbChoice(token, 2), external_id="cb-1")
    assert retried.duplicate and retried.replies == first.replies
    assert _count(db_url, Ticket) == 0


def test_none_opens_one_ticket_from_the_question_with_the_offer_on_record(conversation, db_url) -> None:
    _say(conversation, "how do I get rid of an old sofa")
    declined = _say(conversation, "0")
    assert declined.handling == "escalated" and declined.ticket is not None
    assert declined.ticket.id in declined.replies[0]
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.subject.startswith("how do I get rid of an old sofa")
        notes = [e.body for e in ticket.events if e.kind == "note"]
        assert any("asked the citizen whether they meant" in n and BULKY in n and "none of these" in n for n in notes)
        texts = {m.text for m in session.scalars(select(Message).where(Message.ticket_id == ticket.id))}
        assert {"how do I get rid of an old sofa", "0"} <= texts
        assert any(t.startswith("I want to be sure") for t in texts)  # the offer is in the transcript


def test_new_question_instead_of_a_pick_hands_the_first_over_and_answers_the_second(conversation, db_url) -> None:
    _say(conversation, "how do I get rid of an old sofa")
    moved_on = _say(conversation, "When is the library open?")
    assert moved_on.handling == "kb_answer" and moved_on.kb_entry_id == LIBRARY
    assert moved_on.replies[0].startswith("About your earlier question:") and "ticket" in moved_on.replies[0]
    assert moved_on.replies[-1] == f"ANSWER {LIBRARY}"
    with session_factory(db_url)() as session:
        assert session.scalars(select(KbOffer)).one().status == "superseded"
    assert _count(db_url, Ticket) == 1


def test_complaint_is_never_asked_about(conversation, db_url) -> None:
    handled = _say(conversation, "The staff were rude, I want to complain")
    assert handled.handling == "escalated" and handled.choices is None and _count(db_url, KbOffer) == 0


def test_email_never_asks_it_hands_over(conversation, db_url) -> None:
    handled = _say(conversation, "how do I get rid of an old sofa", sender="a@example.org", channel="email")
    assert handled.handling == "escalated" and handled.choices is None and _count(db_url, KbOffer) == 0


def test_silence_until_the_time_out_opens_the_ticket_and_tells_the_citizen(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa", sender="tg2", channel="telegram")
    assert conversation.expire_offers() == []  # not yet due
    later = utcnow() + timedelta(minutes=31)
    reply_ids = conversation.expire_offers(now=later)
    assert len(reply_ids) == 1 and conversation.expire_offers(now=later) == []  # once only
    with session_factory(db_url)() as session:
        reply = session.get(Message, reply_ids[0])
        assert reply.text.startswith("I haven't heard back from you, so I've passed your question")
        assert reply.delivery_status == "pending" and reply.reply_to_id == asked.message_id
        ticket = session.scalars(select(Ticket)).one()
        assert reply.ticket_id == ticket.id and ticket.public_id in reply.text
        assert session.scalars(select(KbOffer)).one().status == "expired"
    assert conversation._rasa.seen[-1].startswith("/EXTERNAL_kb_offer_expired")  # through Rasa's rule
    # A tap on the expired offer's button is told where the question went; no second ticket.
    late = _say(conversation, "1", sender="tg2", channel="telegram", choice=KbChoice(asked.choices["offer"], 1))
    assert late.handling == "choice_closed" and "ticket" in late.replies[0] and _count(db_url, Ticket) == 1


def test_a_number_typed_after_the_time_out_is_told_where_the_question_went(conversation, db_url) -> None:
    _say(conversation, "how do I get rid of an old sofa", sender="tg5", channel="telegram")
    conversation.expire_offers(now=utcnow() + timedelta(minutes=31))
    late = _say(conversation, "1", sender="tg5", channel="telegram")
    assert late.handling == "choice_closed" and late.replies[0].startswith("That question has already been passed")
    assert late.ticket is not None and late.ticket.id in late.replies[0] and _count(db_url, Ticket) == 1
    # A real question afterwards is a new message, not a pick.
    assert _say(conversation, "When is the library open?", sender="tg5", channel="telegram").handling == "kb_answer"


def test_silence_while_rasa_is_down_still_opens_the_ticket_once(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa", sender="tg3", channel="telegram")
    conversation._rasa.down = True
    later = utcnow() + timedelta(minutes=31)
    (reply_id,) = conversation.expire_offers(now=later)
    conversation._rasa.down = False
    assert conversation.expire_offers(now=later) == []
    with session_factory(db_url)() as session:
        reply = session.get(Message, reply_id)
        assert reply.text.startswith("I haven't heard back from you, so") and reply.reply_to_id == asked.message_id
        assert session.scalars(select(KbOffer)).one().status == "expired"
    assert _count(db_url, Ticket) == 1


def test_the_time_out_payload_typed_by_a_citizen_expires_nothing(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa", sender="tg4", channel="telegram")
    turn = Turn(sender_id="x", text="", intent="EXTERNAL_kb_offer_expired", confidence=1.0, metadata={},
                kb_match={}, entities=[{"entity": "kb_choice", "value": f"{asked.choices['offer']}:0"}])
    assert expire_kb_offer(turn, Runtime(get_settings())) == []
    with session_factory(db_url)() as session:
        assert session.scalars(select(KbOffer)).one().status == "pending"


def test_another_citizens_button_and_a_tampered_one_answer_nothing(conversation, db_url) -> None:
    asked = _say(conversation, "how do I get rid of an old sofa", sender="owner")
    token = asked.choices["offer"]
    for sender, choice in (("intruder", KbChoice(token, 1)), ("owner", KbChoice(token, 7)),
                           ("owner", KbChoice("zzzzzzzzzzzz", 1))):
        handled = _say(conversation, "1", sender=sender, choice=choice)
        assert handled.kb_entry_id is None and handled.ticket is None, (sender, choice)
        assert handled.replies == [RESPONSES["utter_kb_choice_invalid"][0]["text"]]
    with session_factory(db_url)() as session:
        assert session.scalars(select(KbOffer)).one().status == "pending"
    assert _count(db_url, Ticket) == 0
    # The owner's own "1" still works afterwards.
    assert _say(conversation, "1", sender="owner").kb_entry_id == BULKY


def test_typed_pick_matches_numbers_none_words_and_the_question_itself() -> None:
    offer = KbOffer(token="abc", entries=[BULKY, LIBRARY])
    kb = PROJECT_ROOT / "knowledge_base"
    title = clarification.offer_options(offer.entries, kb)[1].title
    assert clarification.pick_from_text(offer, " 2. ", kb) == KbChoice("abc", 2)
    assert clarification.pick_from_text(offer, "None of these", kb) == KbChoice("abc", 0)
    assert clarification.pick_from_text(offer, title.upper(), kb) == KbChoice("abc", 2)
    assert clarification.pick_from_text(offer, "3", kb) is None
    assert clarification.pick_from_text(offer, "when is the pool open", kb) is None


@pytest.mark.parametrize("said", ["ninguna", "Ninguna de estas.", "hablar con una persona", "No", "persona",
                                  "ninguna de estas / hablar con una persona", "None of these"])
def test_none_of_these_typed_in_either_language(said: str) -> None:
    offer = KbOffer(token="abc", entries=[BULKY, LIBRARY])
    assert clarification.pick_from_text(offer, said, PROJECT_ROOT / "knowledge_base") == KbChoice("abc", 0)


@pytest.mark.parametrize("said", ["no entiendo nada", "ninguna me sirve, quiero saber el horario", "no sé", "sí"])
def test_spanish_sentences_are_not_a_pick(said: str) -> None:
    offer = KbOffer(token="abc", entries=[BULKY, LIBRARY])
    assert clarification.pick_from_text(offer, said, PROJECT_ROOT / "knowledge_base") is None


def test_rasa_payload_round_trips_through_the_entity() -> None:
    payload = clarification.rasa_payload(KbChoice("k2m9x4p7q3r8", 2))
    assert payload == '/choose_kb_entry{"kb_choice": "k2m9x4p7q3r8:2"}'
    value = json.loads(payload[len("/choose_kb_entry"):])["kb_choice"]
    assert clarification.parse_choice_entity(value) == KbChoice("k2m9x4p7q3r8", 2)
    assert clarification.parse_choice_entity("x:y:z") is None and clarification.parse_choice_entity(3) is None
