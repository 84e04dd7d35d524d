"""tune-language's replay (tools/evaluation/languages.py) agrees with the real rule and the English figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.kb.languages import load_language
from bot.kb.loader import load_kb
from bot.nlu.lexical import LexicalDecision, LexicalThresholds, LexicalUnderstanding
from tools.evaluation import languages
from tools.evaluation.understanding import ESCALATE, Case, figures

KB = Path(__file__).parent / "fixtures" / "lexical_kb"
DEV = [
    Case("¿cuándo recogen la basura?", "waste-collection-days", "faq"),
    Case("¿que dia pasa el camion de la basura?", "waste-collection-days", "faq"),
    Case("cuando pasa la basura", "waste-collection-days", "faq"),
    Case("tengo un sofá viejo", "waste-bulky-items", "faq"),
    Case("muebles viejos", "waste-bulky-items", "faq"),
    Case("copia del certificado de nacimiento", "registry-birth-certificate", "faq"),
    Case("partida de nacimiento", "registry-birth-certificate", "faq"),
    Case("matrimonio civil", "registry-marriage", "faq"),
    Case("quiero poner una queja, me trataron fatal", ESCALATE, "complaint"),
    Case("hay un bache en mi calle", ESCALATE, "report_problem"),
    Case("quiero hablar con una persona", ESCALATE, "request_human"),
    Case("¿dónde aparco el coche?", ESCALATE, "kb_gap"),
    Case("¿cuándo abre la piscina?", ESCALATE, "kb_gap"),
]


@pytest.fixture(scope="module")
def spanish() -> LexicalUnderstanding:
    kb, _ = load_kb(KB)
    return LexicalUnderstanding.build(kb, "es", load_language(KB, "es"), LexicalThresholds())


def test_outcomes_map_to_the_english_evaluation():
    case = Case("x", "a", "faq")
    asked = languages.outcome_of(case, LexicalDecision("ask", None, ("b", "a"), "faq", 0.4, {"b": 0.4, "a": 0.39}))
    assert asked.asked and asked.self_served and not asked.first_turn_right and not asked.wrong_answer
    refused = languages.outcome_of(Case("x", ESCALATE, "kb_gap"), LexicalDecision("ask", None, ("b",), "faq", 0.4, {}))
    assert refused.ticket and refused.correct and not refused.wrong_answer
    small = languages.outcome_of(Case("x", ESCALATE, "complaint"), LexicalDecision("small_talk", None, (), "greet", 1, {}))
    assert not small.ticket
    wrong = languages.outcome_of(case, LexicalDecision("answer", "b", (), "faq", 0.9, {"b": 0.9}))
    assert wrong.wrong_answer


def test_the_replayed_grid_matches_the_real_rule(spanish, monkeypatch):
    monkeypatch.setattr(languages, "GRID", {"answer_threshold": [0.4, 0.6, 0.8], "answer_margin": [0.0, 0.1],
                                            "ask_threshold": [0.1, 0.3, 0.5], "ask_window": [0.05, 0.3],
                                            "intent_margin": [-0.1, 0.0, 0.2], "intent_floor": [0.25, 0.5]})
    scores = [spanish.score(c.text) for c in DEV]
    graded = languages.grade(DEV, scores)
    assert graded and all(t.ask_threshold <= t.answer_threshold for t, _ in graded)
    for thresholds, replayed in graded:
        measured = figures(languages.evaluate(spanish, DEV, thresholds))
        for name in ("first_turn_right", "self_served", "wrong_answer_rate", "escalation_recall", "asked_share"):
            assert replayed[name] == pytest.approx(getattr(measured, name)), (thresholds, name)
    chosen, figures_, met = languages.choose(graded)
    if met:
        assert figures_["wrong_answer_rate"] <= 0.02 and figures_["escalation_recall"] >= 0.95
        assert figures_["self_served"] == max(f["self_served"] for _, f in graded
                                              if f["wrong_answer_rate"] <= 0.02 and f["escalation_recall"] >= 0.95)


def test_tune_language_writes_the_calibration_file_and_refuses_the_heldout_set(tmp_path, monkeypatch):
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    for path in KB.rglob("*.yml"):
        target = kb_dir / path.relative_to(KB)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    dev = tmp_path / "dev_es.tsv"
    dev.write_text("text\texpected\tcategory\n" + "".join(f"{c.text}\t{c.expected}\t{c.category}\n" for c in DEV),
                   encoding="utf-8")
    monkeypatch.setattr(languages, "GRID", {**languages.GRID, "answer_threshold": [0.4, 0.6],
                                            "ask_threshold": [0.2, 0.3], "intent_margin": [0.0]})
    assert languages.tune_main("es", dev, write=True, kb_dir=kb_dir) == 0
    written = json.loads((kb_dir / "languages" / "es.calibration.json").read_text(encoding="utf-8"))
    assert written["language"] == "es" and set(written["thresholds"]) >= {"answer_threshold", "ask_threshold"}
    assert languages.build("es", kb_dir).thresholds == LexicalThresholds(**written["thresholds"])
    heldout = tmp_path / "heldout_es.tsv"
    heldout.write_bytes(dev.read_bytes())
    assert languages.tune_main("es", heldout, write=True, kb_dir=kb_dir) == 1


def test_german_queries_keep_only_similar_pairs_in_the_kb(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    items = [{"faq_id": "d1", "question": "Wie lange dauert die Inkubationszeit?", "answer": "Bis zu 14 Tage.",
              "category": "Allgemein", "language": "de"},
             {"faq_id": "d2", "question": "Wie schütze ich mich?", "answer": "Hände waschen.", "language": "de"},
             {"faq_id": "e1", "question": "What is it?", "answer": "A virus.", "language": "en"}]
    (bench / "faq_items.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    (bench / "query_faq_pairs.tsv").write_text(
        "query\tfaq_question\tfaq_id\tsimilar\tlanguage\n"
        "Wie lange ist die Inkubationszeit?\tx\td1\t1\tde\n"
        "Wie schuetze ich mich?\tx\td2\t0\tde\n"
        "Was ist das?\tx\t\t1\tde\n"
        "What?\tx\te1\t1\ten\n", encoding="utf-8")
    result = languages.german_benchmark(bench)
    assert (result["entries"], result["queries"]) == (2, 1)
    assert result["top1"] == 1.0
    assert languages.german_benchmark(tmp_path / "absent") == {"skipped": f"{tmp_path / 'absent'} not found"}


def test_choose_keeps_the_constraints_and_slack_buys_first_turn_answers():
    def row(served, first, wrong=0.0, recall=1.0, asked=0.5, answer=0.5):
        return (LexicalThresholds(answer_threshold=answer), {"self_served": served, "first_turn_right": first,
                "wrong_answer_rate": wrong, "escalation_recall": recall, "asked_share": asked})
    graded = [row(0.95, 0.1, wrong=0.05), row(0.90, 0.2), row(0.89, 0.6, answer=0.6), row(0.99, 0.9, recall=0.5)]
    assert languages.choose(graded)[1]["self_served"] == 0.90
    assert languages.choose(graded, slack=0.02)[1]["first_turn_right"] == 0.6
    impossible = [row(0.9, 0.5, wrong=0.1), row(0.8, 0.5, wrong=0.05)]
    chosen, _, met = languages.choose(impossible)
    assert not met and chosen == impossible[1][0]


def test_a_set_without_must_escalate_messages_does_not_fail_the_recall_constraint(spanish, monkeypatch):
    monkeypatch.setattr(languages, "GRID", {**languages.GRID, "intent_margin": [0.0], "intent_floor": [0.25]})
    in_kb = [c for c in DEV if c.expected != ESCALATE]
    graded = languages.grade(in_kb, [spanish.score(c.text) for c in in_kb])
    assert all(f["escalation_recall"] == 1.0 for _, f in graded)
    assert languages.choose(graded)[2]
