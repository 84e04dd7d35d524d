"""Thresholds chosen from the KB's own leave-out probes (bot.nlu.calibration), on plain lists."""

from __future__ import annotations

import pytest

from bot.nlu.calibration import (
    ANSWER_ONLY,
    ENTRY_OUT,
    INTENT,
    PHRASING,
    Calibration,
    Probe,
    Settings,
    calibrate,
    calibrated_config,
)
from bot.nlu.decision import ASK_INTENT, FAQ_INTENT, Thresholds, decide


def _positive(entry: str, score: float, runner_up: float = 0.2, kind: str = PHRASING) -> Probe:
    return Probe(kind, ((entry, score), ("other", runner_up)), entry)


def _negative(score: float, kind: str = ENTRY_OUT) -> Probe:
    return Probe(kind, (("near", score), ("far", 0.1)))


# Ten positives 0.50-0.95 and ten on-topic negatives 0.30-0.66: an even mix in which answering
# anything at or above 0.55 answers one negative (0.66) of twenty probes, 5%.
POSITIVES = [_positive("bins", 0.50 + 0.05 * i) for i in range(10)]
NEGATIVES = [_negative(0.30 + 0.04 * i) for i in range(10)]


def test_threshold_is_the_lowest_the_wrong_answer_budget_allows() -> None:
    strict = calibrate(POSITIVES + NEGATIVES, Settings(wrong_budget=0.0))
    # No negative may be answered: above the best negative (0.66), seven positives right.
    assert 0.66 < strict.kb_threshold <= 0.70
    assert strict.estimates["right_first_turn"] == pytest.approx(0.6)
    loose = calibrate(POSITIVES + NEGATIVES, Settings(wrong_budget=0.05))
    # One negative in twenty probes fits 5%: the threshold drops below it, to the next positive.
    assert 0.62 < loose.kb_threshold <= 0.65
    assert loose.estimates["estimated_wrong_rate"] == pytest.approx(0.05)


def test_a_wrong_first_entry_counts_against_the_budget() -> None:
    confused = [Probe(PHRASING, (("parking", 0.9), ("bins", 0.85)), "bins")] * 3
    chosen = calibrate(POSITIVES + confused + NEGATIVES, Settings(wrong_budget=0.0))
    # 0.9 over 0.85 would be answered with the wrong entry unless the margin exceeds 0.05.
    answered_wrong = chosen.kb_threshold <= 0.9 and chosen.kb_margin <= 0.05
    assert not answered_wrong


def test_intent_examples_get_their_own_budget_not_a_looser_mix() -> None:
    easy = [_negative(0.05, INTENT)] * 200
    with_easy = calibrate(POSITIVES + NEGATIVES + easy, Settings(wrong_budget=0.0))
    assert with_easy.kb_threshold == calibrate(POSITIVES + NEGATIVES, Settings(wrong_budget=0.0)).kb_threshold
    # Intent examples scoring high raise the threshold above them.
    hard = [_negative(0.80, INTENT)]
    assert calibrate(POSITIVES + NEGATIVES + hard, Settings(wrong_budget=0.0)).kb_threshold > 0.80


def test_the_ask_band_offers_most_unanswered_positives_their_entry() -> None:
    chosen = calibrate(POSITIVES + NEGATIVES, Settings(wrong_budget=0.0, offer_coverage=0.9))
    assert chosen.ask_threshold <= 0.55 < chosen.kb_threshold
    thresholds = Thresholds(kb_threshold=chosen.kb_threshold, kb_margin=chosen.kb_margin,
                            ask_threshold=chosen.ask_threshold, ask_window=chosen.ask_window)
    outcomes = [decide(FAQ_INTENT, 0.99, list(p.ranking), thresholds) for p in POSITIVES]
    asked = [d for d in outcomes if d.intent == ASK_INTENT]
    # The three unanswered positives (0.50, 0.55, 0.60): at least 90% of them... all but the lowest here.
    assert sum("bins" in d.offer for d in asked) >= 2
    assert all(d.intent in (FAQ_INTENT, ASK_INTENT) or p.ranking[0][1] < 0.55 for d, p in zip(outcomes, POSITIVES))
    assert chosen.estimates["self_served"] >= chosen.estimates["right_first_turn"]


def test_the_ask_window_covers_a_right_entry_ranked_second() -> None:
    close_calls = [Probe(PHRASING, (("parking", 0.60), ("bins", 0.55)), "bins") for _ in range(10)]
    chosen = calibrate(close_calls + NEGATIVES, Settings(wrong_budget=0.0))
    assert chosen.ask_window == pytest.approx(0.05)
    assert chosen.ask_threshold <= 0.55


def test_a_kb_with_answer_only_positives_still_calibrates() -> None:
    only = [_positive("bins", 0.4 + 0.02 * i, kind=ANSWER_ONLY) for i in range(10)]
    chosen = calibrate(only + [_negative(0.35)])
    assert isinstance(chosen, Calibration) and chosen.kb_threshold > 0.35
    with pytest.raises(ValueError):
        calibrate(NEGATIVES)


def test_nothing_within_budget_answers_nothing_outright() -> None:
    overlapping = [_positive("bins", 0.6)] + [_negative(0.9)] * 3
    chosen = calibrate(overlapping, Settings(wrong_budget=0.0))
    assert chosen.kb_threshold > 1.0


CONFIG = """pipeline:
  - name: WhitespaceTokenizer
  - name: bot.nlu.kb_matcher.KnowledgeBaseMatcher
    calibrate: false
    model_dir: var/encoders/x
    meta_threshold: 0.99
    kb_threshold: 0.5
    kb_margin: 0.01
    ask_threshold: 0.4
    knn_veto_margin: 0.1

policies:
  - name: RulePolicy
    kb_threshold: 0.3
"""


def test_calibrated_config_drops_only_the_matchers_kb_thresholds() -> None:
    text = calibrated_config(CONFIG)
    block = text.split("policies:")[0]
    assert "calibrate: true" in block and "calibrate: false" not in block
    for name in ("kb_threshold", "kb_margin", "ask_threshold"):
        assert f"{name}:" not in block
    assert "meta_threshold: 0.99" in block and "knn_veto_margin: 0.1" in block
    # Outside the matcher's block nothing changes.
    assert text.split("policies:")[1] == CONFIG.split("policies:")[1]
    with pytest.raises(ValueError):
        calibrated_config("pipeline:\n  - name: WhitespaceTokenizer\n")
