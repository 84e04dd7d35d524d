"""CLINC150's conversion to Rasa data and its figures' arithmetic (tools/evaluation/clinc150.py); no training."""

from __future__ import annotations

import json

import pytest

from tools.evaluation.clinc150 import (
    OUT_OF_SCOPE,
    Prediction,
    choose_threshold,
    figures,
    load_clinc,
    nlu_config,
    split_examples,
    training_data,
    write_results,
)

FAKE = {
    "train": [["book a table [for two] (tonight)", "restaurant_reservation"], ["what's my balance", "balance"]],
    "oos_train": [["how tall is everest", "oos"]],
    "val": [["reserve a table", "restaurant_reservation"]],
    "oos_val": [["who won the cup", "oos"]],
    "test": [["how much money do i have", "balance"]],
    "oos_test": [["sing me a song", "oos"]],
}


def test_conversion_keeps_brackets_as_text_and_labels_clinc_oos_as_the_projects_out_of_scope(tmp_path):
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(FAKE))
    data = load_clinc(path)
    train = split_examples(data, "train")
    assert train[-1] == ("how tall is everest", OUT_OF_SCOPE)
    assert split_examples(data, "train", with_oos=False) == [
        ("book a table [for two] (tonight)", "restaurant_reservation"), ("what's my balance", "balance")]
    examples = training_data(train)["rasa_nlu_data"]["common_examples"]
    assert examples[0] == {"text": "book a table [for two] (tonight)", "intent": "restaurant_reservation", "entities": []}
    assert [e["intent"] for e in examples] == ["restaurant_reservation", "balance", OUT_OF_SCOPE]


def test_nlu_config_drops_the_kb_matcher_and_keeps_diet_settings_except_epochs_when_asked():
    names = [c["name"] for c in nlu_config()["pipeline"]]
    assert "bot.nlu.kb_matcher.KnowledgeBaseMatcher" not in names
    assert "bot.nlu.featurizer.MiniLMFeaturizer" in names and "DIETClassifier" in names
    diet = next(c for c in nlu_config(epochs=7)["pipeline"] if c["name"] == "DIETClassifier")
    original = next(c for c in nlu_config()["pipeline"] if c["name"] == "DIETClassifier")
    assert diet["epochs"] == 7 and original["epochs"] != 7
    assert {k: v for k, v in diet.items() if k != "epochs"} == {k: v for k, v in original.items() if k != "epochs"}


PREDICTIONS = [
    Prediction("a", "a", 0.9),  # right at any threshold up to 0.9
    Prediction("a", "b", 0.95),  # wrong intent: never right, even when rejected
    Prediction("b", "b", 0.5),  # right only below 0.5
    Prediction("b", OUT_OF_SCOPE, 0.99),  # rejected by its intent: wrong for an in-scope query
    Prediction("c", "c", 0.98),  # right up to 0.98
    Prediction(OUT_OF_SCOPE, OUT_OF_SCOPE, 0.8),  # caught at any threshold
    Prediction(OUT_OF_SCOPE, "a", 0.6),  # caught above 0.6
    Prediction(OUT_OF_SCOPE, "b", 0.99),  # caught only above 0.99
]


def test_figures_count_rejections_as_wrong_for_in_scope_and_as_caught_for_oos():
    no_threshold = figures(PREDICTIONS, 0.0)
    assert (no_threshold.in_scope, no_threshold.out_of_scope) == (5, 3)
    assert no_threshold.in_scope_accuracy == pytest.approx(3 / 5)
    assert no_threshold.oos_recall == pytest.approx(1 / 3)
    at_07 = figures(PREDICTIONS, 0.7)  # rejects b@0.5 and the OOS query at 0.6
    assert at_07.in_scope_accuracy == pytest.approx(2 / 5)
    assert at_07.oos_recall == pytest.approx(2 / 3)
    # The threshold is a strict lower bound: a confidence equal to it is accepted.
    assert figures(PREDICTIONS, 0.9).in_scope_accuracy == pytest.approx(2 / 5)
    assert figures(PREDICTIONS, 0.91).in_scope_accuracy == pytest.approx(1 / 5)


def test_choose_threshold_maximises_the_balanced_score_and_takes_the_lowest_on_a_tie():
    # Balanced score at the candidates: 0 and 0.5: (3/5 + 1/3) / 2; 0.6: (2/5 + 1/3) / 2;
    # 0.8 and 0.9: (2/5 + 2/3) / 2, the best; 0.95: (1/5 + 2/3) / 2; 0.98: (1/5 + 2/3) / 2; 0.99: (0 + 2/3) / 2.
    threshold = choose_threshold(PREDICTIONS)
    assert threshold == pytest.approx(0.8)
    best = figures(PREDICTIONS, threshold).balanced
    for t in [0.0, 0.5, 0.6, 0.7, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0]:
        assert figures(PREDICTIONS, t).balanced <= best + 1e-12


def test_write_results_says_when_epochs_differ_from_config(tmp_path):
    variant = {
        "variant": "oos_intent", "oos_train_as_intent": True, "training_examples": 3, "threshold": 0.8,
        "test": figures(PREDICTIONS, 0.8).as_dict(), "test_without_threshold": figures(PREDICTIONS, 0.0).as_dict(),
        "training_seconds": 1.0, "parse_seconds": 2.0, "parsed_messages": 7,
    }
    results = {"measured_at": "now", "machine": "m", "command": "python -m tools eval-clinc --epochs 20",
               "epochs": 20, "config_epochs": 80, "pipeline": ["WhitespaceTokenizer", "DIETClassifier"], "variants": [variant], "wall_seconds": 3.0}
    write_results(results, tmp_path)
    text = (tmp_path / "clinc150.md").read_text()
    assert "DIET trained for 20 epochs, not config.yml's 80" in text
    assert "| this project, OOS as intent | 60.0% | 33.3% | none |" in text
    assert "| this project, OOS as intent + threshold | 40.0% | 66.7% | 0.8000 |" in text
    assert json.loads((tmp_path / "clinc150.json").read_text())["epochs"] == 20
