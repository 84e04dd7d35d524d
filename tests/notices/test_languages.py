"""Notices and announcements are sent outside the citizen's turn (from the console, by staff),
so they are worded in the citizen's language there: theirs, else their ticket's, else the default."""

from __future__ import annotations

from sqlalchemy import select

from bot.console import ticket_actions
from bot.notices import announcements
from bot.store.db import session_factory
from bot.store.models import Citizen, Message
from bot.texts import text
from tests.notices.helpers import citizen, settings, staff, ticket_of

PUSH = ("telegram", "whatsapp", "email")


def _speaks(session, identity, language: str | None) -> None:
    session.get(Citizen, identity.citizen_id).language = language
    session.flush()


def test_status_notices_are_in_the_citizens_language(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        spanish = citizen(session, "telegram", "3001", purposes=["notifications"], text="hola")
        english = citizen(session, "telegram", "3002", purposes=["notifications"])
        _speaks(session, spanish, "es")
        es_ticket, en_ticket = ticket_of(session, spanish, "No han recogido mi basura"), ticket_of(session, english)
        sue = staff(session)
        department = "Waste and Recycling"
        for ticket, language in ((es_ticket, "es"), (en_ticket, "en")):
            assigned = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
            assert assigned.text == text("notices.assigned", language, ticket_id=ticket.public_id,
                                         department=department)
            assert assigned.language == language
            waiting = ticket_actions.set_status(session, sue, ticket, "pending_citizen", settings=config)
            assert waiting.text == text("notices.waiting", language, ticket_id=ticket.public_id)
            asked = ticket_actions.set_status(session, sue, ticket, "open", settings=config)
            assert asked is None
            asked = ticket_actions.set_status(session, sue, ticket, "pending_citizen", question="¿Qué calle?",
                                              settings=config)
            # The agent's question itself is as they wrote it; the sentence around it is the citizen's.
            assert asked.text == text("notices.waiting_question", language, ticket_id=ticket.public_id,
                                      question="¿Qué calle?")
        assert text("notices.assigned", "es", ticket_id="X", department="Y") != \
            text("notices.assigned", "en", ticket_id="X", department="Y")


def test_a_citizen_without_a_language_is_told_in_their_tickets(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "3003", purposes=["notifications"])
        ticket = ticket_of(session, identity, "No han recogido mi basura")
        ticket.language = "es"
        sue = staff(session)
        notice = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
        assert notice.text == text("notices.assigned", "es", ticket_id=ticket.public_id,
                                   department="Waste and Recycling")


def test_an_unknown_language_falls_back_to_the_default(db_url: str) -> None:
    config = settings(db_url)
    with session_factory(db_url).begin() as session:
        identity = citizen(session, "telegram", "3004", purposes=["notifications"])
        _speaks(session, identity, "xx")
        ticket = ticket_of(session, identity)
        sue = staff(session)
        notice = ticket_actions.assign(session, sue, ticket, sue.user_id, settings=config)
        assert notice.text == text("notices.assigned", "en", ticket_id=ticket.public_id,
                                   department="Waste and Recycling")
        assert notice.language == "en"


def test_an_announcements_footer_is_in_each_citizens_language(db_url: str) -> None:
    config = settings(db_url)
    body = "La recogida se retrasa un día. / Collection moves by one day."
    with session_factory(db_url).begin() as session:
        spanish = citizen(session, "telegram", "3101", purposes=["announcements:waste"])
        english = citizen(session, "telegram", "3102", purposes=["announcements"])
        _speaks(session, spanish, "es")
        row, shown = announcements.send(session, config, "topic", "waste", body, PUSH, created_by="sue")
        # The supervisor's preview is in the default language.
        assert shown.rendered == text("notices.announcement", "en", text=body, topic=shown.audience.name,
                                      word="waste")
        sent = {m.citizen_id: m for m in session.scalars(select(Message).where(Message.author == "announcement"))}
        assert sent[spanish.citizen_id].text == text("notices.announcement", "es", text=body,
                                                     topic=shown.audience.name, word="waste")
        assert sent[spanish.citizen_id].language == "es"
        assert sent[english.citizen_id].text == text("notices.announcement", "en", text=body,
                                                     topic=shown.audience.name, word="all")
