"""What happens on each kind of turn, called by the thin Rasa actions.

Each function runs in one unit of work: it finds the stored inbound message,
does what the outcome needs (answer, ticket, status lookup), records how the
message was handled, and returns the responses for the action to send. Wording
lives in domain.yml; these return response names and their variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.escalation import CITIZEN_OFFER_KEY, REASON_BY_INTENT, citizen_suggestions, escalate
from bot.core.routing import department_names
from bot.core.turns import record_handling, resolve_turn
from bot.settings import get_settings
from bot.store.db import session_scope
from bot.tickets.ids import extract_ticket_ids
from bot.tickets.service import lookup_status_for_identity

# An e-mail sent back in the ticket's thread joins the ticket rather than being answered,
# so "send one of these questions" would not work there.
CHANNELS_WITHOUT_OFFER = frozenset({"email"})

SMALL_TALK_RESPONSES = {"greet": "utter_greet", "goodbye": "utter_goodbye", "thanks": "utter_thanks"}

STATUS_LABELS = {
    "new": "received and waiting for a member of staff",
    "open": "being worked on",
    "pending_citizen": "waiting for information from you",
    "resolved": "resolved",
    "closed": "closed",
}


@dataclass(frozen=True)
class Reply:
    response: str
    variables: dict[str, Any] = field(default_factory=dict)


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


def answer_faq(turn: Turn) -> list[Reply]:
    entry = turn.kb_match.get("entry")
    if not entry:
        return escalate_turn(turn)
    with session_scope() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        record_handling(message, intent=turn.intent, confidence=turn.confidence, handling="kb_answer", kb_entry_id=entry)
    return [Reply(f"utter_faq/{entry}")]


def escalate_turn(turn: Turn) -> list[Reply]:
    settings = get_settings()
    reason = REASON_BY_INTENT.get(turn.intent or "", "low_confidence")
    with session_scope() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        outcome = escalate(
            session, message, reason=reason, kb_ranking=turn.kb_match.get("ranking") or [], settings=settings
        )
        record_handling(
            message,
            intent=turn.intent,
            confidence=turn.confidence,
            handling="escalated" if outcome.created else "ticket_joined",
            ticket=outcome.ticket,
        )
        offered = []
        if message.identity.channel not in CHANNELS_WITHOUT_OFFER:
            offered = citizen_suggestions(reason, turn.kb_match.get("ranking") or [], settings)
        if offered:
            message.meta = {**(message.meta or {}), CITIZEN_OFFER_KEY: [entry for entry, _ in offered]}
        variables = {
            "ticket_id": outcome.ticket.public_id,
            "department": department_name(outcome.ticket.department),
            "commitment": outcome.commitment,
        }
    replies = [Reply("utter_ticket_created" if outcome.created else "utter_ticket_joined", variables)]
    if offered:
        replies.append(Reply("utter_kb_suggestions", {"suggestions": "\n".join(f"- {q}" for _, q in offered)}))
    return replies


def ticket_status(turn: Turn) -> list[Reply]:
    candidates = extract_ticket_ids(turn.text, expecting_id=True)
    with session_scope() as session:
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
        update = f"Latest update: {lookup.last_public_update}" if lookup.last_public_update else ""
        return [
            Reply(
                "utter_ticket_status",
                {
                    "ticket_id": ticket.public_id,
                    "department": department_name(ticket.department),
                    "status": STATUS_LABELS.get(ticket.status, ticket.status),
                    "last_update": update,
                },
            )
        ]


def small_talk(turn: Turn) -> list[Reply]:
    with session_scope() as session:
        message = resolve_turn(session, sender_id=turn.sender_id, text=turn.text, metadata=turn.metadata)
        record_handling(message, intent=turn.intent, confidence=turn.confidence, handling="small_talk")
    return [Reply(SMALL_TALK_RESPONSES.get(turn.intent or "", "utter_greet"))]


def department_name(department_id: str) -> str:
    return department_names(get_settings().kb_dir).get(department_id, department_id.replace("_", " "))
