"""The survey as a service: asked once per resolution, read step by step, recorded once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clarification import CHOICES_KEY as CORE_CHOICES_KEY
from bot.feedback import service
from bot.feedback.models import (
    ANSWERED,
    ASKED,
    EXPIRED,
    STEP_COMMENT,
    STEP_DONE,
    STEP_RATING,
    STEP_SOLVED,
    FeedbackSurvey,
)
from bot.settings import Settings
from bot.store.models import Message
from bot.store.types import utcnow
from bot.tickets.models import TicketEvent
from bot.tickets.service import change_status
from bot.tickets.status import OPEN, RESOLVED
from tests.feedback.helpers import resolved_and_asked, resolved_ticket


def _settings(db_url: str) -> Settings:
    return Settings(api_keys="k" * 20, database_url=db_url)


def test_the_channels_key_is_the_cores() -> None:
    assert service.CHOICES_KEY == CORE_CHOICES_KEY


def test_resolution_queues_one_question_with_buttons(session) -> None:
    ticket, survey = resolved_and_asked(session)
    assert survey.state == ASKED and survey.step == STEP_SOLVED and survey.channel == "telegram"
    question = session.get(Message, survey.message_id)
    assert question.direction == "out" and question.delivery_status == "pending"
    assert question.text == f"Ticket {ticket.public_id} is resolved. Was your problem solved? Please reply yes or no."
    choices = question.meta[service.CHOICES_KEY]
    assert choices["offer"] == survey.token and choices["none"] is None and choices["numbered"] is False
    assert [o["n"] for o in choices["options"]] == [service.YES, service.NO]
    # Idempotent: asking again for the same resolution changes nothing.
    assert service.ask_on_resolution(session, ticket) is survey
    assert session.scalar(select(func.count()).select_from(FeedbackSurvey)) == 1


def test_a_ticket_that_is_not_resolved_is_not_asked(session) -> None:
    ticket = resolved_ticket(session)
    change_status(session, ticket, OPEN, actor="citizen")
    assert service.ask_on_resolution(session, ticket) is None


def test_a_second_resolution_after_a_reopen_asks_again(session, db_url) -> None:
    settings = _settings(db_url)
    ticket, first = resolved_and_asked(session)
    message = session.get(Message, first.message_id)
    service.apply_answer(session, first, service.Reading("no"), message, settings)
    assert ticket.status == OPEN and first.reopened
    change_status(session, ticket, RESOLVED, actor="agent:wanda")
    second = service.ask_on_resolution(session, ticket)
    assert second is not None and second.id != first.id and second.step == STEP_SOLVED
    session.refresh(first)
    assert first.step == STEP_DONE  # the first one no longer waits for "what is still wrong"


@pytest.mark.parametrize(("said", "kind", "rating"), [
    ("Yes", "yes", None), ("yes!", "yes", None), ("Not solved", "no", None), ("no", "no", None),
    ("3", "bad_solved", None), ("When is my bin collected?", None, None), ("thanks", None, None),
])
def test_reading_the_solved_question(session, said, kind, rating) -> None:
    _ticket, survey = resolved_and_asked(session)
    reading = service.read_answer(survey, said, None)
    assert (reading.kind if reading else None) == kind


@pytest.mark.parametrize(("said", "kind", "rating"), [
    ("4", "rating", 4), ("5/5", "rating", 5), ("2 stars", "rating", 2), ("five", "rating", 5),
    ("11", "bad_rating", None), ("0", "bad_rating", None), ("-3", "bad_rating", None), ("abc", "bad_rating", None),
    ("skip", "skip", None), ("When is my bin collected?", None, None),
    ("I also want to ask about the parking permits for my street", None, None),
])
def test_reading_the_rating(session, said, kind, rating) -> None:
    _ticket, survey = resolved_and_asked(session)
    survey.step = STEP_RATING
    reading = service.read_answer(survey, said, None)
    assert (reading.kind if reading else None) == kind
    if reading is not None:
        assert reading.rating == rating


def test_buttons_of_another_step_are_stale(session) -> None:
    _ticket, survey = resolved_and_asked(session)
    survey.step = STEP_RATING
    assert service.read_answer(survey, "Yes", service.YES).kind == "stale"
    assert service.read_answer(survey, "3", 3).rating == 3
    survey.step = STEP_SOLVED
    assert service.read_answer(survey, "3", 3).kind == "stale"


def test_yes_rating_comment_are_recorded_once(session, db_url) -> None:
    settings = _settings(db_url)
    ticket, survey = resolved_and_asked(session)
    message = session.get(Message, survey.message_id)
    first = service.apply_answer(session, survey, service.Reading("yes"), message, settings)
    assert first.handling == service.ANSWER and first.choices["options"][0] == {"n": 1, "title": "1"}
    assert survey.state == ANSWERED and survey.solved is True and survey.step == STEP_RATING
    # The same tap again (another message): recorded already.
    again = service.apply_answer(session, survey, service.Reading("yes", step=STEP_SOLVED), message, settings)
    assert again.handling == service.STALE
    bad = service.apply_answer(session, survey, service.Reading("bad_rating"), message, settings)
    assert bad.handling == service.INVALID and survey.rating is None and survey.step == STEP_RATING
    service.apply_answer(session, survey, service.Reading("rating", rating=4), message, settings)
    assert survey.rating == 4 and survey.step == STEP_COMMENT
    service.apply_answer(session, survey, service.Reading("comment", comment="Quick, thanks"), message, settings)
    assert survey.comment == "Quick, thanks" and survey.step == STEP_DONE
    notes = list(session.scalars(select(TicketEvent.body).where(TicketEvent.ticket_id == ticket.id,
                                                                TicketEvent.kind == "note")))
    assert notes == ["Feedback from the citizen: solved.", "Feedback from the citizen: rating 4 of 5.",
                     "Feedback from the citizen: Quick, thanks"]
    assert ticket.status == RESOLVED


def test_surveys_expire_after_the_setting(session, db_url) -> None:
    settings = _settings(db_url)
    now = utcnow()
    _ticket, survey = resolved_and_asked(session, now=now - timedelta(days=8))
    assert service.open_survey(session, survey.identity_id, settings, now=now) is None
    assert service.open_survey(session, survey.identity_id, settings, now=now - timedelta(days=2)) is survey
    assert service.expire_surveys(session, settings, now=now) == 1
    assert service.expire_surveys(session, settings, now=now) == 0
    session.refresh(survey)
    assert survey.state == EXPIRED and survey.step == STEP_DONE


def test_an_erased_address_is_not_asked(session) -> None:
    ticket = resolved_ticket(session)
    session.get(Message, session.scalar(select(Message.id).where(Message.ticket_id == ticket.id))).identity.address = \
        "erased:x"
    assert service.ask_on_resolution(session, ticket) is None


@pytest.mark.parametrize(("said", "kind"), [
    ("Sí", "yes"), ("si", "yes"), ("¡Sí, gracias!", "yes"), ("Resuelto", "yes"), ("se resolvió", "yes"),
    ("No", "no"), ("no se resolvió", "no"), ("sin resolver", "no"), ("No está resuelto.", "no"),
    ("tres", "bad_solved"),
    ("no entiendo nada", None), ("si puedo preguntar otra cosa", None), ("¿Cuándo recogen la basura?", None),
    ("gracias", None), ("no sé", None),
])
def test_reading_the_solved_question_in_spanish(session, said, kind) -> None:
    _ticket, survey = resolved_and_asked(session)
    reading = service.read_answer(survey, said, None)
    assert (reading.kind if reading else None) == kind


@pytest.mark.parametrize(("said", "kind", "rating"), [
    ("cuatro", "rating", 4), ("4 de 5", "rating", 4), ("3 sobre 5", "rating", 3), ("5 estrellas", "rating", 5),
    ("1 estrella", "rating", 1), ("Cinco", "rating", 5), ("omitir", "skip", None), ("no, gracias", "skip", None),
    ("nada", "skip", None), ("seis", "bad_rating", None), ("muy bien", "bad_rating", None),
    ("no entiendo nada de esto", None, None), ("¿Cuándo abre la piscina municipal?", None, None),
])
def test_reading_the_rating_in_spanish(session, said, kind, rating) -> None:
    _ticket, survey = resolved_and_asked(session)
    survey.step = STEP_RATING
    reading = service.read_answer(survey, said, None)
    assert (reading.kind if reading else None) == kind
    if reading is not None:
        assert reading.rating == rating


def test_a_spanish_skip_ends_the_comment_and_anything_else_is_the_comment(session) -> None:
    _ticket, survey = resolved_and_asked(session)
    survey.step = STEP_COMMENT
    assert service.read_answer(survey, "Sin comentarios", None).kind == "skip"
    reading = service.read_answer(survey, "no entiendo nada", None)
    assert (reading.kind, reading.comment) == ("comment", "no entiendo nada")
