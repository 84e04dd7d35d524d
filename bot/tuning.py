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
import uuid
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


def cost(cases: list[Case], scores: list[dict], thresholds: Thresholds) -> tuple[float, dict]:
    wrong = missed_escalation = unanswered = 0
    for case, score in zip(cases, scores):
        d = decide(
            score["diet_intent"], score["diet_confidence"], score["ranking"], thresholds,
            score["faq_similarity"], score["intent_similarity"], score["unknown_words"],
        )
        answered = d.intent == FAQ_INTENT and d.kb_entry is not None
        if case.expected == ESCALATE:
            if answered:
                wrong += 1
            elif d.intent not in ESCALATING_INTENTS:
                missed_escalation += 1
        elif not answered:
            unanswered += 1
        elif d.kb_entry != case.expected:
            wrong += 1
    total = WRONG_ANSWER_COST * wrong + missed_escalation + unanswered
    return total, {"wrong_answers": wrong, "missed_escalations": missed_escalation, "unanswered_faq": unanswered}


def search(cases: list[Case], scores: list[dict]) -> tuple[Thresholds, dict]:
    best: tuple[float, Thresholds, dict] | None = None
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        thresholds = Thresholds(**dict(zip(names, values)))
        total, detail = cost(cases, scores, thresholds)
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


def main(*, dev_set: Path, write: bool, scores_out: Path | None = None) -> int:
    from bot.stack import Stack, StackConfig, free_port
    from bot.store.db import upgrade_database
    from bot.training import train

    cases = load_cases(dev_set)
    model = train()
    with tempfile.TemporaryDirectory(prefix="crm-tune-") as tmp:
        work = Path(tmp)
        database_url = f"sqlite:///{work / 'tune.db'}"
        upgrade_database(database_url)
        config = StackConfig(
            model=model, database_url=database_url, api_key=uuid.uuid4().hex * 2,
            tracker_db=work / "tracker.db", api_port=free_port(), rasa_port=free_port(),
            action_port=free_port(), rasa_http_api=True, log_dir=work / "log",
        )
        with Stack(config):
            scores = record_scores(config.rasa_url, cases)
    if scores_out is not None:
        scores_out.parent.mkdir(parents=True, exist_ok=True)
        scores_out.write_text(json.dumps([{"case": vars(c), **s} for c, s in zip(cases, scores)], indent=1))
    thresholds, detail = search(cases, scores)
    print(f"dev set {dev_set} ({len(cases)} messages): best thresholds {thresholds}")
    print(f"  on the dev set: {detail}")
    if write:
        write_thresholds(PROJECT_ROOT / "config.yml", thresholds)
        print("written to config.yml; run `python -m bot train` (or make run/test) to train with them")
    return 0
