"""Vulnerable citizens first: a named rule, the citizen's record (with consent), the shorter
commitment in the due time and in the reply, and a flag an agent removed staying removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core.escalation import commitment_text, escalate
from bot.identity.consent import withdraw_consent
from bot.identity.vulnerability import PURPOSE, ConsentMissing, on_record, record_vulnerable
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.tickets.models import TicketEvent
from bot.tickets.priority import AGE_RULE, vulnerability_rule
from bot.tickets.service import CITIZEN_RECORD, change_status, open_or_join_ticket, set_vulnerable


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        _env_file=None,
        api_keys="test-key-0123456789abcdef",
        database_url=db_url,
        response_commitment_hours=24.0,
        urgent_commitment_hours=4.0,
        conversation_window_minutes=30,
    )


def _message(session, text: str, address: str = "+15550100"):
    identity = get_or_create_identity(session, "sms", address)
    message, _ = record_inbound(session, identity, text)
    return message


def _escalate(session, text: str, settings: Settings, address: str = "+15550100"):
    return escalate(session, _message(session, text, address), reason="complaint", kb_ranking=[], settings=settings)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I use a wheelchair and the ramp is blocked", "mentions a wheelchair"),
        ("My 85-year-old mother cannot reach the bin", AGE_RULE),
        ("my father is 91 years old", AGE_RULE),
        ("aged 80, living alone", AGE_RULE),
        ("my elderly neighbour", "mentions an elderly person"),
    ],
)
def test_rules_have_names(text: str, rule: str) -> None:
    assert vulnerability_rule(text) == rule


@pytest.mark.parametrize("text", ["my son is 17 years old", "aged 79", "bin 85 was not emptied", "the 2024 calendar"])
def test_no_rule(text: str) -> None:
    assert vulnerability_rule(text) is None


def test_a_rule_match_stores_its_name_and_promises_the_shorter_commitment(session, settings: Settings) -> None:
    normal = _escalate(session, "My bin was not emptied", settings, address="+15550199")
    result = _escalate(session, "My 85-year-old mother's bin was not emptied", settings)
    ticket = result.ticket
    assert ticket.vulnerable and ticket.vulnerable_reason == AGE_RULE
    assert ticket.vulnerable_by == "assistant" and ticket.vulnerable_at is not None
    assert ticket.due_at - ticket.created_at == timedelta(hours=4)
    assert normal.ticket.due_at - normal.ticket.created_at == timedelta(hours=24)
    assert result.commitment == commitment_text(4) != normal.commitment
    kinds = session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert "vulnerable_changed" in kinds


def test_a_later_message_flags_an_open_ticket_from_now(session, settings: Settings) -> None:
    first = _escalate(session, "My bin was not emptied", settings).ticket
    assert not first.vulnerable
    again = _escalate(session, "I use a wheelchair and cannot carry it", settings)
    assert again.ticket.id == first.id and first.vulnerable
    assert first.vulnerable_reason == "mentions a wheelchair"
    assert first.due_at - first.created_at <= timedelta(hours=4, seconds=5)
    assert again.commitment == commitment_text(4)


def test_a_flag_an_agent_removed_is_not_set_again_by_the_assistant(session, settings: Settings) -> None:
    ticket = _escalate(session, "I use a wheelchair", settings).ticket
    event = set_vulnerable(session, ticket, False, reason="agent ana: the citizen asked", actor="agent:ana",
                           settings=settings)
    assert event is not None and event.kind == "vulnerable_changed"
    assert ticket.due_at - ticket.created_at == timedelta(hours=24)
    _escalate(session, "the wheelchair ramp again", settings)
    assert not ticket.vulnerable and ticket.vulnerable_reason == "agent ana: the citizen asked"


def test_a_reason_is_required(session, settings: Settings) -> None:
    ticket = _escalate(session, "My bin was not emptied", settings).ticket
    with pytest.raises(ValueError, match="reason"):
        set_vulnerable(session, ticket, True, reason="  ", actor="agent:ana", settings=settings)
    assert not ticket.vulnerable


def test_the_citizen_record_flags_new_tickets_only_with_consent(session, settings: Settings) -> None:
    message = _message(session, "hello")
    citizen_id = message.citizen_id
    with pytest.raises(ConsentMissing):
        record_vulnerable(session, citizen_id, actor="ana", consented=False, channel="phone")
    assert not on_record(session, citizen_id)

    record_vulnerable(session, citizen_id, actor="ana", consented=True, channel="phone")
    assert on_record(session, citizen_id)
    first = _escalate(session, "My bin was not emptied", settings).ticket
    assert first.vulnerable and first.vulnerable_reason == CITIZEN_RECORD
    assert first.due_at - first.created_at == timedelta(hours=4)

    change_status(session, first, "resolved", actor="agent:ana")
    withdraw_consent(session, citizen_id, PURPOSE, channel="sms", source="command:stop")
    assert not on_record(session, citizen_id)
    second = _escalate(session, "My bin was not emptied again", settings).ticket
    assert second.id != first.id and not second.vulnerable and second.vulnerable_reason is None
    assert second.due_at - second.created_at == timedelta(hours=24)


def test_open_or_join_without_a_reason_is_not_vulnerable(session, settings: Settings) -> None:
    ticket, _ = open_or_join_ticket(session, inbound=_message(session, "I use a wheelchair"), reason="complaint",
                                    department="waste", settings=settings)
    assert not ticket.vulnerable  # only the escalation decides; callers that pass no reason flag nothing


def test_the_record_follows_a_merge_with_its_consent(session, settings: Settings) -> None:
    from bot.identity.merge import merge_citizens

    older = _message(session, "hello", address="+15550300").citizen_id
    newer = _message(session, "hello", address="+15550301").citizen_id
    record_vulnerable(session, newer, actor="ana", consented=True, channel="phone")
    merge_citizens(session, older, newer, actor="agent:ana")
    assert on_record(session, older) and not on_record(session, newer)
