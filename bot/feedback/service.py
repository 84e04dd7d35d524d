"""\"Was it solved?\": asking on resolution, reading the answers, and what they change.

Service functions: they take the caller's session and never commit. Every step is claimed
with a conditional UPDATE on the survey's ``step`` (like a "Do you mean ...?" pick), so a
double tap, two workers or a redelivered message record an answer once.

Contract with the channels: the question is an outbound message whose ``meta[CHOICES_KEY]``
has the shape of bot.core.clarification's choices, with the survey's token as ``offer``,
``"none": None`` (no "None of these" option) and ``"numbered": False`` (the button shows the
title alone). Channels with buttons show them and send a tap back as ``KbChoice(token, n)``;
on the others the citizen types "yes", "no" or a number, which is why every question's text
says what to reply.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.feedback.models import (
    ANSWERED,
    ASKED,
    EXPIRED,
    STEP_COMMENT,
    STEP_DONE,
    STEP_RATING,
    STEP_REASON,
    STEP_SOLVED,
    FeedbackSurvey,
)
from bot.outbox.delivery import queue_outbound
from bot.settings import Settings
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.texts import DEFAULT_LANGUAGE, override, resolve_language, text
from bot.texts.words import fold, fold_words, strip_accents
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.replies import citizen_language, reply_identity
from bot.tickets.service import add_note, attach_to_ticket, change_status
from bot.tickets.status import OPEN, OPEN_STATUSES, RESOLVED

# The key bot.core.clarification.CHOICES_KEY names (the channels' contract); that module is a
# layer above this one, so the value is repeated here and a test holds the two equal.
CHOICES_KEY = "choices"
# Button numbers: the solved question's are outside 1-5, so a stale "Yes" tapped while the
# rating is asked can never be read as a rating of 1.
YES, NO = 11, 10
# A comment, or what is still wrong, is one message soon after the question: a message days
# later is a new question, not the answer to this one.
FOLLOW_UP = timedelta(hours=24)
MAX_COMMENT = 2000

# How the core records a message read as a survey answer (``Message.handling``).
ANSWER = "feedback_answer"
INVALID = "feedback_invalid"
STALE = "choice_already_answered"

_TOKEN_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
# The typed answers per language, compared folded (no case, accents or punctuation): every
# language is read whatever the message's, and only while a survey waits (the core's guard), so
# a bare "no" is never taken from a citizen who was not asked. Whole answers only: "no entiendo
# nada" is not a "no". Adding a language is adding its words here.
YES_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("yes", "y", "yeah", "yep", "yes it was", "yes thanks", "yes thank you", "solved", "it was solved",
           "it is solved", "yes solved"),
    "es": ("si", "sip", "si gracias", "si muchas gracias", "si se resolvio", "se resolvio", "si resuelto",
           "resuelto", "esta resuelto", "si esta resuelto", "solucionado", "si solucionado", "esta solucionado"),
}
NO_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("no", "n", "nope", "no it wasn t", "no it was not", "not solved", "it was not solved",
           "it is not solved", "no not solved", "unsolved"),
    "es": ("no", "no se resolvio", "no esta resuelto", "no resuelto", "sin resolver", "no solucionado",
           "no esta solucionado", "no se ha resuelto", "no se soluciono"),
}
SKIP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("skip", "no", "no thanks", "no thank you", "nothing", "none", "n", "nope", "no comment"),
    "es": ("omitir", "saltar", "no", "no gracias", "nada", "ninguno", "sin comentarios", "paso"),
}
NUMBER_WORDS: dict[str, dict[str, int]] = {
    "en": {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5},
    "es": {"uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5},
}
# "4", "4/5", "4 of 5", "4 out of 5", "4 stars", "4 de 5", "4 sobre 5", "4 estrellas".
_NUMBER = re.compile(r"(-?\d+)(?:\s*(?:/|of|out of|de|sobre)\s*5)?(?:\s*(?:stars?|estrellas?))?")


@functools.cache
def _words() -> tuple[frozenset[str], frozenset[str], frozenset[str], dict[str, int]]:
    numbers = {fold(word): value for words in NUMBER_WORDS.values() for word, value in words.items()}
    return fold_words(YES_WORDS), fold_words(NO_WORDS), fold_words(SKIP_WORDS), numbers


def _normalised(said: str) -> str:
    return " ".join(re.sub(r"[^\w/ -]+", " ", strip_accents(said).casefold()).split())


def _note(key: str, **values: object) -> str:
    """A note for the agents: in the default language, the console's, whatever the language of
    the citizen's turn the core words the replies in."""
    return text(key, DEFAULT_LANGUAGE, **values)


def new_token() -> str:
    """13 characters: never the length of a "Do you mean ...?" offer's token (12)."""
    return "f" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(12))


def choices(token: str, step: str) -> dict | None:
    """``meta[CHOICES_KEY]`` of the question asked at ``step`` (None: a free-text step)."""
    if step == STEP_SOLVED:
        options = [{"n": YES, "title": text("feedback.yes_button")}, {"n": NO, "title": text("feedback.no_button")}]
    elif step == STEP_RATING:
        options = [{"n": n, "title": str(n)} for n in range(1, 6)]
    else:
        return None
    return {"offer": token, "options": options, "none": None, "numbered": False}


def _resolution_event(session: Session, ticket: Ticket) -> TicketEvent | None:
    return session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.to_status == RESOLVED)
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc())
        .limit(1)
    ).first()


def ask_on_resolution(session: Session, ticket: Ticket, *, now: datetime | None = None) -> FeedbackSurvey | None:
    """Queue "Was your problem solved?" for a ticket just resolved, once per resolution.

    It goes to the identity the citizen last wrote from on this ticket, through the outbox
    (the channel's rules, e.g. WhatsApp's 24-hour window, apply there). None when there is no
    one to ask (the ticket is not resolved, the citizen's data was erased)."""
    now = now or utcnow()
    if ticket.status != RESOLVED:
        return None
    event = _resolution_event(session, ticket)
    if event is None:
        return None
    existing = session.scalars(select(FeedbackSurvey).where(FeedbackSurvey.resolution_event_id == event.id)).first()
    if existing is not None:
        return existing
    identity = reply_identity(session, ticket)
    citizen = session.get(Citizen, ticket.citizen_id)
    if identity is None or identity.address.startswith("erased:") or (citizen is not None and citizen.erased_at):
        return None
    # An earlier resolution's survey still waiting for a word: this question replaces it.
    session.execute(
        update(FeedbackSurvey)
        .where(FeedbackSurvey.ticket_id == ticket.id, FeedbackSurvey.step != STEP_DONE)
        .values(step=STEP_DONE)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(FeedbackSurvey)
        .where(FeedbackSurvey.ticket_id == ticket.id, FeedbackSurvey.state == ASKED)
        .values(state=EXPIRED)
        .execution_options(synchronize_session=False)
    )
    token = new_token()
    # Asked when staff resolve the ticket, not in a turn of the citizen's: worded in their
    # language here (question and buttons); their answers come in turns the core words.
    language = resolve_language(citizen_language(session, ticket))
    with override(language):
        question, options = text("feedback.ask", ticket_id=ticket.public_id), choices(token, STEP_SOLVED)
    message = queue_outbound(
        session, identity=identity, text=question, author="assistant", ticket=ticket,
        meta={CHOICES_KEY: options}, now=now,
    )
    message.language = language
    survey = FeedbackSurvey(
        token=token, ticket_id=ticket.id, citizen_id=ticket.citizen_id, identity_id=identity.id,
        channel=identity.channel, department=ticket.department, resolution_event_id=event.id,
        message_id=message.id, asked_at=now, state=ASKED, step=STEP_SOLVED, step_at=now, reopened=False,
    )
    session.add(survey)
    session.flush()
    return survey


def _waits(survey: FeedbackSurvey, settings: Settings, now: datetime) -> bool:
    if survey.step == STEP_DONE:
        return False
    if survey.asked_at <= now - timedelta(days=settings.feedback_expiry_days):
        return False
    return survey.step in (STEP_SOLVED, STEP_RATING) or survey.step_at > now - FOLLOW_UP


def open_survey(session: Session, identity_id: int, settings: Settings, *,
                now: datetime | None = None) -> FeedbackSurvey | None:
    """The latest survey still waiting for this identity's next message, if any."""
    now = now or utcnow()
    since = now - timedelta(days=settings.feedback_expiry_days)
    survey = session.scalars(
        select(FeedbackSurvey)
        .where(FeedbackSurvey.identity_id == identity_id, FeedbackSurvey.step != STEP_DONE,
               FeedbackSurvey.asked_at > since)
        .order_by(FeedbackSurvey.step_at.desc(), FeedbackSurvey.id.desc())
        .limit(1)
    ).first()
    return survey if survey is not None and _waits(survey, settings, now) else None


def survey_for_token(session: Session, token: str, citizen_id: int) -> FeedbackSurvey | None:
    """The survey a button names, only if it is this citizen's: another's is as unknown.

    Its identity decides, not only its citizen column: a linked identity moves to the citizen
    it was merged into (bot.identity.merge), and its buttons keep working there."""
    survey = session.scalars(select(FeedbackSurvey).where(FeedbackSurvey.token == token)).first()
    if survey is None:
        return None
    if survey.citizen_id == citizen_id:
        return survey
    identity = session.get(ChannelIdentity, survey.identity_id)
    return survey if identity is not None and identity.citizen_id == citizen_id else None


@dataclass(frozen=True)
class Reading:
    """What a message means for the survey's current step."""

    kind: str  # yes, no, rating, skip, comment, bad_rating, bad_solved, stale
    rating: int | None = None
    comment: str | None = None
    # The step it answers (None: the survey's current one): if another message moved the survey
    # on meanwhile, this one finds the step taken and is told the question was answered.
    step: str | None = None


def read_answer(survey: FeedbackSurvey, said: str, choice: int | None) -> Reading | None:
    """The message as an answer to the current step, or None when it is not one (a new
    question, which goes to the assistant while the survey keeps waiting)."""
    reading = _read(survey.step, said, choice)
    return replace(reading, step=survey.step) if reading is not None else None


def _read(step: str, said: str, choice: int | None) -> Reading | None:
    if choice is not None:
        if step == STEP_SOLVED and choice in (YES, NO):
            return Reading("yes" if choice == YES else "no")
        if step == STEP_RATING and 1 <= choice <= 5:
            return Reading("rating", rating=choice)
        return Reading("stale")
    words = _normalised(said)
    yes_words, no_words, skip_words, number_words = _words()
    if step == STEP_SOLVED:
        if words in yes_words:
            return Reading("yes")
        if words in no_words:
            return Reading("no")
        # A bare number: a rating typed before saying whether it was solved.
        return Reading("bad_solved") if _NUMBER.fullmatch(words) or words in number_words else None
    if step == STEP_RATING:
        number = _NUMBER.fullmatch(words)
        value = int(number.group(1)) if number else number_words.get(words)
        if value is not None:
            return Reading("rating", rating=value) if 1 <= value <= 5 else Reading("bad_rating")
        if words in skip_words:
            return Reading("skip")
        # A word or two where a number is expected ("abc", "good"): asked again. A sentence or
        # a question is something new for the assistant.
        if words and len(words.split()) <= 2 and "?" not in said and len(said.strip()) <= 24:
            return Reading("bad_rating")
        return None
    if step in (STEP_COMMENT, STEP_REASON):
        if not said.strip():
            return None
        if step == STEP_COMMENT and words in skip_words:
            return Reading("skip")
        return Reading("comment", comment=said.strip()[:MAX_COMMENT])
    return None


@dataclass(frozen=True)
class Answered:
    """What the citizen is told, how their message is recorded, and the ticket it belongs to."""

    reply: str
    handling: str
    ticket: Ticket
    choices: dict | None = None


def _claim(session: Session, survey: FeedbackSurvey, current: str, **values: object) -> bool:
    """Move the survey on from step ``current`` exactly once, whoever races for it."""
    result = session.execute(
        update(FeedbackSurvey)
        .where(FeedbackSurvey.id == survey.id, FeedbackSurvey.step == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(survey)
    return True


def apply_answer(
    session: Session, survey: FeedbackSurvey, reading: Reading, message: Message, settings: Settings,
    *, department_name: str | None = None, now: datetime | None = None,
) -> Answered:
    """Record ``reading`` (from ``read_answer``) and say what comes next.

    A bad rating records nothing and asks again; a stale button or a step another message
    took meanwhile says the question was answered already."""
    now = now or utcnow()
    ticket = session.get(Ticket, survey.ticket_id)
    step = reading.step or survey.step
    department = department_name or ticket.department

    def stale() -> Answered:
        return Answered(text("feedback.already_answered"), STALE, ticket)

    if reading.kind == "stale":
        return stale()
    if reading.kind == "bad_rating":
        return Answered(text("feedback.bad_rating"), INVALID, ticket, choices(survey.token, STEP_RATING))
    if reading.kind == "bad_solved":
        return Answered(text("feedback.ask", ticket_id=ticket.public_id), INVALID, ticket,
                        choices(survey.token, STEP_SOLVED))
    if reading.kind == "yes":
        if not _claim(session, survey, step, state=ANSWERED, solved=True, answered_at=now, step=STEP_RATING,
                      step_at=now):
            return stale()
        add_note(session, ticket, _note("feedback.note_solved"), actor="citizen", now=now)
        return Answered(text("feedback.ask_rating"), ANSWER, ticket, choices(survey.token, STEP_RATING))
    if reading.kind == "no":
        reopen = ticket.status == RESOLVED
        if not _claim(session, survey, step, state=ANSWERED, solved=False, answered_at=now, step=STEP_REASON,
                      step_at=now, reopened=reopen):
            return stale()
        if not reopen:
            # Closed meanwhile (closed is final): a new message opens a new ticket.
            _claim(session, survey, STEP_REASON, step=STEP_DONE)
            return Answered(text("feedback.closed", ticket_id=ticket.public_id), ANSWER, ticket)
        # Reopened at once, so that a citizen who says no more still has their case looked at.
        change_status(session, ticket, OPEN, actor="citizen", note=_note("feedback.note_reopened"), now=now,
                      settings=settings)
        return Answered(text("feedback.ask_reason", ticket_id=ticket.public_id, department=department),
                        ANSWER, ticket)
    if reading.kind == "rating":
        if not _claim(session, survey, step, rating=reading.rating, step=STEP_COMMENT, step_at=now):
            return stale()
        add_note(session, ticket, _note("feedback.note_rating", rating=reading.rating), actor="citizen", now=now)
        return Answered(text("feedback.ask_comment"), ANSWER, ticket)
    if reading.kind == "skip":
        if not _claim(session, survey, step, step=STEP_DONE, step_at=now):
            return stale()
        return Answered(text("feedback.thanks"), ANSWER, ticket)
    if reading.kind == "comment":
        if not _claim(session, survey, step, comment=reading.comment, step=STEP_DONE, step_at=now):
            return stale()
        if step == STEP_REASON:
            if ticket.status in OPEN_STATUSES:
                attach_to_ticket(session, ticket, message, now=now, settings=settings)
            add_note(session, ticket, _note("feedback.note_reason", comment=reading.comment), actor="citizen", now=now)
            return Answered(text("feedback.reason_added", ticket_id=ticket.public_id, department=department),
                            ANSWER, ticket)
        add_note(session, ticket, _note("feedback.note_comment", comment=reading.comment), actor="citizen", now=now)
        return Answered(text("feedback.thanks"), ANSWER, ticket)
    raise ValueError(f"unknown reading {reading.kind!r}")


def reason_in_thread(session: Session, message: Message, ticket: Ticket, settings: Settings,
                     *, now: datetime | None = None) -> bool:
    """A message that joined ``ticket`` by its thread (an e-mail reply in the ticket's thread)
    while its survey waits for "what is still wrong": it is that answer, so the survey stops
    waiting and the agents get it as the citizen's reason. The message itself is already on the
    ticket; only the survey and the note change."""
    now = now or utcnow()
    survey = open_survey(session, message.identity_id, settings, now=now)
    if survey is None or survey.ticket_id != ticket.id or survey.step != STEP_REASON or not message.text.strip():
        return False
    comment = message.text.strip()[:MAX_COMMENT]
    if not _claim(session, survey, STEP_REASON, comment=comment, step=STEP_DONE, step_at=now):
        return False
    add_note(session, ticket, _note("feedback.note_reason", comment=comment), actor="citizen", now=now)
    return True


def expire_surveys(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Surveys past CRM_FEEDBACK_EXPIRY_DAYS: unanswered ones count as expired, and none waits
    for a message any more. Running it again changes nothing."""
    now = now or utcnow()
    before = now - timedelta(days=settings.feedback_expiry_days)
    expired = session.execute(
        update(FeedbackSurvey)
        .where(FeedbackSurvey.state == ASKED, FeedbackSurvey.asked_at <= before)
        .values(state=EXPIRED, step=STEP_DONE)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(
        update(FeedbackSurvey)
        .where(FeedbackSurvey.step != STEP_DONE, FeedbackSurvey.asked_at <= before)
        .values(step=STEP_DONE)
        .execution_options(synchronize_session=False)
    )
    return expired
