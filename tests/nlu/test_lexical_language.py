"""The per-language lexical understanding (bot/nlu/lexical.py) on a tiny Spanish KB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.kb.languages import load_language
from bot.kb.loader import load_kb
from bot.nlu.lexical import (
    LexicalScores,
    LexicalThresholds,
    LexicalUnderstanding,
    calibration_path,
    decide,
    fold,
    from_kb_dir,
    load_thresholds,
    write_calibration,
)

KB = Path(__file__).parent / "fixtures" / "lexical_kb"


@pytest.fixture(scope="module")
def spanish() -> LexicalUnderstanding:
    kb, problems = load_kb(KB)
    assert problems == []
    return LexicalUnderstanding.build(kb, "es", load_language(KB, "es"))


def test_fold_drops_case_accents_punctuation_and_emoji():
    assert fold("¡Hola! ¿CUÁNDO recogen la BASURA? 😀") == "hola cuando recogen la basura"
    assert fold("Ñandú, pingüino") == "nandu pinguino"


def test_only_entries_with_questions_in_the_language_are_candidates(spanish):
    assert "waste-recycling-centre" not in spanish.entry_ids  # English only
    assert set(spanish.entry_ids) == {"waste-collection-days", "waste-bulky-items",
                                      "registry-birth-certificate", "registry-marriage"}


@pytest.mark.parametrize("text", ["hola, ¿cuándo recogen la basura?", "cuando recogen la basura",
                                  "CUÁNDO RECOGEN LA BASURA", "¿que dia pasa el camion de la basura?"])
def test_a_kb_question_is_answered_whatever_the_accents_and_case(spanish, text):
    decision = spanish.understand(text)
    assert (decision.outcome, decision.entry_id, decision.intent) == ("answer", "waste-collection-days", "faq")
    assert decision.confidence == decision.scores["waste-collection-days"]


def test_a_typo_still_ranks_the_right_entry_first(spanish):
    decision = spanish.understand("¿cuándo recojen la basra?")
    assert next(iter(decision.scores)) == "waste-collection-days"
    assert decision.outcome in ("answer", "ask")
    if decision.outcome == "ask":
        assert decision.offered_entry_ids[0] == "waste-collection-days"


@pytest.mark.parametrize(("text", "outcome", "intent"), [
    ("quiero poner una queja", "hand_over", "complaint"),
    ("hay una farola rota en la calle mayor", "hand_over", "report_problem"),
    ("quiero hablar con una persona", "hand_over", "request_human"),
    ("hola", "small_talk", "greet"),
    ("¡muchas gracias!", "small_talk", "thanks"),
    ("¿cómo va mi incidencia?", "ticket_status", "ticket_status"),
])
def test_intents_that_beat_the_kb(spanish, text, outcome, intent):
    decision = spanish.understand(text)
    assert (decision.outcome, decision.intent, decision.entry_id) == (outcome, intent, None)


def test_a_partial_match_is_asked_about_and_nothing_plausible_is_handed_over(spanish):
    asked = spanish.understand("muebles")
    assert asked.outcome == "ask" and asked.offered_entry_ids == ("waste-bulky-items",)
    assert asked.entry_id is None
    nothing = spanish.understand("¿dónde puedo aparcar mi coche?")
    assert (nothing.outcome, nothing.intent, nothing.reason) == ("hand_over", None, "not_in_kb")


@pytest.mark.parametrize("text", ["", "   ", "😀😀🙏", "?!¿¡...", "x" * 200_000,
                                  "basura " * 50_000, "\x00\u200b"])
def test_empty_huge_or_emoji_only_input_never_crashes(spanish, text):
    decision = spanish.understand(text)
    assert decision.outcome in ("hand_over", "answer", "ask")
    if not fold(text):
        assert decision.outcome == "hand_over" and decision.confidence == 0.0


def test_decide_rules_on_plain_scores():
    t = LexicalThresholds(answer_threshold=0.6, answer_margin=0.05, ask_threshold=0.3, ask_window=0.1,
                          intent_margin=0.0, intent_floor=0.25)
    ranking = (("a", 0.7), ("b", 0.4), ("c", 0.1))
    assert decide(LexicalScores(ranking), t).outcome == "answer"
    close = (("a", 0.7), ("b", 0.68), ("c", 0.65), ("d", 0.64))
    asked = decide(LexicalScores(close), t)
    assert asked.outcome == "ask" and asked.offered_entry_ids == ("a", "b", "c")  # at most three
    assert decide(LexicalScores((("a", 0.35), ("b", 0.2))), t).offered_entry_ids == ("a",)
    assert decide(LexicalScores((("a", 0.2),)), t).outcome == "hand_over"
    assert decide(LexicalScores(ranking, {"complaint": 0.71}), t).outcome == "hand_over"
    assert decide(LexicalScores(ranking, {"complaint": 0.69}), t).outcome == "answer"
    assert decide(LexicalScores((("a", 0.1),), {"greet": 0.2}), t).outcome == "hand_over"  # below the floor
    assert decide(LexicalScores(()), t).outcome == "hand_over"


def test_thresholds_come_from_the_calibration_file(tmp_path):
    assert load_thresholds(tmp_path / "absent.json") == LexicalThresholds()
    path = calibration_path(tmp_path, "es")
    strict = LexicalThresholds(answer_threshold=0.99, ask_threshold=0.98)
    write_calibration(path, strict, {"language": "es"})
    assert path == tmp_path / "languages" / "es.calibration.json"
    assert load_thresholds(path) == strict
    kb, _ = load_kb(KB)
    understanding = from_kb_dir(kb, tmp_path, "es", load_language(KB, "es"))
    assert understanding.thresholds == strict
    # Answered with the defaults (0.69), handed over with these thresholds.
    assert understanding.understand("certificado de nacimiento").outcome == "hand_over"


@pytest.mark.parametrize("content", ["not json", json.dumps({"thresholds": {"answer_treshold": 0.5}}),
                                     json.dumps({"nothing": 1}), json.dumps({"thresholds": {"ask_window": "x"}})])
def test_a_broken_calibration_file_is_an_error_that_names_it(tmp_path, content):
    path = tmp_path / "es.calibration.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="es.calibration.json"):
        load_thresholds(path)


@pytest.mark.parametrize("scoring", ["best", "centroid", "mean"])
def test_every_scoring_ranks_an_exact_phrasing_first(scoring):
    kb, _ = load_kb(KB)
    understanding = LexicalUnderstanding.build(kb, "es", load_language(KB, "es"), scoring=scoring)
    ranking = understanding.score("trámites para el matrimonio civil").ranking
    assert ranking[0][0] == "registry-marriage"


def test_build_and_per_message_time_are_reported_not_asserted(capsys):
    kb, _ = load_kb(Path(__file__).resolve().parents[2] / "knowledge_base")
    started = time.perf_counter()
    understanding = LexicalUnderstanding.build(kb, "en")
    built = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(100):
        understanding.understand("when is my bin collected?")
    per_message = (time.perf_counter() - started) / 100
    print(f"lexical build {built * 1000:.0f} ms for {len(understanding.entry_ids)} entries, "
          f"{per_message * 1000:.2f} ms per message")
    assert understanding.understand("when is my bin collected?").entry_id == "waste-collection-days"


def test_a_language_without_questions_or_intents_hands_everything_over():
    kb, _ = load_kb(KB)
    nothing = LexicalUnderstanding.build(kb, "fr")
    assert nothing.entry_ids == [] and nothing.understand("bonjour").outcome == "hand_over"
