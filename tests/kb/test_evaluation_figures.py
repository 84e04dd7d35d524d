"""The evaluation's arithmetic: what counts as right, wrong and escalated (bot/evaluation.py)."""

from __future__ import annotations

import json

import pytest

from bot.evaluation import ESCALATE, Case, Outcome, figures, report, write_results


def outcome(expected: str, kind: str, entry: str | None = None, ranked: tuple[str, ...] = (),
            offered: tuple[str, ...] = ()) -> Outcome:
    return Outcome(Case(f"message for {expected}", expected, "faq" if expected != ESCALATE else "complaint"),
                   kind, entry, "faq" if entry else "complaint", ranked, offered)


OUTCOMES = [
    outcome("a", "kb_answer", "a", ("a", "b")),  # right
    outcome("b", "kb_answer", "a", ("a", "b")),  # wrong entry: ranked second
    outcome("c", "escalated", None, ("c", "a"), ("a",)),  # refused although ranked first; c too weak to offer
    outcome("d", "escalated", None, ("x", "y", "z", "w", "v"), ("x", "d")),  # not in the top five, yet offered
    outcome(ESCALATE, "escalated"),
    outcome(ESCALATE, "ticket_joined"),
    outcome(ESCALATE, "kb_answer", "a"),  # answered a complaint: the costliest error
    outcome(ESCALATE, "small_talk"),  # neither answered nor escalated: a miss, not a wrong answer
]


def test_figures_count_wrong_answers_over_all_messages_and_rankings_over_in_kb_ones():
    fig = figures(OUTCOMES)
    assert (fig.in_kb, fig.must_escalate) == (4, 4)
    assert fig.accuracy == pytest.approx(1 / 4)
    assert fig.escalation_recall == pytest.approx(2 / 4)
    assert fig.wrong_answers == 2 and fig.wrong_answer_rate == pytest.approx(2 / 8)
    assert fig.ranked_first == pytest.approx(2 / 4)
    assert fig.ranked_top5 == pytest.approx(3 / 4)
    # c and d were escalated; only c's right entry is among the three the agent is offered.
    assert (fig.escalated_in_kb, fig.suggested_to_agent) == (2, 1)
    # The citizen's offer is what the reply held: d's question was offered, c's was not.
    assert fig.offered_to_citizen == 1


def test_results_files_carry_the_ranking_diagnostic_and_each_miss(tmp_path, capsys):
    data = report("toy", OUTCOMES)
    assert "ranked first by the matcher:  50.0%" in capsys.readouterr().out
    write_results({"command": "test", "date": "today", "machine": "here", "model": "m", "sets": {"toy": data}}, tmp_path)
    table_row = next(line for line in (tmp_path / "understanding.md").read_text().splitlines() if line.startswith("| toy"))
    assert table_row.endswith("| 25.0% | 50.0% | 25.0% | 50.0% |")
    assert (tmp_path / "understanding.md").read_text().count("- toy: 1 of 2") == 2
    errors = json.loads((tmp_path / "understanding.json").read_text())["sets"]["toy"]["errors"]
    refused = next(e for e in errors if e["expected"] == "c")
    assert refused["ranked_first"] == "c" and refused["got"] == "escalated"
    assert all("ranked_first" not in e for e in errors if e["expected"] == ESCALATE)
