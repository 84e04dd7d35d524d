"""A citizen writing in Spanish, end to end through the API, the store and the running assistant:
answered, asked or handed over in Spanish; English is still Rasa's; the language is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.kb.compile import response_text
from bot.kb.loader import load_kb
from bot.settings import PROJECT_ROOT
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.texts import text
from bot.tickets.models import Ticket

pytestmark = pytest.mark.e2e


def _entry(entry_id: str):
    kb, _ = load_kb(PROJECT_ROOT / "knowledge_base")
    return next(e for e in kb.entries if e.id == entry_id)


def test_a_spanish_question_is_answered_in_spanish_from_the_kb(assistant, sender):
    result = assistant.say(sender, "¿Qué día pasan a recoger la basura?")
    assert result["handling"]["kind"] == "kb_answer"
    assert result["handling"]["kb_entry_id"] == "waste-collection-days"
    assert result["replies"][0]["text"].startswith(response_text(_entry("waste-collection-days"), "es")[:60])


def test_a_spanish_problem_report_becomes_a_ticket_told_in_spanish(assistant, sender):
    result = assistant.say(sender, "Quiero poner una queja: el funcionario de la ventanilla me trató fatal esta mañana")
    handling = result["handling"]
    assert handling["kind"] == "escalated"
    reply = result["replies"][0]["text"]
    assert handling["ticket"]["id"] in reply and reply.startswith("Gracias")
    with assistant.sessions()() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == handling["ticket"]["id"]))
        assert ticket.language == "es"


def test_a_citizen_who_switches_language_is_answered_in_each(assistant, sender):
    greeting = assistant.say(sender, "hola")
    assert greeting["replies"][0]["text"].startswith(text("rasa.utter_greet", "es")[:20])
    english = assistant.say(sender, "When is my bin collected?")
    assert english["handling"]["kb_entry_id"] == "waste-collection-days"
    assert "collect" in english["replies"][0]["text"].lower()
    with assistant.sessions()() as session:
        messages = session.scalars(
            select(Message).join(ChannelIdentity, Message.identity_id == ChannelIdentity.id)
            .where(Message.direction == "in", ChannelIdentity.address == sender).order_by(Message.id)).all()
        assert [m.language for m in messages] == ["es", "en"]
        assert session.get(Citizen, messages[-1].citizen_id).language == "en"


def test_a_spanish_status_request_reads_the_ticket_in_spanish(assistant, sender):
    opened = assistant.say(sender, "Quiero poner una queja: el funcionario de la ventanilla me trató fatal esta mañana")
    ticket_id = opened["handling"]["ticket"]["id"]
    status = assistant.say(sender, f"estado {ticket_id}")
    assert status["handling"]["kind"] == "status"
    assert ticket_id in status["replies"][0]["text"] and text("ticket.status.new", "es") in status["replies"][0]["text"]
