"""Helper run by tests/nlu/test_minilm.py inside the Rasa env (.venv-rasa).

The app env has no ``tokenizers``, so everything that needs the real
tokenizer/model runs here, in a subprocess, and prints one JSON object on the
last line of stdout. Usage:

    .venv-rasa/bin/python tests/nlu/minilm_probe.py reference FIXTURE.json
    .venv-rasa/bin/python tests/nlu/minilm_probe.py env-model   # uses $CRM_MINILM_DIR
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bot.nlu.minilm import MiniLMEncoder  # noqa: E402


def _rows(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def reference(fixture_path: str) -> dict:
    fixture = json.loads(Path(fixture_path).read_text(encoding="utf-8"))
    sentences = fixture["sentences"]

    t0 = time.perf_counter()
    enc = MiniLMEncoder.load()
    load_s = time.perf_counter() - t0

    batched = enc.encode(sentences, batch_size=3)
    bs32 = enc.encode(sentences)
    single = np.stack([enc.encode([s])[0] for s in sentences])

    # Ordering: a permuted list with duplicates must come back in input order.
    rng = np.random.default_rng(1234)
    perm = rng.permutation(len(sentences)).tolist()
    perm = perm + perm[:3]
    shuffled = enc.encode([sentences[i] for i in perm], batch_size=4)

    # Thread safety: concurrent encode() calls give the serial result.
    serial = enc.encode(sentences, batch_size=2)
    results: dict = {}
    errors: list = []

    def worker(k: int) -> None:
        try:
            for _ in range(3):
                results.setdefault(k, []).append(enc.encode(sentences, batch_size=2))
        except Exception as exc:  # pragma: no cover - reported to the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    thread_maxdiff = max(
        float(np.abs(r - serial).max()) for rs in results.values() for r in rs
    ) if results else float("inf")

    try:
        enc.encode("a single string")  # type: ignore[arg-type]
        str_rejected = False
    except TypeError:
        str_rejected = True

    # Timing (informational): one short sentence, 200 calls.
    short = "How do I renew my parking permit?"
    for _ in range(20):
        enc.encode([short])
    times = []
    for _ in range(200):
        t = time.perf_counter()
        enc.encode([short])
        times.append(time.perf_counter() - t)

    return {
        "numpy": np.__version__,
        "load_s": load_s,
        "dim": enc.dim,
        "max_seq_length": enc.max_seq_length,
        "dtype": str(batched.dtype),
        "shape": list(batched.shape),
        "batched": _rows(batched),
        "bs32": _rows(bs32),
        "single": _rows(single),
        "perm": perm,
        "shuffled": _rows(shuffled),
        "thread_maxdiff": thread_maxdiff,
        "thread_errors": errors,
        "empty_list_shape": list(enc.encode([]).shape),
        "str_rejected": str_rejected,
        "token_lengths": [len(t) for t in enc.tokenize(sentences)],
        "empty_ids": enc.tokenize([""])[0],
        "short_tokens": len(enc.tokenize([short])[0]),
        "p50_ms": float(np.median(times) * 1e3),
        "p90_ms": float(np.percentile(times, 90) * 1e3),
    }


def env_model() -> dict:
    """Load from $CRM_MINILM_DIR (no argument) and report what was loaded."""
    enc = MiniLMEncoder.load()
    texts = ["hello there", "", "word " * 100, "¿qué tal? 🙂"]
    vecs = enc.encode(texts, batch_size=2)
    single = np.stack([enc.encode([t])[0] for t in texts])
    return {
        "model_dir": str(enc.model_dir),
        "num_layers": enc.num_layers,
        "num_heads": enc.num_heads,
        "hidden": enc.hidden_size,
        "dim": enc.dim,
        "pooling": list(enc.pooling_modes),
        "max_seq_length": enc.max_seq_length,
        "token_lengths": [len(t) for t in enc.tokenize(texts)],
        "vecs": _rows(vecs),
        "single": _rows(single),
    }


def main(argv: list) -> int:
    if argv[:1] == ["reference"] and len(argv) == 2:
        out = reference(argv[1])
    elif argv == ["env-model"]:
        out = env_model()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
