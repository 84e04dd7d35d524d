""""Was it solved?" is asked when staff resolve a ticket, outside the citizen's turn: worded in
the citizen's language there. The notes it leaves for the agents stay in the default language."""

from __future__ import annotations

from sqlalchemy import select

from bot.feedback import service
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.models import Citizen, Message
from bot.texts import override, text
from bot.tickets.models import TicketEvent
from tests.feedback.helpers import resolved_ticket


def _asked_in(session, language: str | None, sender: str):
    identity = get_or_create_identity(session, "telegram", sender)
    session.get(Citizen, identity.citizen_id).language = language
    session.flush()
    ticket = resolved_ticket(session, sender=sender)
    survey = service.ask_on_resolution(session, ticket)
    return ticket, survey, session.get(Message, survey.message_id)


def test_a_spanish_citizen_is_asked_in_spanish(session) -> None:
    ticket, _survey, question = _asked_in(session, "es", "501")
    assert question.text == text("feedback.ask", "es", ticket_id=ticket.public_id)
    assert question.text != text("feedback.ask", "en", ticket_id=ticket.public_id)
    titles = [o["title"] for o in question.meta[service.CHOICES_KEY]["options"]]
    assert titles == [text("feedback.yes_button", "es"), text("feedback.no_button", "es")] == ["Sí", "No"]
    assert question.language == "es"


def test_an_english_citizen_is_asked_in_english(session) -> None:
    for language, sender in ((None, "502"), ("en", "503")):
        ticket, _survey, question = _asked_in(session, language, sender)
        assert question.text == text("feedback.ask", "en", ticket_id=ticket.public_id)
        assert [o["title"] for o in question.meta[service.CHOICES_KEY]["options"]] == ["Yes", "No"]
        assert question.language == "en"


def test_the_agents_notes_stay_in_the_default_language_in_a_spanish_turn(session, db_url) -> None:
    settings = Settings(api_keys="k" * 20, database_url=db_url)
    ticket, survey, question = _asked_in(session, "es", "504")
    with override("es"):  # as the core words a Spanish citizen's turn
        answered = service.apply_answer(session, survey, service.Reading("yes"), question, settings)
        assert answered.reply == text("feedback.ask_rating", "es")
        service.apply_answer(session, survey, service.Reading("rating", rating=5), question, settings)
    notes = list(session.scalars(select(TicketEvent.body).where(TicketEvent.ticket_id == ticket.id,
                                                                TicketEvent.kind == "note")))
    assert notes == ["Feedback from the citizen: solved.", "Feedback from the citizen: rating 5 of 5."]
