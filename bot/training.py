"""Train the Rasa model from the knowledge base, only when something changed.

The model's file name is a fingerprint of everything that shapes it (KB,
training data, domain, config, the custom NLU code), so an unchanged project
reuses its model and any change produces a new one. Seeds are fixed and
TensorFlow runs deterministically so the same inputs train the same model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bot.settings import PROJECT_ROOT

RASA_ENV = PROJECT_ROOT / ".venv-rasa"
RASA_BIN = RASA_ENV / "bin" / "rasa"
GENERATED_FAQ = Path("nlu") / "faq.yml"
TRAINING_INPUTS = ("config.yml", "domain.yml", "data", "bot/nlu")


class TrainingError(RuntimeError):
    pass


def rasa_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Rasa processes: our components importable, deterministic, CPU only."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONHASHSEED": "0",
            "TF_DETERMINISTIC_OPS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            # Rasa reuses unchanged pipeline components from this cache between trainings.
            "RASA_CACHE_DIRECTORY": str(cache_directory()),
        }
    )
    env.update(extra or {})
    return env


CACHE_ROOT = PROJECT_ROOT / ".rasa" / "cache"


def cache_directory() -> Path:
    """Rasa's training cache, one per version of the custom NLU code.

    Rasa keys a cached component by its config and its inputs, not by its code: after a
    change to ``bot/nlu`` (the calibration, say) it would reuse the KB matcher trained by
    the old code, and the new model would silently carry the old thresholds."""
    digest = hashlib.sha256()
    _hash_tree(digest, PROJECT_ROOT, [PROJECT_ROOT / "bot" / "nlu"])
    return CACHE_ROOT / f"nlu-{digest.hexdigest()[:12]}"


def _prune_caches(keep: Path) -> None:
    """Caches of older code versions, and the single cache of before (its files directly in
    CACHE_ROOT), are never read again."""
    if not CACHE_ROOT.is_dir():
        return
    for old in CACHE_ROOT.iterdir():
        if old == keep:
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


# Modules of bot/nlu that Rasa's pipeline never imports (the other languages' understanding and
# the language detector run in the application): a change to them must not retrain the model.
NOT_IN_THE_MODEL = frozenset({"language.py", "lexical.py"})


def _hash_tree(digest: "hashlib._Hash", root: Path, paths: list[Path]) -> None:
    for path in sorted(paths):
        if path.is_dir():
            _hash_tree(digest, root, [p for p in path.iterdir()
                                      if p.name != "__pycache__" and p.name not in NOT_IN_THE_MODEL])
        elif path.is_file() and path.suffix in {".yml", ".yaml", ".py", ".json"}:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")


def stage_training_data(kb_dir: Path, stage: Path, calibrated_thresholds: bool = False) -> Path:
    """Copy the project's training inputs into ``stage`` with the FAQ data compiled from ``kb_dir``.

    ``calibrated_thresholds``: the KB thresholds come from the KB itself, not from config.yml
    (tuned on the project's own KB), for a KB imported from elsewhere.
    """
    from bot.kb.compile import compile_kb
    from bot.kb.loader import load_kb
    from bot.kb.validate import validate

    kb, problems = load_kb(kb_dir)
    problems = problems + validate(kb)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listing = "\n".join(f"{p.file}:{p.line}: {p.message}" for p in errors[:50])
        raise TrainingError(f"the knowledge base in {kb_dir} has {len(errors)} error(s); not training:\n{listing}")
    from bot.texts.domain import render_domain

    for name in ("config.yml", "domain.yml"):
        shutil.copy2(PROJECT_ROOT / name, stage / name)
    # Rasa's responses come from the text catalogue (bot.texts): the model is trained on the
    # catalogue's words even when domain.yml has not been regenerated yet.
    domain = stage / "domain.yml"
    domain.write_text(render_domain(domain.read_text("utf-8")), "utf-8")
    if calibrated_thresholds:
        from bot.nlu.calibration import calibrated_config

        (stage / "config.yml").write_text(calibrated_config((stage / "config.yml").read_text("utf-8")), "utf-8")
    shutil.copytree(PROJECT_ROOT / "data", stage / "data", ignore=shutil.ignore_patterns("faq.yml"))
    compile_kb(kb, stage / "data" / GENERATED_FAQ)
    return stage


def fingerprint(stage: Path) -> str:
    digest = hashlib.sha256()
    _hash_tree(digest, stage, [stage / "config.yml", stage / "domain.yml", stage / "data"])
    _hash_tree(digest, PROJECT_ROOT, [PROJECT_ROOT / "bot" / "nlu"])
    return digest.hexdigest()[:16]


def inputs_fingerprint(kb_dir: Path | None = None) -> str:
    """The fingerprint ``train`` would name the model after, without training (the KB must be valid)."""
    kb_dir = Path(kb_dir or PROJECT_ROOT / "knowledge_base")
    with tempfile.TemporaryDirectory(prefix="crm-fingerprint-") as tmp:
        return fingerprint(stage_training_data(kb_dir, Path(tmp)))


def kb_hash(kb_dir: Path) -> str:
    """The KB content hash (``bot.kb.compile.kb_fingerprint``), shortened: which KB a model was trained on."""
    from bot.kb.compile import kb_fingerprint

    return kb_fingerprint(kb_dir)[:16]


def kb_git_revision(kb_dir: Path) -> str | None:
    """The git commit the KB folder is at, with ``+dirty`` when its files differ from it (an approval
    writes the files without committing); None when the KB is not in git or git is missing."""
    try:
        head = subprocess.run(["git", "-C", str(kb_dir), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(kb_dir), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def train(
    *, kb_dir: Path | None = None, models_dir: Path | None = None, force: bool = False, quiet: bool = False,
    calibrated_thresholds: bool = False,
) -> Path:
    """Return the path of a model trained on the current inputs, training it if needed."""
    kb_dir = Path(kb_dir or PROJECT_ROOT / "knowledge_base")
    models_dir = Path(models_dir or PROJECT_ROOT / "models")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crm-train-") as tmp:
        stage = stage_training_data(kb_dir, Path(tmp), calibrated_thresholds)
        name = f"model-{fingerprint(stage)}"
        model = models_dir / f"{name}.tar.gz"
        if kb_dir.resolve() == (PROJECT_ROOT / "knowledge_base").resolve():
            # Keep the generated FAQ data in the project too, for `rasa test` and for reading,
            # and domain.yml's responses in line with the catalogue.
            shutil.copy2(stage / "data" / GENERATED_FAQ, PROJECT_ROOT / "data" / GENERATED_FAQ)
            if (stage / "domain.yml").read_bytes() != (PROJECT_ROOT / "domain.yml").read_bytes():
                shutil.copy2(stage / "domain.yml", PROJECT_ROOT / "domain.yml")
        if model.exists() and not force:
            if not quiet:
                print(f"model up to date: {model}")
            return model
        command = [
            str(RASA_BIN), "train",
            "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", str(models_dir), "--fixed-model-name", name,
        ]
        if not quiet:
            print(f"training {model.name} (inputs changed) ...", flush=True)
        _prune_caches(keep=cache_directory())
        result = subprocess.run(
            command, cwd=stage, env=rasa_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if result.returncode != 0 or not model.exists():
            sys.stderr.write(result.stdout[-8000:])
            raise TrainingError(f"rasa train failed with exit code {result.returncode}")
    return model
