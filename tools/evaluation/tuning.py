"""Choose the answer-or-escalate thresholds on the development set.

The NLU scores of every dev message are recorded once through Rasa's
``/model/parse`` (no side effects, no tickets), then the decision rule of
``bot.nlu.decision`` is replayed for every threshold combination. The cost
weights a wrong answer three times a needless escalation: for a government,
telling a citizen something wrong is worse than making them wait for a person.
The chosen values are written into config.yml; the next training uses them.

``replay`` plays the three-outcome dialogue on recorded scores: answer, ask
"Do you mean ...?" (a simulated citizen picks the right entry when it is
offered, else says "none of these" and gets a ticket) or hand over. It reports
the figures of issue 18 for any thresholds, the ones the model was calibrated
with included, without a Rasa environment:

    python -m tools.evaluation.tuning record --sets dev,heldout     # var/scores/dev.json, heldout.json
    python -m tools.evaluation.tuning record --sets covid           # var/scores/covid.json
    python -m tools.evaluation.tuning replay var/scores/*.json
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np

from bot.nlu.decision import ASK_INTENT, FAQ_INTENT, Thresholds, decide
from bot.settings import PROJECT_ROOT
from tools.evaluation.understanding import BENCHMARKS_DIR, ESCALATE, Case, kb_match, load_cases, load_covid_cases

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
                    # The KB thresholds the model runs with ({name: {"value", "source"}}).
                    "thresholds": match.get("thresholds") or {},
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
            elif d.intent in ESCALATING_INTENTS or d.intent == ASK_INTENT:  # asked: "none of these", a ticket
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
    """Write the tuned values; a KB threshold left to calibration (no line) gets its line after
    ``calibrate:``, so the dev set refines the calibrated values by overriding them."""
    text = config_path.read_text(encoding="utf-8")
    for name in ("meta_threshold", "kb_threshold", "kb_margin", "kb_override", "knn_veto_margin", "unknown_word_penalty"):
        text, count = re.subn(rf"(\n\s+{name}: )[0-9.]+", rf"\g<1>{getattr(thresholds, name)}", text)
        if count == 0:
            text, count = re.subn(r"(\n(\s+)calibrate: \S+)", rf"\g<1>\n\g<2>{name}: {getattr(thresholds, name)}", text)
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


# -- the three-outcome replay ------------------------------------------------------

def simulate(cases: list[Case], scores: list[dict], thresholds: Thresholds) -> dict[str, int]:
    """Each message through answer / ask / hand-over, with a citizen who picks the right
    offered entry and says "none of these" (a ticket) otherwise."""
    counts = {"messages": len(cases), "in_kb": 0, "must_escalate": 0, "first_turn_right": 0, "picked_right": 0,
              "wrong_answers": 0, "escalated": 0, "asked": 0, "asked_in_kb": 0}
    for case, score in zip(cases, scores):
        d = decide(
            score["diet_intent"], score["diet_confidence"], score["ranking"], thresholds,
            score["faq_similarity"], score["intent_similarity"], score["unknown_words"],
        )
        answered = d.intent == FAQ_INTENT and d.kb_entry is not None
        asked = d.intent == ASK_INTENT
        counts["asked"] += asked
        if case.expected == ESCALATE:
            counts["must_escalate"] += 1
            counts["wrong_answers"] += answered
            counts["escalated"] += asked or (not answered and d.intent in ESCALATING_INTENTS)
            continue
        counts["in_kb"] += 1
        counts["asked_in_kb"] += asked
        if answered:
            counts["first_turn_right" if d.kb_entry == case.expected else "wrong_answers"] += 1
        elif asked and case.expected in d.offer:
            counts["picked_right"] += 1
    return counts


def rates(counts: dict[str, int]) -> dict[str, float]:
    """The figures of issue 18, in percent."""
    def pct(part: int, whole: int) -> float:
        return round(100.0 * part / whole, 1) if whole else 0.0

    return {
        "first_turn_right": pct(counts["first_turn_right"], counts["in_kb"]),
        "self_served": pct(counts["first_turn_right"] + counts["picked_right"], counts["in_kb"]),
        "wrong_answers": pct(counts["wrong_answers"], counts["messages"]),
        "escalation_recall": pct(counts["escalated"], counts["must_escalate"]),
        "asked": pct(counts["asked"], counts["messages"]),
    }


def recorded_thresholds(scores: list[dict], base: Thresholds | None = None) -> Thresholds:
    """The KB thresholds the recorded model ran with (calibrated or from config.yml), on top of
    ``base`` (config.yml's other thresholds)."""
    in_force = next((s["thresholds"] for s in scores if s.get("thresholds")), {})
    values = {name: float(entry["value"]) for name, entry in in_force.items()}
    return replace(base or Thresholds(), **values)


def load_recorded(path: Path) -> tuple[list[Case], list[dict]]:
    recorded = json.loads(path.read_text(encoding="utf-8"))
    return [Case(**row.pop("case")) for row in recorded], recorded


def config_thresholds(config_path: Path = PROJECT_ROOT / "config.yml") -> Thresholds:
    """The non-KB thresholds written in config.yml's KnowledgeBaseMatcher block."""
    text = config_path.read_text(encoding="utf-8")
    values = {}
    for name in ("meta_threshold", "kb_override", "knn_veto_margin", "unknown_word_penalty"):
        found = re.search(rf"\n\s+{name}: ([0-9.]+)", text)
        if found:
            values[name] = float(found.group(1))
    return Thresholds(**values)


def replay_main(paths: list[Path], overrides: dict[str, float]) -> int:
    for path in paths:
        cases, scores = load_recorded(path)
        thresholds = replace(recorded_thresholds(scores, config_thresholds()), **overrides)
        counts = simulate(cases, scores, thresholds)
        figures = rates(counts)
        print(f"{path} ({counts['messages']} messages: {counts['in_kb']} in KB, {counts['must_escalate']} must escalate)")
        print(f"  thresholds: kb_threshold={thresholds.kb_threshold} kb_margin={thresholds.kb_margin} "
              f"ask_threshold={thresholds.ask_threshold} ask_window={thresholds.ask_window}")
        print("  " + ", ".join(f"{name} {value}%" for name, value in figures.items()))
    return 0


_EXPORT_PROBES = r"""
import json, pickle, sys, tarfile
sys.path.insert(0, sys.argv[1])
with tarfile.open(sys.argv[2]) as archive:
    member = next(m for m in archive.getmembers() if m.name.endswith("index.pkl"))  # the matcher's only
    index = pickle.load(archive.extractfile(member))
probes = [{"kind": p.kind, "ranking": p.ranking, "expected": p.expected} for p in (index.probes or [])]
json.dump(probes, sys.stdout)
"""


def model_probes(model: Path):
    """The leave-out probes a calibrated model was trained with (read in the Rasa environment,
    which can unpickle the matcher's index)."""
    import subprocess

    from bot.nlu.calibration import Probe
    from bot.training import RASA_ENV

    out = subprocess.run([str(RASA_ENV / "bin" / "python"), "-c", _EXPORT_PROBES, str(PROJECT_ROOT), str(model)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    return [Probe(p["kind"], tuple((e, float(v)) for e, v in p["ranking"]), p["expected"]) for p in json.loads(out)]


SETS = {"dev": PROJECT_ROOT / "evaluation" / "dev.tsv", "heldout": PROJECT_ROOT / "evaluation" / "heldout.tsv"}


def record_main(set_names: list[str], out_dir: Path) -> int:
    """Train (if needed) the model the sets are measured with and record their scores,
    one file per set: the demo sets with the project's KB, covid with its own (calibrated only)."""
    if "covid" in set_names and len(set_names) > 1:
        raise ValueError("covid has its own KB and model: record it on its own")
    from bot.stack import Stack, StackConfig
    from bot.training import train

    with tempfile.TemporaryDirectory(prefix="crm-record-") as tmp:
        work = Path(tmp)
        if set_names == ["covid"]:
            from bot.kb.importer import import_rows, write_kb
            from tools.evaluation.understanding import covid_kb_rows

            bench_dir = BENCHMARKS_DIR / "covid_q_govfaq"
            kb_dir = work / "covid_kb"
            data, _ = import_rows(covid_kb_rows(bench_dir, work / "covid_faq.csv"))
            write_kb(data, kb_dir)
            model = train(kb_dir=kb_dir, calibrated_thresholds=True)
            sets = {"covid": load_covid_cases(bench_dir)}
        else:
            kb_dir = PROJECT_ROOT / "knowledge_base"
            model = train()
            sets = {name: load_cases(SETS[name]) for name in set_names}
        config = StackConfig.throwaway(model, work, kb_dir=kb_dir, rasa_http_api=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        with Stack(config):
            for name, cases in sets.items():
                print(f"recording {len(cases)} messages of {name} with {model.name}", flush=True)
                scores = record_scores(config.rasa_url, cases)
                out = out_dir / f"{name}.json"
                out.write_text(json.dumps([{"case": vars(c), "model": model.name, **s} for c, s in zip(cases, scores)],
                                          indent=1))
                print(f"written to {out}")
    return 0


def _cli(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.evaluation.tuning")
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("record", help="record the NLU scores of a case set (trains its model if needed)")
    r.add_argument("--sets", default="dev,heldout", help="comma-separated: dev, heldout, or covid alone")
    r.add_argument("--out-dir", default=str(PROJECT_ROOT / "var" / "scores"))
    p = commands.add_parser("replay", help="answer/ask/hand-over figures of recorded scores")
    p.add_argument("scores", nargs="+")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a threshold, e.g. --set kb_threshold=0.55")
    c = commands.add_parser("calibrate", help="calibrate again on a model's stored probes and replay with the result")
    c.add_argument("--model", required=True)
    c.add_argument("--budget", type=float, default=None, help="estimated wrong-answer budget")
    c.add_argument("--coverage", type=float, default=None, help="offer coverage of the ask band")
    c.add_argument("scores", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        from bot.nlu.calibration import Settings, calibrate

        settings = Settings()
        settings = replace(settings, wrong_budget=settings.wrong_budget if args.budget is None else args.budget,
                           offer_coverage=settings.offer_coverage if args.coverage is None else args.coverage)
        chosen = calibrate(model_probes(Path(args.model)), settings)
        print(f"calibrated: {chosen.thresholds()}\n  estimates: {chosen.estimates}")
        return replay_main([Path(p) for p in args.scores], chosen.thresholds())
    if args.command == "record":
        return record_main(args.sets.split(","), Path(args.out_dir))
    overrides = {name: float(value) for name, value in (item.split("=", 1) for item in args.set)}
    return replay_main([Path(p) for p in args.scores], overrides)


if __name__ == "__main__":
    raise SystemExit(_cli())
