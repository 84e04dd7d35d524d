"""Asking the citizen which question they mean, when the assistant is unsure.

Three outcomes instead of two: answer when sure, hand over when nothing fits
(or the message needs a person), and in between ask, in one turn, "Do you mean
...?" with one to three KB questions plus "None of these / talk to a person".
A pick is answered at once, with no ticket; "none", a new question instead of
a pick, or silence until the offer expires opens the ticket exactly as an
outright escalation would, with the whole transcript.

The offer lives in the store (``KbOffer``), not only in Rasa's tracker: a pick
is checked against what this citizen was really offered, so a double tap, a
stale or tampered button, or another chat's button can never produce a wrong
answer or a second ticket, and the time-out survives restarts.

Contract with the channels. The assistant's "Do you mean ...?" reply is stored
with ``meta[CHOICES_KEY]``::

    {"offer": "<token>",
     "options": [{"n": 1, "entry": "<kb entry id>", "title": "<the KB question>"}, ...],
     "none": {"n": 0, "title": "None of these / talk to a person"}}

Its text already lists the options numbered ("1. ...", "0. None of these"), so
a channel without buttons (SMS, the generic API) works as it is: a reply of
"1", "2", "3", "0" or "none" is a pick. A channel with native buttons renders
the options as buttons whose data is ``KbChoice(offer, n).encode()`` and turns
a tap back into an ``InboundMessage`` whose ``choice`` is the decoded
``KbChoice`` and whose ``text`` is the button's title.
"""

from __future__ import annotations

CHOICES_KEY = "choices"

import functools
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot.core.escalation import CITIZEN_OFFER_KEY, Escalation, escalate
from bot.core.inbound import KbChoice
from bot.core.routing import entry_questions
from bot.settings import Settings
from bot.store.messages import record_handling
from bot.store.models import KbOffer, Message
from bot.store.types import utcnow
from bot.texts import active_language, languages, text
from bot.texts.words import strip_accents
from bot.tickets.models import Ticket
from bot.tickets.service import add_note, attach_to_ticket

logger = logging.getLogger(__name__)

PENDING, ANSWERED, DECLINED, SUPERSEDED, EXPIRED = "pending", "answered", "declined", "superseded", "expired"
# How a message that asked is recorded (``Message.handling``).
ASKED = "asked"
# The Rasa payloads the core sends for a pick (Rasa's "/intent{entities}" syntax skips NLU).
PICK_INTENT, NONE_INTENT, CHOICE_ENTITY = "choose_kb_entry", "choose_none", "kb_choice"

_TOKEN_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
# "None of these" typed, per language, compared without case, accents or punctuation; read only
# while a question waits (the core's guard), so a bare "no" is never taken from anyone else.
# The title of option 0 in every catalogue counts too. Adding a language is adding its words here.
NONE_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("0", "none", "none of these", "no", "nope", "neither", "none of them", "person", "talk to a person",
           "none of these / talk to a person"),
    "es": ("ninguna", "ninguno", "ninguna de estas", "ninguna de ellas", "ninguno de estos", "no", "persona",
           "una persona", "hablar con una persona", "con una persona", "ninguna de estas / hablar con una persona"),
}
_OUTCOME_WORDING = {
    DECLINED: "The citizen answered \u201cnone of these\u201d.",
    SUPERSEDED: "The citizen wrote something else instead of picking one.",
    EXPIRED: "The citizen did not answer within the time allowed.",
}


@dataclass(frozen=True)
class ChoiceOption:
    n: int
    entry: str
    title: str


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(12))


def offer_options(entries: Sequence[str], kb_dir) -> list[ChoiceOption]:
    """The entries that still exist in the KB, numbered as shown (a model may be older than the KB)."""
    titles = entry_questions(kb_dir, active_language())  # the turn's language (bot.texts.override)
    kept = [entry for entry in entries if entry in titles]
    return [ChoiceOption(n=i, entry=entry, title=titles[entry]) for i, entry in enumerate(kept, start=1)]


def open_offer(session: Session, message: Message, options: Sequence[ChoiceOption], settings: Settings,
               *, now: datetime | None = None) -> KbOffer:
    """Record the "Do you mean ...?" turn for ``message``; the caller sends the question."""
    now = now or utcnow()
    offer = KbOffer(
        token=new_token(), citizen_id=message.citizen_id, identity_id=message.identity_id, message_id=message.id,
        entries=[option.entry for option in options], status=PENDING, created_at=now,
        expires_at=now + timedelta(minutes=settings.clarification_timeout_minutes),
    )
    session.add(offer)
    record_handling(message, intent="faq_unsure", confidence=message.confidence, handling=ASKED)
    message.meta = {**(message.meta or {}), CITIZEN_OFFER_KEY: list(offer.entries)}
    session.flush()
    return offer


def choices_meta(offer: KbOffer, kb_dir) -> dict:
    """``meta[CHOICES_KEY]`` of the reply that asks (the contract in this module's docstring)."""
    return {
        "offer": offer.token,
        "options": [{"n": o.n, "entry": o.entry, "title": o.title} for o in offer_options(offer.entries, kb_dir)],
        "none": {"n": 0, "title": none_option_title()},
    }


def none_option_title(language: str | None = None) -> str:
    """The title of option 0, "none of these": the citizen wants a person instead."""
    return text("clarification.none_title", language)


def options_text(options: Sequence[ChoiceOption]) -> str:
    return "\n".join([f"{o.n}. {o.title}" for o in options] + [f"0. {none_option_title()}"])


def pending_offer(session: Session, citizen_id: int, *, now: datetime | None = None) -> KbOffer | None:
    """The citizen's open question, if one is waiting for an answer and has not timed out."""
    now = now or utcnow()
    return session.scalars(
        select(KbOffer)
        .where(KbOffer.citizen_id == citizen_id, KbOffer.status == PENDING, KbOffer.expires_at > now)
        .order_by(KbOffer.id.desc())
        .limit(1)
    ).first()


def timed_out_offer(session: Session, citizen_id: int, settings: Settings, *,
                    now: datetime | None = None) -> KbOffer | None:
    """The citizen's question that timed out within the last timeout period: a "2" typed after
    the hand-over is a late pick of it (told where the question went), not a new question."""
    now = now or utcnow()
    since = now - timedelta(minutes=settings.clarification_timeout_minutes)
    return session.scalars(
        select(KbOffer)
        .where(KbOffer.citizen_id == citizen_id, KbOffer.status == EXPIRED, KbOffer.settled_at > since)
        .order_by(KbOffer.id.desc())
        .limit(1)
    ).first()


def recent_offer(session: Session, citizen_id: int, settings: Settings, *,
                 now: datetime | None = None) -> KbOffer | None:
    """An open question, or one that timed out lately: one query, so that a citizen who was
    never asked costs nothing more."""
    now = now or utcnow()
    since = now - timedelta(minutes=settings.clarification_timeout_minutes)
    return session.scalars(
        select(KbOffer)
        .where(KbOffer.citizen_id == citizen_id,
               or_(and_(KbOffer.status == PENDING, KbOffer.expires_at > now),
                   and_(KbOffer.status == EXPIRED, KbOffer.settled_at > since)))
        .limit(1)
    ).first()


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w/ ]+", " ", strip_accents(text).casefold()).split())


@functools.cache
def _none_words() -> frozenset[str]:
    titles = {_normalised(none_option_title(language)) for language in languages()}
    return frozenset(_normalised(word) for words in NONE_WORDS.values() for word in words) | titles


def pick_from_text(offer: KbOffer, text: str, kb_dir) -> KbChoice | None:
    """A typed answer to the question: "2", "2.", "none", or one of the offered questions word for word."""
    said = _normalised(text)
    options = offer_options(offer.entries, kb_dir)
    if said in _none_words():
        return KbChoice(offer.token, 0)
    if said.isdigit() and 1 <= int(said) <= len(options):
        return KbChoice(offer.token, int(said))
    for option in options:
        if said and said == _normalised(option.title):
            return KbChoice(offer.token, option.n)
    return None


def rasa_payload(choice: KbChoice) -> str:
    """What Rasa is sent for a pick: its intent-payload syntax, so no NLU guesses at "2"."""
    intent = NONE_INTENT if choice.option == 0 else PICK_INTENT
    return f'/{intent}{{"{CHOICE_ENTITY}": "{choice.offer}:{choice.option}"}}'


# The time-out as an external event in Rasa's dialogue: the API's expiry loop sends it for a due
# offer (with EXPIRY_METADATA_KEY, which only the core sets), the rule runs action_expire_kb_offer.
EXPIRED_INTENT = "EXTERNAL_kb_offer_expired"
EXPIRY_METADATA_KEY = "kb_offer_expired"


def expiry_payload(offer: KbOffer) -> str:
    return f'/{EXPIRED_INTENT}{{"{CHOICE_ENTITY}": "{offer.token}:0"}}'


def offer_for_token(session: Session, token: str) -> KbOffer | None:
    return session.scalars(select(KbOffer).where(KbOffer.token == token)).one_or_none()


def parse_choice_entity(value: object) -> KbChoice | None:
    if not isinstance(value, str):
        return None
    return KbChoice.decode(f"{KbChoice.PREFIX}:{value}")


@dataclass(frozen=True)
class Settlement:
    """What a pick came to. ``outcome``: answered, declined, already_answered, closed, invalid."""

    outcome: str
    entry: str | None = None
    escalation: Escalation | None = None
    ticket: Ticket | None = None


def _claim(session: Session, offer: KbOffer, status: str, now: datetime, *, settled_by: Message | None,
           chosen: str | None = None) -> bool:
    """Move a pending offer to ``status`` exactly once, whoever races for it (a double tap, the time-out)."""
    result = session.execute(
        update(KbOffer)
        .where(KbOffer.id == offer.id, KbOffer.status == PENDING)
        .values(status=status, settled_at=now, chosen_entry=chosen,
                settled_by_id=settled_by.id if settled_by is not None else None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(offer)
    return True


def settle_choice(session: Session, message: Message, choice: KbChoice | None, settings: Settings,
                  *, now: datetime | None = None) -> Settlement:
    """Answer or hand over a pick, after checking it against what this citizen was offered.

    A token that does not exist, or belongs to someone else, is ``invalid``: the reply is the
    same either way, so a tampered button learns nothing about other citizens' offers."""
    now = now or utcnow()
    offer = None
    if choice is not None:
        offer = session.scalars(select(KbOffer).where(KbOffer.token == choice.offer)).one_or_none()
    if offer is None or offer.citizen_id != message.citizen_id:
        return Settlement("invalid")
    if offer.status == PENDING and offer.expires_at <= now:
        expire_offer(session, offer, settings, now=now)
    if offer.status != PENDING:
        ticket = session.get(Ticket, offer.ticket_id) if offer.ticket_id else None
        return Settlement("already_answered" if offer.status == ANSWERED else "closed", entry=offer.chosen_entry,
                          ticket=ticket)
    options = {o.n: o for o in offer_options(offer.entries, settings.kb_dir)}
    if choice.option != 0 and choice.option not in options:
        return Settlement("invalid")
    if choice.option == 0:
        if not _claim(session, offer, DECLINED, now, settled_by=message):
            return settle_choice(session, message, choice, settings, now=now)
        escalation = _hand_over(session, offer, settings, now=now, later=message)
        return Settlement("declined", escalation=escalation, ticket=escalation.ticket)
    entry = options[choice.option].entry
    if not _claim(session, offer, ANSWERED, now, settled_by=message, chosen=entry):
        return settle_choice(session, message, choice, settings, now=now)
    return Settlement("answered", entry=entry)


def supersede_pending(session: Session, message: Message, settings: Settings,
                      *, now: datetime | None = None) -> Escalation | None:
    """The citizen wrote something other than a pick: the question they were asked about goes to a
    person (nothing is left unanswered), and the new message is then handled on its own."""
    now = now or utcnow()
    offer = pending_offer(session, message.citizen_id, now=now)
    if offer is None or offer.message_id == message.id or not _claim(session, offer, SUPERSEDED, now, settled_by=message):
        return None
    return _hand_over(session, offer, settings, now=now)


def expire_offer(session: Session, offer: KbOffer, settings: Settings, *, now: datetime | None = None) -> Escalation | None:
    now = now or utcnow()
    if not _claim(session, offer, EXPIRED, now, settled_by=None):
        return None
    return _hand_over(session, offer, settings, now=now)


def _hand_over(session: Session, offer: KbOffer, settings: Settings, *, now: datetime,
               later: Message | None = None) -> Escalation:
    """The ticket an outright escalation would have opened, from the question itself, with the
    offer (what was offered, and how it ended) on record for the agent."""
    question = session.get(Message, offer.message_id)
    ranking = [{"entry": entry, "similarity": 0.0} for entry in offer.entries]
    escalation = escalate(session, question, reason="low_confidence", kb_ranking=ranking, settings=settings)
    question.ticket_id = escalation.ticket.id
    offer.ticket_id = escalation.ticket.id
    # The assistant's "Do you mean ...?" reply belongs to the ticket's transcript too.
    for reply in session.scalars(select(Message).where(Message.reply_to_id == question.id, Message.ticket_id.is_(None))):
        reply.ticket_id = escalation.ticket.id
    if later is not None and later.ticket_id is None:
        attach_to_ticket(session, escalation.ticket, later, now=now, settings=settings)
    titles = {o.entry: o.title for o in offer_options(offer.entries, settings.kb_dir)}
    offered = "\n".join(f"- {titles.get(entry, entry)} ({entry})" for entry in offer.entries)
    add_note(session, escalation.ticket,
             f"The assistant was unsure and asked the citizen whether they meant:\n{offered}\n"
             f"{_OUTCOME_WORDING[offer.status]}", actor="assistant", now=now)
    return escalation


# The catalogue's texts for a question handed over without Rasa, by situation.
_HANDED_OVER = {
    "earlier_question": ("clarification.earlier_question.created", "clarification.earlier_question.joined"),
    # The same words as Rasa's own hand-over on expiry (domain.yml), from the same catalogue keys.
    "expired": ("rasa.utter_kb_offer_expired_ticket_created", "rasa.utter_kb_offer_expired_ticket_joined"),
}


def handed_over_text(escalation: Escalation, department: str, *, situation: str, language: str | None = None) -> str:
    """What the citizen is told when the core hands their question over itself: ``situation``
    is ``earlier_question`` (they wrote something else) or ``expired`` (they did not answer)."""
    created, joined = _HANDED_OVER[situation]
    return text(created if escalation.created else joined, language, department=department,
                ticket_id=escalation.ticket.public_id, commitment=escalation.commitment)


def due_offers(session: Session, *, now: datetime | None = None, limit: int = 50) -> list[int]:
    now = now or utcnow()
    return list(session.scalars(
        select(KbOffer.id).where(KbOffer.status == PENDING, KbOffer.expires_at <= now)
        .order_by(KbOffer.expires_at).limit(limit)
    ))
