"""A citizen writing in Spanish is answered, asked, or handed over in Spanish, by the same
outcomes as an English turn; Rasa never sees the message; the language is stored on the
message, the citizen and the ticket."""

from __future__ import annotations

import functools
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage, KbChoice
from bot.kb.compile import response_text
from bot.kb.loader import load_kb
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.models import Citizen, KbOffer, Message
from bot.store.types import utcnow
from bot.texts import text
from bot.tickets.models import Ticket

KB_DIR = Path(__file__).resolve().parents[2] / "knowledge_base"


class NoRasa:
    """Spanish turns never reach Rasa; an English one would fail the test that sends it."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.sent.append(text)
        return []


def _settings(db_url: str, **kw) -> Settings:
    return Settings(api_keys="k" * 20, database_url=db_url, privacy_notice_channels="", **kw)


@pytest.fixture()
def conversation(db_url: str) -> Conversation:
    return Conversation(_settings(db_url), session_factory(db_url), NoRasa())


def _msg(text_: str, n: int = 1, sender: str = "es-1", **kw) -> InboundMessage:
    return InboundMessage(channel="telegram", sender=sender, text=text_, external_id=f"m{n}-{sender}", **kw)


def _paragraphs(text_: str) -> list[str]:
    """As Rasa's output channels send a response: one message per paragraph."""
    return [part.strip() for part in text_.split("\n\n")]


def _spanish_entry():
    kb, _ = load_kb(KB_DIR)
    return next(e for e in kb.entries if "es" in e.answer and e.questions.get("es"))


def test_a_spanish_faq_question_is_answered_in_spanish_from_the_kb(conversation: Conversation, db_url: str) -> None:
    entry = _spanish_entry()
    handled = conversation.handle_inbound(_msg(entry.questions["es"][0]))
    assert handled.language == "es"
    assert handled.handling == "kb_answer" and handled.kb_entry_id == entry.id
    assert handled.replies == _paragraphs(response_text(entry, "es"))
    assert conversation._rasa.sent == []
    with session_factory(db_url)() as session:
        message = session.get(Message, handled.message_id)
        assert message.language == "es"
        assert session.get(Citizen, message.citizen_id).language == "es"
        assert session.get(Message, handled.reply_ids[0]).language == "es"


def test_a_spanish_complaint_opens_a_ticket_that_records_the_language(conversation: Conversation, db_url: str) -> None:
    handled = conversation.handle_inbound(_msg("Quiero poner una queja formal sobre el trato que recibí en la ventanilla"))
    assert handled.handling == "escalated" and handled.ticket is not None
    assert handled.ticket.id in handled.replies[0]
    assert handled.replies[0].startswith("Gracias") or "ticket" in handled.replies[0].lower()
    assert handled.replies[0] != text("rasa.utter_ticket_created", "en", department="x", ticket_id=handled.ticket.id,
                                      commitment=handled.ticket.commitment)
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.language == "es" and ticket.reason == "complaint"


def test_greetings_and_thanks_are_small_talk_in_spanish(conversation: Conversation) -> None:
    handled = conversation.handle_inbound(_msg("hola, buenos días"))
    assert handled.handling == "small_talk"
    assert handled.replies == [text("rasa.utter_greet", "es")]
    handled = conversation.handle_inbound(_msg("muchas gracias", n=2))
    assert handled.replies == [text("rasa.utter_thanks", "es")]


def test_a_short_reply_keeps_the_citizens_language(conversation: Conversation, db_url: str) -> None:
    conversation.handle_inbound(_msg("Quiero poner una queja formal sobre el trato que recibí en la ventanilla"))
    handled = conversation.handle_inbound(_msg("ok", n=2))
    assert handled.language == "es"


def test_an_english_message_still_goes_to_rasa(db_url: str) -> None:
    rasa = NoRasa()
    conversation = Conversation(_settings(db_url), session_factory(db_url), rasa)
    handled = conversation.handle_inbound(_msg("When is my recycling bin collected on my street?", sender="en-1"))
    assert rasa.sent == ["When is my recycling bin collected on my street?"]
    assert handled.language == "en"


def test_an_unsure_spanish_question_is_asked_in_spanish_and_a_pick_answers_it(conversation: Conversation, db_url: str) -> None:
    understanding = conversation.languages.lexical("es")
    # A vague question the model is unsure about: whatever it offers, the question and its
    # options are Spanish, and picking the first answers that entry in Spanish.
    asked = None
    for n, question in enumerate(["basura", "impuestos y pagos", "licencia", "aparcamiento zona"], start=1):
        decision = understanding.understand(question)
        if decision.outcome == "ask":
            asked = conversation.handle_inbound(_msg(question, n=n))
            break
    assert asked is not None, "no vague question was asked about; pick another"
    assert asked.handling == "asked", asked.replies
    kb, _ = load_kb(KB_DIR)
    first = next(e for e in kb.entries if e.id == asked.offered_entries[0])
    assert first.questions["es"][0] in asked.replies[0]
    assert text("clarification.none_title", "es") in asked.replies[0]
    assert asked.choices["options"][0]["title"] == first.questions["es"][0]
    with session_factory(db_url)() as session:
        token = session.scalars(select(KbOffer.token)).one()
    picked = conversation.handle_inbound(_msg("1", n=10))
    assert picked.handling == "kb_answer" and picked.kb_entry_id == first.id
    assert picked.replies == _paragraphs(response_text(first, "es"))
    tapped = conversation.handle_inbound(_msg(first.questions["es"][0], n=11, choice=KbChoice(token, 1)))
    assert tapped.replies == [text("rasa.utter_kb_choice_already_answered", "es")]


def test_a_spanish_offer_left_unanswered_is_handed_over_in_spanish_without_rasa(conversation: Conversation, db_url: str) -> None:
    understanding = conversation.languages.lexical("es")
    question = next(q for q in ["basura", "impuestos y pagos", "licencia", "aparcamiento zona"]
                    if understanding.understand(q).outcome == "ask")
    conversation.handle_inbound(_msg(question))
    reply_ids = conversation.expire_offers(now=utcnow() + timedelta(hours=2))
    assert conversation._rasa.sent == []
    with session_factory(db_url)() as session:
        reply = session.get(Message, reply_ids[0])
        ticket = session.scalars(select(Ticket)).one()
        assert reply.language == "es" and ticket.public_id in reply.text
        assert reply.text.startswith(text("rasa.utter_kb_offer_expired_ticket_created", "es", department="@",
                                          ticket_id="@", commitment="@").split("@")[0])


def test_status_in_spanish_reads_the_ticket_in_spanish(conversation: Conversation) -> None:
    opened = conversation.handle_inbound(_msg("Quiero poner una queja formal sobre el trato que recibí en la ventanilla"))
    status = conversation.handle_inbound(_msg(f"¿En qué estado está mi ticket {opened.ticket.id}?", n=2))
    assert status.handling == "status", status.replies
    assert status.replies[0].startswith(f"El ticket {opened.ticket.id}") or opened.ticket.id in status.replies[0]
    assert text("ticket.status.new", "es") in status.replies[0]


@pytest.fixture()
def untranslated_kb(tmp_path: Path) -> tuple[Path, str]:
    """The demo KB with one Spanish entry's Spanish answer removed (its questions stay)."""
    kb_dir = tmp_path / "kb"
    shutil.copytree(KB_DIR, kb_dir)
    entry = _spanish_entry()
    path = Path(entry.source_file)
    target = kb_dir / path.relative_to(KB_DIR)
    data = yaml.safe_load(target.read_text("utf-8"))
    for item in data["entries"]:
        if item["id"] == entry.id:
            item["answer"].pop("es")
    target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return kb_dir, entry.id


@pytest.mark.parametrize("mode", ["main_language", "hand_over"])
def test_an_entry_without_a_spanish_answer_says_so_in_spanish(db_url: str, untranslated_kb, mode: str) -> None:
    kb_dir, entry_id = untranslated_kb
    settings = _settings(db_url, kb_dir=str(kb_dir), untranslated_answer=mode)
    conversation = Conversation(settings, session_factory(db_url), NoRasa())
    kb, _ = load_kb(kb_dir)
    entry = next(e for e in kb.entries if e.id == entry_id)
    handled = conversation.handle_inbound(_msg(entry.questions["es"][0]))
    if mode == "main_language":
        assert handled.handling == "kb_answer"
        note = text("language.untranslated_answer", "es", language_name=text("language.names.en", "es"))
        assert handled.replies == _paragraphs(f"{note}\n\n{response_text(entry, 'en')}")
    else:
        assert handled.handling == "escalated"
        with session_factory(db_url)() as session:
            assert session.scalars(select(Ticket.reason)).one() == "not_translated"


def test_a_spanish_ticket_names_the_department_in_spanish(conversation: Conversation) -> None:
    handled = conversation.handle_inbound(_msg("Quiero poner una queja: no han recogido el contenedor de basura en mi calle"))
    assert handled.handling == "escalated"
    assert "Residuos y Reciclaje" in handled.replies[0] and "Waste and Recycling" not in handled.replies[0]


def test_a_channels_own_answer_is_worded_in_the_citizens_language(conversation: Conversation, db_url: str) -> None:
    """Telegram's /start: no words to read, so the app's language (the channel's hint) decides."""
    welcome = functools.partial(text, "telegram.welcome")
    handled = conversation.answer_directly(_msg("/start", language_hint="es"), welcome)
    assert handled.replies == [text("telegram.welcome", "es")] and handled.language == "es"
    english = conversation.answer_directly(_msg("/start", n=2, sender="en-2", language_hint="en-GB"), welcome)
    assert english.replies == [text("telegram.welcome", "en")]


def test_a_failure_of_the_other_languages_understanding_hands_the_message_over(conversation: Conversation, monkeypatch) -> None:
    def broken(_text: str):
        raise RuntimeError("index corrupted")

    monkeypatch.setattr(conversation.languages.lexical("es"), "understand", broken)
    handled = conversation.handle_inbound(_msg("¿Qué día pasan a recoger la basura?"))
    assert handled.handling == "escalated" and handled.ticket is not None
    assert handled.replies[0].startswith(text("ticket.saved_unavailable", "es", ticket_id="@", commitment="@").split("@")[0])
