"""One rule for due_at in every path that sets it: opening, a raised priority, pause and resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.escalation import ticket_commitment
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.tickets import schedule
from bot.tickets.models import Ticket
from bot.tickets.service import change_status, department_commitment, open_or_join_ticket
from tests.alerts.conftest import make_alert_settings

MONDAY_9 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # 09:00 in Madrid


def _open(session, settings, text: str, now: datetime, priority: str = "normal") -> Ticket:  # noqa: ANN001
    identity = get_or_create_identity(session, "sms", "+15550009")
    message, _ = record_inbound(session, identity, text)
    ticket, _ = open_or_join_ticket(session, inbound=message, reason="complaint", department="culture",
                                    priority=priority, now=now, settings=settings)
    return ticket


def test_business_hours_in_every_path(session, db_url, kb_dir) -> None:
    settings = make_alert_settings(db_url, kb_dir, response_commitment_hours=24.0, urgent_commitment_hours=4.0)
    ticket = _open(session, settings, "The library card does not work", MONDAY_9)
    # 24 working hours of 9 a day from Monday 09:00: Mon 8, Tue 9, Wed 7 -> Wednesday 15:00 Madrid.
    assert ticket.due_at == datetime(2026, 12, 9, 14, 0, tzinfo=UTC)
    assert ticket_commitment(session, ticket, settings) == "24 working hours"

    # Waiting for the citizen from Monday 10:00 to Tuesday 10:00 (9 working hours): due 9 h later.
    change_status(session, ticket, "pending_citizen", actor="agent", now=MONDAY_9 + timedelta(hours=1),
                  settings=settings)
    change_status(session, ticket, "open", actor="citizen", now=MONDAY_9 + timedelta(days=1, hours=1),
                  settings=settings)
    assert ticket.due_at == datetime(2026, 12, 10, 14, 0, tzinfo=UTC)

    # An urgent message on Tuesday 16:00: 4 working hours from then (1 h Tuesday, 3 h Wednesday), sooner.
    tuesday_16 = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
    same = _open(session, settings, "There is a gas leak in the library", tuesday_16, priority="urgent")
    assert same.id == ticket.id and same.priority == "urgent"
    assert same.due_at == datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
    assert same.warn_at == datetime(2026, 12, 9, 9, 12, tzinfo=UTC)
    assert ticket_commitment(session, same, settings) == "4 working hours"


def test_retimed_while_waiting_then_resumed_counts_the_pause_once(session, db_url, kb_dir) -> None:
    """The console's priority change re-times with schedule.apply_clock (bot.console.ticket_actions.set_priority)."""
    settings = make_alert_settings(db_url, kb_dir, response_commitment_hours=24.0, urgent_commitment_hours=4.0)
    ticket = _open(session, settings, "The library card does not work", MONDAY_9)
    change_status(session, ticket, "pending_citizen", actor="agent", now=MONDAY_9 + timedelta(hours=1),
                  settings=settings)
    # Urgent while waiting (Monday 12:00): 4 h from opening, the pause so far not counted: Monday 13:00.
    ticket.priority = "urgent"
    schedule.apply_clock(session, ticket, settings, department_commitment(session, "culture", "urgent", settings),
                         now=MONDAY_9 + timedelta(hours=3))
    assert ticket.due_at == MONDAY_9 + timedelta(hours=4)
    # The citizen answers on Tuesday 10:00 (9 working hours later): 3 h were left at the pause -> Tuesday 13:00.
    change_status(session, ticket, "open", actor="citizen", now=MONDAY_9 + timedelta(days=1, hours=1),
                  settings=settings)
    assert ticket.due_at == MONDAY_9 + timedelta(days=1, hours=4)
