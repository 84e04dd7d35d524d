"""The tuner's replay: threshold search and the wrong-answer trade-off curve, on recorded scores."""

from __future__ import annotations

import json

from bot.evaluation import ESCALATE, Case
from bot.tuning import frontier, grade, main, outcomes, search
from bot.nlu.decision import Thresholds


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
