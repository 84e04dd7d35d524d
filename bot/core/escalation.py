"""Escalating a message to a person: the one place a ticket is opened or joined.

Used by the escalation action (the normal path) and by the conversation core
when Rasa cannot be reached, so both paths route, prioritise and commit to a
response time the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.core.routing import route_department
from bot.identity.vulnerability import on_record
from bot.settings import Settings
from bot.store.models import Message
from bot.texts import text
from bot.tickets.models import Ticket
from bot.tickets.priority import vulnerability_rule
from bot.tickets.schedule import calendar_of
from bot.tickets.service import CITIZEN_RECORD, department_commitment, detect_priority, open_or_join_ticket

# Key in an escalated message's ``meta``: the KB entries closest to it, best first.
KB_SUGGESTIONS_KEY = "kb_suggestions"
KB_SUGGESTIONS = 3
# Key in an asked message's ``meta``: the KB entries the citizen was asked to pick from.
CITIZEN_OFFER_KEY = "kb_offered"

# Why a message escalated, from the final NLU intent.
REASON_BY_INTENT = {
    "complaint": "complaint",
    "report_problem": "report_problem",
    "personal_case": "personal_case",
    "request_human": "request_human",
    "out_of_scope": "out_of_scope",
    "nlu_fallback": "low_confidence",
    "faq": "low_confidence",
}


@dataclass(frozen=True)
class Escalation:
    ticket: Ticket
    created: bool
    commitment: str


def ticket_commitment(session: Session, ticket: Ticket, settings: Settings) -> str:
    """The response time a reply about ``ticket`` promises, for every channel and every path.

    It is the commitment of the ticket's department at the ticket's priority (the shorter one
    for a vulnerable citizen), the same one its due time was set from, so what the citizen is told and what staff are
    measured against never disagree. A department with business hours counts the
    commitment in them (bot.tickets.schedule), and the promise says so."""
    hours = department_commitment(
        session, ticket.department, ticket.priority, settings, vulnerable=ticket.vulnerable
    ).total_seconds() / 3600
    working = not calendar_of(settings.kb_dir, ticket.department).round_the_clock
    return commitment_text(hours, working=working)


def commitment_text(hours: float, *, working: bool = False) -> str:
    if working:
        whole = int(hours) if float(hours).is_integer() else hours
        return text("commitment.working_hour" if whole == 1 else "commitment.working_hours", hours=whole)
    if hours >= 48 and hours % 24 == 0:
        return text("commitment.days", days=int(hours // 24))
    whole = int(hours) if float(hours).is_integer() else hours
    return text("commitment.hour", hours=whole) if whole == 1 else text("commitment.hours", hours=whole)


def escalate(
    session: Session,
    inbound: Message,
    *,
    reason: str,
    kb_ranking: Sequence[dict],
    settings: Settings,
) -> Escalation:
    department = route_department(inbound.text, kb_ranking, settings.kb_dir)
    priority = detect_priority(inbound.text)
    vulnerable = vulnerability_rule(inbound.text) or (CITIZEN_RECORD if on_record(session, inbound.citizen_id) else None)
    ticket, created = open_or_join_ticket(
        session, inbound=inbound, reason=reason, department=department, priority=priority, settings=settings,
        vulnerable_reason=vulnerable,
    )
    if ticket.language is None:
        ticket.language = inbound.language  # the language the case was opened in, for the agent and the queue
    remember_kb_suggestions(inbound, kb_ranking)
    return Escalation(ticket=ticket, created=created, commitment=ticket_commitment(session, ticket, settings))


def remember_kb_suggestions(message: Message, ranking: Sequence[Any]) -> None:
    """Keep the matcher's closest KB entries on an escalated message, for the agent.

    The assistant escalates many answerable questions because it is not sure enough to
    answer them, yet it has usually ranked the right entry first: shown to the agent, the
    answer is one click away. The entries are what the assistant saw, not a judgement."""
    entries = [r["entry"] for r in ranking if isinstance(r, dict) and isinstance(r.get("entry"), str)]
    if entries:
        message.meta = {**(message.meta or {}), KB_SUGGESTIONS_KEY: entries[:KB_SUGGESTIONS]}
