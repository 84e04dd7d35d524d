"""Escalating a message to a person: the one place a ticket is opened or joined.

Used by the escalation action (the normal path) and by the conversation core
when Rasa cannot be reached, so both paths route, prioritise and commit to a
response time the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.core.routing import route_department
from bot.settings import Settings
from bot.store.models import Message, Ticket
from bot.tickets.service import department_commitment, detect_priority, open_or_join_ticket

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


def commitment_text(hours: float) -> str:
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    whole = int(hours) if float(hours).is_integer() else hours
    return f"{whole} hour" if whole == 1 else f"{whole} hours"


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
    ticket, created = open_or_join_ticket(
        session, inbound=inbound, reason=reason, department=department, priority=priority, settings=settings
    )
    hours = department_commitment(session, ticket.department, ticket.priority, settings).total_seconds() / 3600
    return Escalation(ticket=ticket, created=created, commitment=commitment_text(hours))
