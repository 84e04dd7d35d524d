"""The evaluation's arithmetic: answered, asked, self-served, wrong and handed over (tools/evaluation/understanding.py)."""

from __future__ import annotations

import json

import pytest

from tools.evaluation.understanding import ESCALATE, Case, Outcome, figures, recorded_clinc, report, write_results


def outcome(expected: str, kind: str, entry: str | None = None, ranked: tuple[str, ...] = (),
            offered: tuple[str, ...] = (), then: tuple[str | None, str | None] = (None, None)) -> Outcome:
    return Outcome(Case(f"message for {expected}", expected, "faq" if expected != ESCALATE else "complaint"),
                   kind, entry, "faq" if entry else "complaint", ranked, offered, then[0], then[1])


OUTCOMES = [
    outcome("a", "kb_answer", "a", ("a", "b")),  # right on the first turn
    outcome("b", "kb_answer", "a", ("a", "b")),  # wrong entry: ranked second
    outcome("c", "asked", None, ("c", "a"), ("c", "a"), ("kb_answer", "c")),  # asked, picked: self-served
    outcome("d", "asked", None, ("x", "y", "z", "w", "v"), ("x", "y"), ("escalated", None)),  # d not offered: none
    outcome("e", "escalated", None, ("e",)),  # handed over although ranked first
    outcome(ESCALATE, "escalated"),
    outcome(ESCALATE, "asked", None, (), ("a",), ("escalated", None)),  # asked, refused: a ticket, not a wrong answer
    outcome(ESCALATE, "kb_answer", "a"),  # answered a complaint: the costliest error
    outcome(ESCALATE, "small_talk"),  # neither answered nor handed over: a miss, not a wrong answer
]


def test_figures_follow_the_three_outcomes_and_the_simulated_citizen():
    fig = figures(OUTCOMES)
    assert (fig.in_kb, fig.must_escalate) == (5, 4)
    assert fig.first_turn_right == pytest.approx(1 / 5)
    assert fig.self_served == pytest.approx(2 / 5)
    assert fig.escalation_recall == pytest.approx(2 / 4)
    assert fig.wrong_answers == 2 and fig.wrong_answer_rate == pytest.approx(2 / 9)
    # d (after "none"), e, and two must-escalate messages ended as tickets.
    assert fig.tickets_per_100 == pytest.approx(100 * 4 / 9)
    assert fig.asked_share == pytest.approx(3 / 9)
    assert fig.ranked_first == pytest.approx(3 / 5)
    assert fig.ranked_top5 == pytest.approx(4 / 5)
    assert (fig.asked_in_kb, fig.right_entry_offered) == (2, 1)
    # d and e were handed over; only e's right entry is among the three the agent is offered.
    assert (fig.escalated_in_kb, fig.suggested_to_agent) == (2, 1)


def test_results_files_carry_every_figure_and_each_miss(tmp_path, capsys):
    data = report("toy", OUTCOMES)
    printed = capsys.readouterr().out
    assert "self-served (after asking) :  40.0%" in printed and "asked about                :  33.3%" in printed
    write_results({"command": "test", "date": "today", "machine": "here", "model": "m", "sets": {"toy": data}}, tmp_path)
    table_row = next(line for line in (tmp_path / "understanding.md").read_text().splitlines() if line.startswith("| toy"))
    assert table_row.endswith("| 20.0% | 40.0% | 22.2% (2) | 50.0% | 44.4 | 33.3% | 60.0% |")
    errors = json.loads((tmp_path / "understanding.json").read_text())["sets"]["toy"]["errors"]
    refused = next(e for e in errors if e["expected"] == "d")
    assert refused["offered"] == ["x", "y"] and refused["then"] == "escalated"
    assert all("ranked_first" not in e for e in errors if e["expected"] == ESCALATE)


def test_the_recorded_clinc150_run_is_reported_with_its_command_and_epochs(tmp_path):
    clinc = {"command": "python -m tools eval-clinc --epochs 8", "measured_at": "2026-12-07", "epochs": 8,
             "config_epochs": 80, "variants": [{"variant": "threshold", "threshold": 0.41,
                                                 "test": {"in_scope_accuracy": 0.85, "oos_recall": 0.6}}]}
    (tmp_path / "clinc150.json").write_text(json.dumps(clinc))
    assert recorded_clinc(tmp_path) == clinc and recorded_clinc(tmp_path / "nowhere") is None
    write_results({"command": "test", "date": "today", "machine": "here", "model": "m", "sets": {},
                   "clinc150": clinc}, tmp_path)
    text = (tmp_path / "understanding.md").read_text()
    assert "`python -m tools eval-clinc --epochs 8`" in text and "DIET 8 epochs (config.yml: 80)" in text
    assert "- threshold, threshold 0.41: 85.0% / 60.0%" in text
