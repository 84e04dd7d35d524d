"""Latency and throughput of the full path next to Rasa's bare REST webhook.

Both are measured in one run, on loopback, on the same model, with the same
messages: the full path is the generic API (validation, storing the inbound
message, calling Rasa, storing the replies); the bare path posts straight to
Rasa's webhook (Rasa still runs the same actions, which write to the store).
The difference is what the application adds.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bot.evaluation import load_cases, machine_description
from bot.settings import PROJECT_ROOT

# Turns each path takes per concurrency level (see measure_interleaved).
ROUNDS = 6


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _run(send, texts: list[str], *, requests: int, concurrency: int, first: int = 0) -> tuple[list[float], int, float]:
    """``send(client, sender, text)`` posts one message; returns (latencies, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(first, first + requests))
    run = uuid.uuid4().hex[:6]

    def worker(worker_id: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=60.0) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                start = time.perf_counter()
                ok = send(client, f"bench-{run}-{worker_id}", texts[index % len(texts)])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def _stats(latencies: list[float], errors: int, wall: float, concurrency: int) -> dict:
    return {
        "requests": len(latencies),
        "errors": errors,
        "concurrency": concurrency,
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "throughput_msg_s": round(len(latencies) / wall, 1),
    }


def measure(send, texts: list[str], *, requests: int, concurrency: int) -> dict:
    return _stats(*_run(send, texts, requests=requests, concurrency=concurrency), concurrency)


def measure_interleaved(paths: dict, texts: list[str], *, requests: int, concurrency: int) -> dict[str, dict]:
    """Every path measured in ROUNDS slices that take turns (order alternating per round).

    This machine's speed drifts over minutes (shared cores; Rasa's own p50 moved
    between 84 and 224 ms in runs of one afternoon): measuring one path after the
    other put that drift into the ratio. Taking turns exposes both paths to the
    same conditions.
    """
    collected = {name: ([], 0, 0.0) for name in paths}
    per_round = max(1, requests // ROUNDS)
    for round_ in range(ROUNDS):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for name in order:
            latencies, errors, wall = _run(
                paths[name], texts, requests=per_round, concurrency=concurrency, first=round_ * per_round
            )
            total = collected[name]
            collected[name] = (total[0] + latencies, total[1] + errors, total[2] + wall)
    return {name: _stats(*collected[name], concurrency) for name in paths}


def main(*, requests: int, out_dir: Path) -> int:
    from bot.stack import Stack, StackConfig
    from bot.training import train

    texts = [case.text for case in load_cases(PROJECT_ROOT / "evaluation" / "dev.tsv")]
    model = train()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        work = Path(tmp)
        config = StackConfig.throwaway(model, work)
        headers = {"X-API-Key": config.api_key}

        def full(client: httpx.Client, sender: str, text: str) -> bool:
            r = client.post(f"{config.api_url}/api/v1/messages", headers=headers,
                            json={"channel": "web", "sender": sender, "text": text})
            return r.status_code == 200 and bool(r.json()["replies"])

        def bare(client: httpx.Client, sender: str, text: str) -> bool:
            r = client.post(f"{config.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
            return r.status_code == 200 and bool(r.json())

        results: dict = {}
        with Stack(config):
            for send in (bare, full):  # warm-up: first calls load lazily initialised parts
                measure(send, texts, requests=20, concurrency=2)
            for concurrency in (1, 16):
                measured = measure_interleaved(
                    {"rasa_webhook": bare, "full_path": full}, texts, requests=requests, concurrency=concurrency
                )
                for name, stats in measured.items():
                    results[f"{name}_c{concurrency}"] = stats
                    print(f"{name:13s} c={concurrency:<2d} {stats}", flush=True)

    ratio = results["full_path_c1"]["p50_ms"] / results["rasa_webhook_c1"]["p50_ms"]
    print(f"full path p50 / Rasa webhook p50 (1 sender): {ratio:.2f} (target <= 1.30)")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Speed: measured figures",
        "",
        f"Produced by `make bench` (`python -m bot bench --requests {requests}`) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.",
        f"Machine: {machine_description()}. Model: `{model.name}`. Loopback, SQLite store.",
        "Messages: the development set's texts, cycled. Full path = generic API + Rasa + action server + store;",
        "Rasa webhook = Rasa's bare REST webhook on the same model (its actions still run).",
        f"The two paths take turns in {ROUNDS} rounds per concurrency level, so drift in the machine's speed",
        "affects both alike.",
        "",
        "| path | senders | requests | p50 ms | p99 ms | throughput msg/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in results.items():
        path = "full path" if key.startswith("full") else "Rasa webhook"
        lines.append(
            f"| {path} | {s['concurrency']} | {s['requests']} | {s['p50_ms']} | {s['p99_ms']} | "
            f"{s['throughput_msg_s']} | {s['errors']} |"
        )
    lines += ["", f"Full path p50 / Rasa webhook p50 at 1 sender: **{ratio:.2f}** (target: at most 1.30).", ""]
    (out_dir / "speed.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"results written to {out_dir / 'speed.md'}")
    return 0
