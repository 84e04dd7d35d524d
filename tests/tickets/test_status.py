from __future__ import annotations

import itertools

import pytest

from bot.tickets.status import ALLOWED_TRANSITIONS, OPEN_STATUSES, STATUSES, InvalidTransition, check_transition

EXPECTED = {
    ("new", "open"), ("new", "pending_citizen"), ("new", "resolved"), ("new", "closed"),
    ("open", "pending_citizen"), ("open", "resolved"), ("open", "closed"),
    ("pending_citizen", "open"), ("pending_citizen", "resolved"), ("pending_citizen", "closed"),
    ("resolved", "open"), ("resolved", "closed"),
}  # fmt: skip


def test_table_is_exactly_the_workflow() -> None:
    assert {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets} == EXPECTED
    assert set(ALLOWED_TRANSITIONS) == set(STATUSES)
    assert OPEN_STATUSES == {"new", "open", "pending_citizen"}


@pytest.mark.parametrize(("from_status", "to_status"), sorted(EXPECTED))
def test_allowed(from_status: str, to_status: str) -> None:
    check_transition(from_status, to_status)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    sorted(set(itertools.product(STATUSES, STATUSES)) - EXPECTED),
)
def test_refused(from_status: str, to_status: str) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition(from_status, to_status)
    assert isinstance(info.value, ValueError)
    assert from_status in str(info.value) and to_status in str(info.value)


def test_messages_are_clear() -> None:
    with pytest.raises(InvalidTransition, match="final status"):
        check_transition("closed", "open")
    with pytest.raises(InvalidTransition, match="allowed from 'resolved': closed, open"):
        check_transition("resolved", "pending_citizen")
    with pytest.raises(InvalidTransition, match="unknown ticket status 'archived'"):
        check_transition("open", "archived")
    with pytest.raises(InvalidTransition, match="unknown ticket status 'draft'"):
        check_transition("draft", "open")
