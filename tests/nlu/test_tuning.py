"""The tuner's replay: threshold search and the wrong-answer trade-off curve, on recorded scores."""

from __future__ import annotations

import json

from bot.nlu.decision import Thresholds
from tools.evaluation.tuning import (
    frontier,
    grade,
    main,
    outcomes,
    rates,
    recorded_thresholds,
    replay_main,
    search,
    simulate,
    write_thresholds,
)
from tools.evaluation.understanding import ESCALATE, Case


def _score(entry: str, similarity: float, intent: str = "faq") -> dict:
    return {
        "diet_intent": intent, "diet_confidence": 0.99, "ranking": [(entry, similarity), ("other", 0.1)],
        "faq_similarity": similarity, "intent_similarity": {}, "unknown_words": 0,
    }


# Three answerable questions with falling scores, and an on-topic question the KB does not
# answer scoring between them: answering the third costs one wrong answer.
CASES = [
    Case("when are bins collected?", "bins", "faq"),
    Case("bin day?", "bins", "faq"),
    Case("which day do you take the rubbish?", "bins", "faq"),
    Case("do you sell compost bins?", ESCALATE, "kb_gap"),
    Case("the bin men left a mess", ESCALATE, "complaint"),
]
SCORES = [
    _score("bins", 0.80), _score("bins", 0.60), _score("bins", 0.40), _score("bins", 0.50),
    _score("bins", 0.9, intent="complaint"),
]


def test_outcomes_count_each_kind_of_result() -> None:
    counts = outcomes(CASES, SCORES, Thresholds(meta_threshold=0.9, kb_threshold=0.45, kb_margin=0.0, kb_override=1.01))
    assert counts == {"right": 2, "wrong_entry": 0, "unanswered_faq": 1, "answered_must_escalate": 1,
                      "escalated": 1, "missed_escalations": 0}


def test_frontier_gives_the_most_right_answers_at_each_wrong_answer_budget() -> None:
    # Recall >= 95% needs both must-escalate messages escalated: no wrong answer allowed.
    graded = grade(CASES, SCORES)
    assert [(wrong, right) for wrong, right, _ in frontier(graded)] == [(0, 2)]
    # At 50% recall one wrong answer buys the third right one.
    assert [(wrong, right) for wrong, right, _ in frontier(graded, min_recall=0.5)] == [(0, 2), (1, 3)]


def test_search_weighs_a_wrong_answer_three_times_an_unanswered_question() -> None:
    # Answering the third question costs one wrong answer (3) to save one unanswered (1): not worth it.
    thresholds, detail = search(grade(CASES, SCORES))
    assert detail == {"cost": 1.0, "wrong_answers": 0, "missed_escalations": 0, "unanswered_faq": 1}
    assert outcomes(CASES, SCORES, thresholds)["right"] == 2


def test_replaying_recorded_scores_needs_no_model(tmp_path, capsys) -> None:
    recorded = tmp_path / "scores.json"
    recorded.write_text(json.dumps([{"case": vars(c), **s} for c, s in zip(CASES, SCORES)]))
    assert main(dev_set=tmp_path / "unused.tsv", write=False, scores_in=recorded) == 0
    out = capsys.readouterr().out
    assert "<= 0 wrong answers (0.0%): 2 of 3 in-KB messages answered right (66.7%)" in out


# -- the three-outcome replay ----------------------------------------------------

ASKING = Thresholds(meta_threshold=0.9, kb_threshold=0.7, kb_margin=0.0, kb_override=1.01,
                    ask_threshold=0.45, ask_window=0.1)


def test_simulate_counts_a_picked_offer_as_self_served_and_a_refused_one_as_a_ticket() -> None:
    counts = simulate(CASES, SCORES, ASKING)
    # 0.80 answered; 0.60 asked and picked; 0.40 below the ask band: ticket, not served;
    # the compost-bin question (0.50) asked, "none of these", a ticket; the complaint handed over.
    assert counts == {"messages": 5, "in_kb": 3, "must_escalate": 2, "first_turn_right": 1, "picked_right": 1,
                      "wrong_answers": 0, "escalated": 2, "asked": 2, "asked_in_kb": 1}
    assert rates(counts) == {"first_turn_right": 33.3, "self_served": 66.7, "wrong_answers": 0.0,
                             "escalation_recall": 100.0, "asked": 40.0}


def test_an_offer_without_the_right_entry_is_not_self_served_nor_a_wrong_answer() -> None:
    cases = [Case("bin day?", "bins", "faq")]
    scores = [{**_score("parking", 0.6), "ranking": [("parking", 0.6), ("permits", 0.58), ("bins", 0.3)]}]
    counts = simulate(cases, scores, ASKING)
    assert (counts["asked"], counts["picked_right"], counts["wrong_answers"]) == (1, 0, 0)


def test_replay_uses_the_thresholds_the_model_recorded(tmp_path, capsys) -> None:
    in_force = {"kb_threshold": {"value": 0.7, "source": "calibrated"}, "kb_margin": {"value": 0.0, "source": "calibrated"},
                "ask_threshold": {"value": 0.45, "source": "calibrated"}, "ask_window": {"value": 0.1, "source": "default"}}
    recorded_scores = [{**s, "thresholds": in_force} for s in SCORES]
    assert recorded_thresholds(recorded_scores).kb_threshold == 0.7
    assert recorded_thresholds(recorded_scores).ask_threshold == 0.45
    recorded = tmp_path / "scores.json"
    recorded.write_text(json.dumps([{"case": vars(c), **s} for c, s in zip(CASES, recorded_scores)]))
    assert replay_main([recorded], {}) == 0
    assert "first_turn_right 33.3%, self_served 66.7%" in capsys.readouterr().out
    assert replay_main([recorded], {"ask_threshold": 1.01}) == 0
    assert "self_served 33.3%" in capsys.readouterr().out


def test_tuned_values_are_written_next_to_calibrate_when_config_leaves_them_out(tmp_path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n  - name: bot.nlu.kb_matcher.KnowledgeBaseMatcher\n    calibrate: true\n"
        "    meta_threshold: 0.99\n    kb_override: 1.01\n    knn_veto_margin: 0.1\n    unknown_word_penalty: 0.0\n"
    )
    write_thresholds(config, Thresholds(kb_threshold=0.55, kb_margin=0.02, meta_threshold=0.9))
    text = config.read_text()
    assert "    kb_threshold: 0.55\n" in text and "    kb_margin: 0.02\n" in text
    assert "    meta_threshold: 0.9\n" in text and text.count("kb_threshold") == 1
