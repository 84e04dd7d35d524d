"""Choose the answer-or-escalate thresholds on the development set.

The NLU scores of every dev message are recorded once through Rasa's
``/model/parse`` (no side effects, no tickets), then the decision rule of
``bot.nlu.decision`` is replayed for every threshold combination. The cost
weights a wrong answer three times a needless escalation: for a government,
telling a citizen something wrong is worse than making them wait for a person.
The chosen values are written into config.yml; the next training uses them.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path

import httpx
import numpy as np

from bot.evaluation import ESCALATE, Case, kb_match, load_cases
from bot.nlu.decision import FAQ_INTENT, Thresholds, decide
from bot.settings import PROJECT_ROOT

ESCALATING_INTENTS = {"complaint", "report_problem", "personal_case", "request_human", "out_of_scope", "nlu_fallback"}
WRONG_ANSWER_COST = 3.0

GRID = {
    "meta_threshold": [0.8, 0.9, 0.95, 0.99],
    "kb_threshold": [round(float(x), 2) for x in np.arange(0.30, 0.71, 0.01)],
    "kb_margin": [0.0, 0.01, 0.03, 0.05],
    "kb_override": [0.7, 0.8, 1.01],
    "knn_veto_margin": [0.0, 0.05, 0.1, 0.2, 1.0],
    "unknown_word_penalty": [0.0, 0.02, 0.04, 0.06, 0.1],
}


def record_scores(rasa_url: str, cases: list[Case]) -> list[dict]:
    scores = []
    with httpx.Client(timeout=60.0) as client:
        for case in cases:
            match = kb_match(client, rasa_url, case.text)
            scores.append(
                {
                    "diet_intent": match.get("diet_intent"),
                    "diet_confidence": float(match.get("diet_confidence") or 0.0),
                    "ranking": [(r["entry"], float(r["similarity"])) for r in match.get("ranking") or []],
                    "faq_similarity": float(match.get("faq_similarity") or 0.0),
                    "intent_similarity": match.get("intent_similarity") or {},
                    "unknown_words": int(match.get("unknown_words") or 0),
                }
            )
    return scores


def outcomes(cases: list[Case], scores: list[dict], thresholds: Thresholds) -> dict[str, int]:
    """How the rule with these thresholds handles each recorded message, counted by kind."""
    counts = {"right": 0, "wrong_entry": 0, "unanswered_faq": 0, "answered_must_escalate": 0,
              "escalated": 0, "missed_escalations": 0}
    for case, score in zip(cases, scores):
        d = decide(
            score["diet_intent"], score["diet_confidence"], score["ranking"], thresholds,
            score["faq_similarity"], score["intent_similarity"], score["unknown_words"],
        )
        answered = d.intent == FAQ_INTENT and d.kb_entry is not None
        if case.expected == ESCALATE:
            if answered:
                counts["answered_must_escalate"] += 1
            elif d.intent in ESCALATING_INTENTS:
                counts["escalated"] += 1
            else:
                counts["missed_escalations"] += 1
        elif not answered:
            counts["unanswered_faq"] += 1
        elif d.kb_entry != case.expected:
            counts["wrong_entry"] += 1
        else:
            counts["right"] += 1
    return counts


def _cost(counts: dict[str, int]) -> tuple[float, dict]:
    wrong = counts["wrong_entry"] + counts["answered_must_escalate"]
    total = WRONG_ANSWER_COST * wrong + counts["missed_escalations"] + counts["unanswered_faq"]
    return total, {"wrong_answers": wrong, "missed_escalations": counts["missed_escalations"],
                   "unanswered_faq": counts["unanswered_faq"]}


def grade(cases: list[Case], scores: list[dict]) -> list[tuple[Thresholds, dict[str, int]]]:
    """Replay the rule once for every threshold combination of the grid; the search and the
    trade-off curve both read these counts."""
    names = list(GRID)
    graded = []
    for values in itertools.product(*(GRID[n] for n in names)):
        thresholds = Thresholds(**dict(zip(names, values)))
        graded.append((thresholds, outcomes(cases, scores, thresholds)))
    return graded


def frontier(
    graded: list[tuple[Thresholds, dict[str, int]]], min_recall: float = 0.95
) -> list[tuple[int, int, Thresholds]]:
    """The best the decision rule can do at each wrong-answer budget on these scores.

    For every number of wrong answers k: the most in-KB messages answered right by any
    threshold combination of the grid with at most k wrong answers and an escalation
    recall of at least ``min_recall``. Run on the held-out set it is a ceiling, not a
    choice: thresholds picked on the test set itself. It tells whether a target can be
    met by tuning at all, or needs better scores.
    """
    best: dict[int, tuple[int, Thresholds]] = {}
    for thresholds, c in graded:
        must_escalate = c["escalated"] + c["answered_must_escalate"] + c["missed_escalations"]
        if must_escalate and c["escalated"] / must_escalate < min_recall:
            continue
        wrong = c["wrong_entry"] + c["answered_must_escalate"]
        if wrong not in best or c["right"] > best[wrong][0]:
            best[wrong] = (c["right"], thresholds)
    curve, leader = [], None
    for wrong in sorted(best):
        if leader is None or best[wrong][0] > leader[0]:
            leader = best[wrong]
        curve.append((wrong, *leader))
    return curve


def search(graded: list[tuple[Thresholds, dict[str, int]]]) -> tuple[Thresholds, dict]:
    best: tuple[tuple, Thresholds, dict] | None = None
    for thresholds, counts in graded:
        total, detail = _cost(counts)
        # Ties go to the stricter setting (higher thresholds): fewer answers, fewer wrong ones on new data.
        key = (total, -thresholds.kb_threshold, -thresholds.meta_threshold, -thresholds.kb_override,
               -thresholds.knn_veto_margin)
        if best is None or key < best[0]:
            best = (key, thresholds, detail)
    assert best is not None
    return best[1], {"cost": best[0][0], **best[2]}


def write_thresholds(config_path: Path, thresholds: Thresholds) -> None:
    text = config_path.read_text(encoding="utf-8")
    for name in ("meta_threshold", "kb_threshold", "kb_margin", "kb_override", "knn_veto_margin", "unknown_word_penalty"):
        text, count = re.subn(rf"(\n\s+{name}: )[0-9.]+", rf"\g<1>{getattr(thresholds, name)}", text)
        if count != 1:
            raise RuntimeError(f"could not find exactly one `{name}:` in {config_path}")
    config_path.write_text(text, encoding="utf-8")


def main(*, dev_set: Path, write: bool, scores_out: Path | None = None, scores_in: Path | None = None) -> int:
    if scores_in is not None:
        recorded = json.loads(scores_in.read_text(encoding="utf-8"))
        cases = [Case(**row.pop("case")) for row in recorded]
        scores = recorded
    else:
        cases = load_cases(dev_set)
        scores = _record(cases)
    if scores_out is not None:
        scores_out.parent.mkdir(parents=True, exist_ok=True)
        scores_out.write_text(json.dumps([{"case": vars(c), **s} for c, s in zip(cases, scores)], indent=1))
    graded = grade(cases, scores)
    thresholds, detail = search(graded)
    source = scores_in or dev_set
    print(f"{source} ({len(cases)} messages): best thresholds {thresholds}")
    print(f"  on these messages: {detail}")
    in_kb = sum(case.expected != ESCALATE for case in cases)
    print("  the rule's best at each wrong-answer budget, any thresholds of the grid, escalation recall >= 95%:")
    for wrong, right, _ in frontier(graded):
        if wrong > 0.05 * len(cases):
            break
        print(f"    <= {wrong} wrong answers ({wrong / len(cases):.1%}): "
              f"{right} of {in_kb} in-KB messages answered right ({right / max(in_kb, 1):.1%})")
    if write:
        write_thresholds(PROJECT_ROOT / "config.yml", thresholds)
        print("written to config.yml; run `python -m bot train` (or make run/test) to train with them")
    return 0


def _record(cases: list[Case]) -> list[dict]:
    from bot.stack import Stack, StackConfig
    from bot.training import train

    model = train()
    with tempfile.TemporaryDirectory(prefix="crm-tune-") as tmp:
        config = StackConfig.throwaway(model, Path(tmp), rasa_http_api=True)
        with Stack(config):
            return record_scores(config.rasa_url, cases)
