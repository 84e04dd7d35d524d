"""KB questions offered to a citizen whose question was escalated for low confidence."""

from __future__ import annotations

import pytest

from bot.core.escalation import citizen_suggestions
from bot.settings import Settings

RANKING = [
    {"entry": "waste-collection-days", "similarity": 0.48},
    {"entry": "waste-bulky-items", "similarity": 0.41},
    {"entry": "waste-garden-waste", "similarity": 0.37},
    {"entry": "waste-recycling-centre", "similarity": 0.36},
    {"entry": "taxes-dog-tax", "similarity": 0.2},
]


def _settings(**values) -> Settings:
    return Settings(api_keys="test-key-0123456789abcdef", **values)


def test_the_closest_entries_questions_are_offered_best_first() -> None:
    offered = citizen_suggestions("low_confidence", RANKING, _settings())
    assert [entry for entry, _ in offered] == ["waste-collection-days", "waste-bulky-items", "waste-garden-waste"]
    assert offered[0][1].endswith("?") and "collect" in offered[0][1].lower()


def test_entries_below_the_similarity_floor_are_not_offered() -> None:
    assert len(citizen_suggestions("low_confidence", RANKING, _settings(citizen_suggestion_similarity=0.4))) == 2
    assert citizen_suggestions("low_confidence", RANKING, _settings(citizen_suggestion_similarity=0.9)) == []


@pytest.mark.parametrize("reason", ["complaint", "report_problem", "personal_case", "request_human", "out_of_scope"])
def test_messages_that_need_a_person_get_no_faq_list(reason: str) -> None:
    assert citizen_suggestions(reason, RANKING, _settings()) == []


def test_none_when_switched_off_or_the_ranking_is_odd() -> None:
    assert citizen_suggestions("low_confidence", RANKING, _settings(citizen_suggestions=0)) == []
    odd = [None, "x", {"entry": "no-such-entry", "similarity": 0.9}, {"entry": "taxes-dog-tax", "similarity": "high"}]
    assert citizen_suggestions("low_confidence", odd, _settings()) == []
