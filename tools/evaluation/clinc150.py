"""CLINC150 in-scope accuracy and out-of-scope recall with the project's NLU pipeline.

The pipeline is config.yml's minus the knowledge-base matcher (there is no KB
here): the same tokenizer, featurizers (MiniLM included) and DIET settings,
trained NLU-only on CLINC150 in a temporary directory. The benchmark's
protocol (../shared/benchmarks/README.md): train on ``train`` (plus
``oos_train`` for the variant with an out-of-scope intent), choose the
confidence threshold on ``val`` + ``oos_val``, report on ``test`` + ``oos_test``.

A query is rejected as out of scope when DIET's top intent is ``out_of_scope``
or its confidence is below the threshold. An in-scope query counts as right
only if it is not rejected and gets its own intent, as in Larson et al. 2019.

Messages are parsed in batches by Rasa's predict graph inside a subprocess in
the Rasa environment (no server, no tracker store): the same components and
the same per-message output as ``/model/parse``, much faster.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from bot.settings import PROJECT_ROOT
from bot.training import RASA_BIN, RASA_ENV, TrainingError, rasa_env

CLINC_FILE = PROJECT_ROOT.parent / "shared" / "benchmarks" / "clinc150" / "data_full.json"
CLINC_OOS = "oos"  # CLINC150's label for out-of-scope queries
OUT_OF_SCOPE = "out_of_scope"  # the project's intent for them (data/nlu/intents.yml)
# Components that need the knowledge base; everything else in config.yml is kept.
KB_COMPONENTS = ("bot.nlu.kb_matcher.KnowledgeBaseMatcher",)

# Variants: name -> whether oos_train is trained as the out_of_scope intent.
VARIANTS = {"oos_intent": True, "threshold": False}

# Published figures on the full set (in-scope accuracy, OOS recall), for the report.
REFERENCES = [
    ("BERT, OOS trained as its own intent", 96.9, 40.3),
    ("BERT, confidence threshold", 96.2, 52.3),
    ("Rasa (2019 pipeline), OOS as intent", 91.5, 45.3),
    ("Rasa (2019 pipeline), threshold", 90.9, 31.2),
]

# Run in the Rasa environment: read {"model": ..., "texts": [...]} on stdin, print one
# [intent, confidence] per text as a JSON list. The graph takes a list of messages, so the
# featurizers (MiniLM above all) encode a batch at a time.
_PARSE_SCRIPT = r"""
import json, logging, sys
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.shared.core.trackers import DialogueStateTracker

request = json.load(sys.stdin)
processor = Agent.load(request["model"]).processor
tracker = DialogueStateTracker.from_events("clinc150", [])
target = processor.model_metadata.nlu_target
texts = request["texts"]
out = []
for start in range(0, len(texts), 64):
    batch = [UserMessage(text) for text in texts[start:start + 64]]
    results = processor.graph_runner.run(
        inputs={PLACEHOLDER_MESSAGE: batch, PLACEHOLDER_TRACKER: tracker}, targets=[target]
    )
    for message in results[target]:
        intent = message.get("intent") or {}
        out.append([intent.get("name"), float(intent.get("confidence") or 0.0)])
json.dump(out, sys.stdout)
"""


@dataclass(frozen=True)
class Prediction:
    expected: str  # a CLINC intent, or OUT_OF_SCOPE
    intent: str | None
    confidence: float


@dataclass(frozen=True)
class Figures:
    in_scope: int
    out_of_scope: int
    in_scope_accuracy: float
    oos_recall: float

    @property
    def balanced(self) -> float:
        return (self.in_scope_accuracy + self.oos_recall) / 2

    def as_dict(self) -> dict:
        return {
            "in_scope_queries": self.in_scope,
            "oos_queries": self.out_of_scope,
            "in_scope_accuracy": round(self.in_scope_accuracy, 4),
            "oos_recall": round(self.oos_recall, 4),
        }


def load_clinc(path: Path = CLINC_FILE) -> dict[str, list[tuple[str, str]]]:
    return {split: [(text, label) for text, label in rows] for split, rows in json.loads(path.read_text()).items()}


def _label(label: str) -> str:
    return OUT_OF_SCOPE if label == CLINC_OOS else label


def split_examples(data: dict[str, list[tuple[str, str]]], split: str, *, with_oos: bool = True) -> list[tuple[str, str]]:
    """``split`` (train, val or test), followed by its out-of-scope part if asked, OOS labelled out_of_scope."""
    rows = list(data[split]) + (list(data[f"oos_{split}"]) if with_oos else [])
    return [(text, _label(label)) for text, label in rows]


def training_data(examples: list[tuple[str, str]]) -> dict:
    """Rasa's JSON NLU format: no markup in the text, so CLINC's brackets and parentheses stay text."""
    return {"rasa_nlu_data": {"common_examples": [{"text": t, "intent": i, "entities": []} for t, i in examples]}}


def nlu_config(config_path: Path = PROJECT_ROOT / "config.yml", *, epochs: int | None = None) -> dict:
    """config.yml's NLU part without the KB components; ``epochs`` overrides DIET's if given."""
    config = yaml.safe_load(config_path.read_text())
    pipeline = []
    for component in config["pipeline"]:
        if component["name"] in KB_COMPONENTS:
            continue
        component = dict(component)
        if component["name"] == "DIETClassifier" and epochs is not None:
            component["epochs"] = epochs
        pipeline.append(component)
    return {"recipe": config.get("recipe", "default.v1"), "language": config.get("language", "en"), "pipeline": pipeline}


def diet_epochs(config: dict) -> int:
    return next(int(c.get("epochs", 300)) for c in config["pipeline"] if c["name"] == "DIETClassifier")


def train_nlu(examples: list[tuple[str, str]], config: dict, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    (work / "nlu.json").write_text(json.dumps(training_data(examples)))
    (work / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        "nice", "-n", "10", str(RASA_BIN), "train", "nlu", "--config", "config.yml", "--nlu", "nlu.json",
        "--out", str(work), "--fixed-model-name", "clinc150",
    ]
    # A cache of its own: CLINC's featurized data must not fill the project's Rasa cache.
    env = rasa_env({"RASA_CACHE_DIRECTORY": str(work / "cache")})
    result = subprocess.run(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    model = work / "clinc150.tar.gz"
    if result.returncode != 0 or not model.exists():
        sys.stderr.write(result.stdout[-8000:])
        raise TrainingError(f"rasa train nlu failed with exit code {result.returncode}")
    return model


def parse(model: Path, examples: list[tuple[str, str]]) -> list[Prediction]:
    request = json.dumps({"model": str(model), "texts": [t for t, _ in examples]})
    result = subprocess.run(
        ["nice", "-n", "10", str(RASA_ENV / "bin" / "python"), "-c", _PARSE_SCRIPT],
        input=request, cwd=PROJECT_ROOT, env=rasa_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-8000:])
        raise RuntimeError(f"parsing with {model} failed with exit code {result.returncode}")
    parsed = json.loads(result.stdout)
    if len(parsed) != len(examples):
        raise RuntimeError(f"{len(parsed)} parses for {len(examples)} messages")
    return [Prediction(label, intent, conf) for (_, label), (intent, conf) in zip(examples, parsed)]


def rejected(p: Prediction, threshold: float) -> bool:
    return p.intent in (None, OUT_OF_SCOPE) or p.confidence < threshold


def figures(predictions: list[Prediction], threshold: float) -> Figures:
    ins = [p for p in predictions if p.expected != OUT_OF_SCOPE]
    oos = [p for p in predictions if p.expected == OUT_OF_SCOPE]
    right = sum(not rejected(p, threshold) and p.intent == p.expected for p in ins)
    caught = sum(rejected(p, threshold) for p in oos)
    return Figures(len(ins), len(oos), right / max(1, len(ins)), caught / max(1, len(oos)))


def choose_threshold(predictions: list[Prediction]) -> float:
    """The threshold maximising (in-scope accuracy + OOS recall) / 2; the lowest one on a tie.

    Only the observed confidences (and 0, reject nothing extra) can change the figures, so
    they are the candidates; a threshold t rejects confidences strictly below t.
    """
    ins = [p for p in predictions if p.expected != OUT_OF_SCOPE]
    oos = [p for p in predictions if p.expected == OUT_OF_SCOPE]
    right = sorted(p.confidence for p in ins if p.intent == p.expected)  # right unless rejected
    missed = sorted(p.confidence for p in oos if not rejected(p, 0.0))  # caught only if below t
    always_caught = len(oos) - len(missed)
    best, best_score = 0.0, -1.0
    for t in sorted({0.0, *(p.confidence for p in predictions)}):
        accuracy = (len(right) - bisect.bisect_left(right, t)) / max(1, len(ins))
        recall = (always_caught + bisect.bisect_left(missed, t)) / max(1, len(oos))
        score = (accuracy + recall) / 2
        if score > best_score + 1e-12:
            best, best_score = t, score
    return best


def evaluate_variant(data: dict, name: str, with_oos: bool, config: dict, work: Path) -> dict:
    train = split_examples(data, "train", with_oos=with_oos)
    started = time.perf_counter()
    print(f"[{name}] training on {len(train)} examples, {diet_epochs(config)} DIET epochs ...", flush=True)
    model = train_nlu(train, config, work / name)
    training_seconds = time.perf_counter() - started
    val, test = split_examples(data, "val"), split_examples(data, "test")
    started = time.perf_counter()
    predictions = parse(model, val + test)
    parse_seconds = time.perf_counter() - started
    val_pred, test_pred = predictions[: len(val)], predictions[len(val):]
    threshold = choose_threshold(val_pred)
    result = {
        "variant": name,
        "oos_train_as_intent": with_oos,
        "training_examples": len(train),
        "intents": len({label for _, label in train}),
        "threshold": round(threshold, 6),
        "val": figures(val_pred, threshold).as_dict(),
        "test": figures(test_pred, threshold).as_dict(),
        "training_seconds": round(training_seconds, 1),
        "parse_seconds": round(parse_seconds, 1),
        "parsed_messages": len(predictions),
    }
    if with_oos:
        # The published "OOS as intent" row: no threshold at all.
        result["test_without_threshold"] = figures(test_pred, 0.0).as_dict()
    print(f"[{name}] threshold {threshold:.4f}: test in-scope accuracy {result['test']['in_scope_accuracy']:.1%}, "
          f"OOS recall {result['test']['oos_recall']:.1%} (training {training_seconds:.0f} s, parsing "
          f"{len(predictions)} messages {parse_seconds:.0f} s)", flush=True)
    return result


def write_results(results: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "clinc150.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# CLINC150 with the project's NLU pipeline",
        "",
        f"Measured {results['measured_at']} on {results['machine']} with `{results['command']}`.",
        "",
        f"Pipeline: config.yml without the KnowledgeBaseMatcher (no KB here): {', '.join(results['pipeline'])}; "
        f"DIET with config.yml's settings, {results['epochs']} epochs (config.yml has {results['config_epochs']}). "
        "Protocol of ../shared/benchmarks/README.md: trained on `train` (+ `oos_train` as the `out_of_scope` intent "
        "in the OOS-as-intent variant), the DIET-confidence threshold chosen on `val` + `oos_val` to maximise "
        "(in-scope accuracy + OOS recall) / 2, figures on `test` (4,500) + `oos_test` (1,000). A query is rejected "
        "when its top intent is `out_of_scope` or its confidence is below the threshold; an in-scope query is right "
        "only if not rejected and given its own intent.",
        "",
    ]
    if results["epochs"] != results["config_epochs"]:
        lines += [f"**DIET trained for {results['epochs']} epochs, not config.yml's {results['config_epochs']}**, "
                  "to keep the run's wall time reasonable on this machine.", ""]
    lines += ["| method | in-scope acc. | OOS recall | threshold |", "|---|---|---|---|"]
    for v in results["variants"]:
        if v["oos_train_as_intent"]:
            t = v["test_without_threshold"]
            lines.append(f"| this project, OOS as intent | {t['in_scope_accuracy']:.1%} | {t['oos_recall']:.1%} | none |")
            label = "this project, OOS as intent + threshold"
        else:
            label = "this project, threshold"
        t = v["test"]
        lines.append(f"| {label} | {t['in_scope_accuracy']:.1%} | {t['oos_recall']:.1%} | {v['threshold']:.4f} |")
    for name, acc, rec in REFERENCES:
        lines.append(f"| {name} (Larson et al. 2019) | {acc}% | {rec}% | |")
    lines += ["", "| variant | training examples | training | parsing (val + test) |", "|---|---|---|---|"]
    for v in results["variants"]:
        lines.append(f"| {v['variant']} | {v['training_examples']} | {v['training_seconds']:.0f} s | "
                     f"{v['parsed_messages']} messages, {v['parse_seconds']:.0f} s |")
    lines += ["", f"Total wall time {results['wall_seconds']:.0f} s.", ""]
    (out_dir / "clinc150.md").write_text("\n".join(lines))


def main(*, variants: list[str], epochs: int | None, out_dir: Path, data_file: Path = CLINC_FILE) -> int:
    from tools.evaluation.understanding import machine_description

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    data = load_clinc(data_file)
    config = nlu_config(epochs=epochs)
    command = "python -m tools eval-clinc" + (f" --epochs {epochs}" if epochs is not None else "") + \
        (f" --variants {','.join(variants)}" if variants != list(VARIANTS) else "")
    with tempfile.TemporaryDirectory(prefix="crm-clinc-") as tmp:
        results_by_variant = [evaluate_variant(data, name, VARIANTS[name], config, Path(tmp)) for name in variants]
    results = {
        "benchmark": "clinc150 data_full.json",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "command": command,
        "epochs": diet_epochs(config),
        "config_epochs": diet_epochs(nlu_config()),
        "threshold_criterion": "max (in-scope accuracy + OOS recall) / 2 on val + oos_val; lowest on a tie",
        "pipeline": [c["name"] for c in config["pipeline"]],
        "variants": results_by_variant,
        "references": [{"method": n, "in_scope_accuracy": a, "oos_recall": r} for n, a, r in REFERENCES],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    write_results(results, out_dir)
    print(f"results written to {out_dir / 'clinc150.md'} and {out_dir / 'clinc150.json'}")
    return 0
