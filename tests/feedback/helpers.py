"""A resolved ticket with its survey asked, for the feedback tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.feedback.service import ask_on_resolution
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.tickets.models import Ticket
from bot.tickets.service import change_status, open_or_join_ticket
from bot.tickets.status import RESOLVED


def resolved_ticket(session: Session, *, channel: str = "telegram", sender: str = "77",
                    text: str = "The street light on Mill Road is broken", department: str = "roads",
                    now: datetime | None = None) -> Ticket:
    identity = get_or_create_identity(session, channel, sender)
    report, _ = record_inbound(session, identity, text)
    ticket, _ = open_or_join_ticket(session, inbound=report, reason="report_problem", department=department)
    change_status(session, ticket, RESOLVED, actor="agent:wanda", now=now)
    return ticket


def resolved_and_asked(session: Session, **kw):
    ticket = resolved_ticket(session, **kw)
    survey = ask_on_resolution(session, ticket, now=kw.get("now"))
    return ticket, survey
