"""Test helpers of the insight pages: seeded statistics with known answers, and a stand-in
for Rasa that behaves like the action server.

Every number asserted in tests/console/test_stats.py follows from the rows of
``seed_known``; the comments say which figure each row feeds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.console.stats import Period
from bot.core.escalation import escalate
from bot.core.rasa_client import RasaUnavailable
from bot.core.turns import METADATA_KEY
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_scope
from bot.store.messages import record_handling
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import Ticket

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PERIOD = Period(datetime(2026, 3, 1).date(), datetime(2026, 3, 7).date())


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def message(session: Session, identity: ChannelIdentity, when: datetime, handling: str | None,
            *, text: str = "a question", kb_entry_id: str | None = None, direction: str = "in",
            intent: str | None = None, ticket: Ticket | None = None) -> Message:
    row = Message(
        citizen_id=identity.citizen_id, identity_id=identity.id, channel=identity.channel,
        direction=direction, text=text, created_at=when, handling=handling, kb_entry_id=kb_entry_id,
        intent=intent, ticket_id=ticket.id if ticket is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def ticket(session: Session, identity: ChannelIdentity, public_id: str, *, department: str, reason: str,
           created: datetime, status: str, first_response: datetime | None = None,
           resolved: datetime | None = None, closed: datetime | None = None,
           due: datetime | None = None, subject: str = "subject") -> Ticket:
    row = Ticket(
        public_id=public_id, citizen_id=identity.citizen_id, identity_id=identity.id,
        department=department, reason=reason, subject=subject, status=status, created_at=created,
        updated_at=created, due_at=due or created + timedelta(hours=24), first_response_at=first_response,
        resolved_at=resolved, closed_at=closed,
    )
    session.add(row)
    session.flush()
    return row


def seed_known(session: Session) -> None:
    web = get_or_create_identity(session, "web", "alice")
    telegram = get_or_create_identity(session, "telegram", "bob")
    email = get_or_create_identity(session, "email", "carol@example.org")

    # Messages: 9 inbound in the period (web 4, telegram 4, email 1).
    message(session, web, at(1, 9), "kb_answer", kb_entry_id="waste-bulky-items")
    message(session, web, at(1, 9, 5), "kb_answer", kb_entry_id="waste-bulky-items")
    message(session, web, at(1, 9, 6), None, direction="out", text="an answer")  # outbound: not counted
    message(session, telegram, at(1, 10), "escalated")
    message(session, web, at(2, 11), "small_talk")
    message(session, email, at(2, 12), "ticket_joined")
    message(session, telegram, at(5, 8), "kb_answer", kb_entry_id="parking-resident-permit")
    message(session, telegram, at(5, 9), "status")
    message(session, telegram, at(5, 10), "kb_answer", kb_entry_id="waste-bulky-items")
    message(session, web, at(7, 23, 59, 59), "attachment_added")  # last second of the period
    # Outside the period on both sides.
    message(session, web, at(8, 0), "kb_answer", kb_entry_id="waste-bulky-items")
    message(session, web, at(28, 23, 59, month=2), "kb_answer", kb_entry_id="taxes-dog-tax")

    # Tickets opened in the period (due 24 h after opening unless given).
    ticket(session, web, "T1", department="waste", reason="complaint", created=at(1, 10), status="resolved",
           first_response=at(1, 12), resolved=at(2, 10))                      # 2 h, met; resolved in 24 h
    ticket(session, telegram, "T2", department="waste", reason="low_confidence", created=at(2, 8),
           status="open", first_response=at(3, 10))                         # 26 h, missed; overdue now
    ticket(session, email, "T3", department="parking", reason="low_confidence", created=at(3, 9),
           status="new")                                                    # no response, past due: missed
    ticket(session, web, "T4", department="parking", reason="out_of_scope", created=at(6, 0), status="closed",
           first_response=at(6, 4), closed=at(8, 0))                         # 4 h, met; closed after 48 h
    ticket(session, telegram, "T5", department="taxes", reason="complaint", created=at(7, 20), status="new",
           due=NOW + timedelta(days=1))                                      # not due yet: pending
    ticket(session, email, "T6", department="roads", reason="request_human", created=at(4, 9), status="closed",
           closed=at(4, 10))                                                 # closed unanswered after 1 h
    # Opened before the period: only in the open/overdue snapshot.
    ticket(session, web, "T7", department="waste", reason="complaint", created=at(20, 9, month=2), status="open",
           first_response=at(20, 10, month=2))


ANSWER = "Book a free bulky-waste pickup online."


class FakeRasa:
    """Stands in for Rasa plus the action server, recording the turn on the stored message as
    the real actions do: a question about sofas or bulky waste is answered from the KB, anything
    else escalates as an FAQ the assistant was unsure of (a KB gap)."""

    def __init__(self, db_url: str, settings: Any = None, *, answer_everything: bool = False) -> None:
        self.db_url = db_url
        self.settings = settings
        self.answer_everything = answer_everything
        self.down = False
        self.calls: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(text)
        if self.down:
            raise RasaUnavailable("stand-in is down")
        with session_scope(self.db_url) as session:
            message = session.get(Message, metadata[METADATA_KEY])
            if self.answer_everything or any(word in text.lower() for word in ("sofa", "bulky")):
                record_handling(message, intent="faq", confidence=0.9, handling="kb_answer",
                                kb_entry_id="waste-bulky-items")
                return [{"recipient_id": sender, "text": ANSWER}]
            outcome = escalate(session, message, reason="low_confidence", kb_ranking=[], settings=self.settings)
            record_handling(message, intent="nlu_fallback", confidence=0.3,
                            handling="escalated" if outcome.created else "ticket_joined", ticket=outcome.ticket)
            return [{"recipient_id": sender,
                     "text": f"I have passed your question to our staff as ticket {outcome.ticket.public_id}."}]

    def close(self) -> None:
        pass
