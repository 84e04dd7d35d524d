"""What happens on each kind of turn, called by the thin Rasa actions.

Each function runs in one unit of work: it finds the stored inbound message,
does what the outcome needs (answer, ticket, status lookup), records how the
message was handled, and returns the responses for the action to send. Wording
lives in domain.yml; these return response names and their variables. Each takes the
process's services (the action server's runtime) rather than building its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.core import clarification
from bot.core.escalation import REASON_BY_INTENT, escalate
from bot.core.inbound import KbChoice
from bot.core.routing import department_names
from bot.core.turns import resolve_turn
from bot.store.messages import record_handling
from bot.store.models import ChannelIdentity
from bot.texts import text
from bot.tickets.ids import extract_ticket_ids
from bot.tickets.service import lookup_status_for_identity
from bot.tickets.status import OPEN_STATUSES, STATUSES

# E-mail does not ask "Do you mean ...?": a reply in the ticket's thread joins the ticket, and
# a round trip of mails for one question serves nobody. It answers what it is sure of, and
# hands the rest over.
CHANNELS_WITHOUT_OFFER = frozenset({"email"})

SMALL_TALK_RESPONSES = {"greet": "utter_greet", "goodbye": "utter_goodbye", "thanks": "utter_thanks"}



def status_label(status: str, language: str | None = None) -> str:
    """How a ticket status reads to the citizen (ticket.status.<status> in bot.texts)."""
    return text(f"ticket.status.{status}", language) if status in STATUSES else status


if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.settings import Settings


class StoreServices(Protocol):
    """What an outcome needs from the process's runtime (``bot.runtime.Runtime`` in the action server)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


@dataclass(frozen=True)
class Reply:
    response: str
    variables: dict[str, Any] = field(default_factory=dict)
    # Rasa buttons ({"title", "payload"}) sent with the response, for Rasa's own channels;
    # this project's channels render the stored offer instead (bot.core.clarification).
    buttons: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Turn:
    """The parts of Rasa's latest_message the outcomes need."""

    sender_id: str
    text: str
    intent: str | None
    confidence: float | None
    metadata: dict[str, Any]
    kb_match: dict[str, Any]
    entities: list[dict[str, Any]]

    @classmethod
    def from_latest_message(cls, sender_id: str, latest: dict[str, Any]) -> "Turn":
        intent = latest.get("intent") or {}
        return cls(
            sender_id=sender_id,
            text=latest.get("text") or "",
            intent=intent.get("name"),
            confidence=intent.get("confidence"),
            metadata=latest.get("metadata") or {},
            kb_match=latest.get("kb_match") or {},
            entities=latest.get("entities") or [],
        )


def answer_faq(turn: Turn, services: StoreServices) -> list[Reply]:
    entry = turn.kb_match.get("entry")
    if not entry:
        return escalate_turn(turn, services)
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        record_handling(message, intent=turn.intent, confidence=turn.confidence, handling="kb_answer", kb_entry_id=entry)
    return [Reply(f"utter_faq/{entry}")]


def escalate_turn(turn: Turn, services: StoreServices, *, reason: str | None = None) -> list[Reply]:
    """``reason``: the ticket's, when not the intent's (an answer missing in the citizen's language)."""
    settings = services.settings
    reason = reason or REASON_BY_INTENT.get(turn.intent or "", "low_confidence")
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        return [_escalate(session, message, turn, reason, settings)]


def _escalate(session, message, turn: Turn, reason: str, settings) -> Reply:
    outcome = escalate(session, message, reason=reason, kb_ranking=turn.kb_match.get("ranking") or [], settings=settings)
    record_handling(
        message,
        intent=turn.intent,
        confidence=turn.confidence,
        handling="escalated" if outcome.created else "ticket_joined",
        ticket=outcome.ticket,
    )
    return _ticket_reply(outcome, settings)


def _ticket_reply(outcome, settings: Settings, prefix: str = "utter_ticket") -> Reply:
    variables = {
        "ticket_id": outcome.ticket.public_id,
        "department": department_name(outcome.ticket.department, settings),
        "commitment": outcome.commitment,
    }
    return Reply(f"{prefix}_created" if outcome.created else f"{prefix}_joined", variables)


def offer_kb_choices(turn: Turn, services: StoreServices) -> list[Reply]:
    """Unsure, with plausible KB entries: ask which one the citizen means (or hand over)."""
    settings = services.settings
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        options = clarification.offer_options(turn.kb_match.get("offer") or [], settings.kb_dir)
        if not options or message.identity.channel in CHANNELS_WITHOUT_OFFER:
            return [_escalate(session, message, turn, "low_confidence", settings)]
        message.confidence = turn.confidence
        offer = clarification.open_offer(session, message, options, settings)
        buttons = [{"title": o.title, "payload": clarification.rasa_payload(KbChoice(offer.token, o.n))}
                   for o in options]
        buttons.append({"title": clarification.none_option_title(), "payload": clarification.rasa_payload(KbChoice(offer.token, 0))})
    return [Reply("utter_ask_kb_choice", {"options": clarification.options_text(options)}, buttons)]


def settle_kb_choice(turn: Turn, services: StoreServices) -> list[Reply]:
    """A pick, or "none", of a "Do you mean ...?" question; checked against the stored offer."""
    settings = services.settings
    value = next((e.get("value") for e in turn.entities if e.get("entity") == clarification.CHOICE_ENTITY), None)
    choice = clarification.parse_choice_entity(value)
    if choice is not None and turn.intent == clarification.NONE_INTENT and choice.option != 0:
        choice = None  # "none" with an option number: a hand-made payload, not a button
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        settled = clarification.settle_choice(session, message, choice, settings)
        if settled.outcome == "answered":
            record_handling(message, intent=clarification.PICK_INTENT, confidence=1.0, handling="kb_answer",
                            kb_entry_id=settled.entry)
            return [Reply(f"utter_faq/{settled.entry}")]
        if settled.outcome == "declined":
            record_handling(message, intent=clarification.NONE_INTENT, confidence=1.0,
                            handling="escalated" if settled.escalation.created else "ticket_joined",
                            ticket=settled.ticket)
            return [_ticket_reply(settled.escalation, settings)]
        record_handling(message, intent=turn.intent, confidence=1.0, handling="choice_" + settled.outcome,
                        ticket=settled.ticket if settled.ticket is not None and settled.ticket.status in OPEN_STATUSES else None)
        if settled.outcome == "already_answered":
            return [Reply("utter_kb_choice_already_answered")]
        if settled.outcome == "closed" and settled.ticket is not None:
            return [Reply("utter_kb_choice_handed_over", {"ticket_id": settled.ticket.public_id})]
        return [Reply("utter_kb_choice_invalid")]


def expire_kb_offer(turn: Turn, services: StoreServices) -> list[Reply]:
    """No pick in time: the question goes to a person, and the citizen is told.

    Only the core's expiry loop sends this turn, with the offer's id and the time in the
    metadata (a citizen cannot set metadata); anything else, or an offer the citizen settled
    meanwhile, changes nothing and says nothing."""
    settings = services.settings
    vouched = turn.metadata.get(clarification.EXPIRY_METADATA_KEY)
    value = next((e.get("value") for e in turn.entities if e.get("entity") == clarification.CHOICE_ENTITY), None)
    choice = clarification.parse_choice_entity(value)
    if not isinstance(vouched, dict) or choice is None:
        return []
    with services.sessions.begin() as session:
        offer = clarification.offer_for_token(session, choice.offer)
        if offer is None or offer.id != vouched.get("offer") or session.get(ChannelIdentity, offer.identity_id).public_id != turn.sender_id:
            return []
        now = datetime.fromisoformat(vouched["now"]) if isinstance(vouched.get("now"), str) else None
        escalation = clarification.expire_offer(session, offer, settings, now=now)
        if escalation is None:
            return []
        return [_ticket_reply(escalation, settings, prefix="utter_kb_offer_expired_ticket")]


def ticket_status(turn: Turn, services: StoreServices) -> list[Reply]:
    candidates = extract_ticket_ids(turn.text, expecting_id=True)
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        record_handling(message, intent=turn.intent, confidence=turn.confidence, handling="status")
        if not candidates:
            return [Reply("utter_ask_ticket_id")]
        chosen = next((c for c in candidates if c.valid), candidates[0])
        if not chosen.valid:
            return [Reply("utter_ticket_id_mistyped", {"ticket_id": chosen.raw})]
        lookup = lookup_status_for_identity(session, message.identity, chosen.canonical)
        if lookup.outcome != "found":
            return [Reply("utter_ticket_not_found")]
        ticket = lookup.ticket
        update = text("ticket.latest_update", update=lookup.last_public_update) if lookup.last_public_update else ""
        return [
            Reply(
                "utter_ticket_status",
                {
                    "ticket_id": ticket.public_id,
                    "department": department_name(ticket.department, services.settings),
                    "status": status_label(ticket.status),
                    "last_update": update,
                },
            )
        ]


def small_talk(turn: Turn, services: StoreServices) -> list[Reply]:
    with services.sessions.begin() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        record_handling(message, intent=turn.intent, confidence=turn.confidence, handling="small_talk")
    return [Reply(SMALL_TALK_RESPONSES.get(turn.intent or "", "utter_greet"))]


def department_name(department_id: str, settings: Settings) -> str:
    return department_names(settings.kb_dir).get(department_id, department_id.replace("_", " "))
