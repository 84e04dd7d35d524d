"""Grouping KB gaps: the same question worded differently lands in one group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.console.proposals import GapMessage, group_gaps

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _gap(i: int, text: str) -> GapMessage:
    return GapMessage(i, text, T0 - timedelta(minutes=i), "web", "faq", 0.3, None, "waste", "low_confidence")


def test_rewordings_group_and_unrelated_questions_do_not() -> None:
    groups = group_gaps([
        _gap(1, "compost fair dates?"),
        _gap(2, "When is the compost fair at the recycling centre?"),
        _gap(3, "Can I put my bins out on a holiday?"),
        _gap(4, "bin out on holiday - allowed?"),
        _gap(5, "Where do I pay the dog tax?"),
    ])
    assert [[m.id for m in g.messages] for g in groups] == [[1, 2], [3, 4], [5]]


def test_ties_are_ranked_by_most_recent() -> None:
    groups = group_gaps([_gap(2, "parking at the beach"), _gap(1, "library card lost")])
    assert [g.example.id for g in groups] == [1, 2]
