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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(send, texts: list[str], *, requests: int, concurrency: int) -> dict:
    """``send(client, sender, text)`` posts one message; returns latency stats and throughput."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
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
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "concurrency": concurrency,
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "throughput_msg_s": round(len(latencies) / wall, 1),
    }


def main(*, requests: int, out_dir: Path) -> int:
    from bot.stack import Stack, StackConfig, free_port
    from bot.store.db import upgrade_database
    from bot.training import train

    texts = [case.text for case in load_cases(PROJECT_ROOT / "evaluation" / "dev.tsv")]
    model = train()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        work = Path(tmp)
        database_url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(database_url)
        api_key = uuid.uuid4().hex * 2
        config = StackConfig(
            model=model, database_url=database_url, api_key=api_key, tracker_db=work / "tracker.db",
            api_port=free_port(), rasa_port=free_port(), action_port=free_port(), log_dir=work / "log",
        )
        headers = {"X-API-Key": api_key}

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
                for name, send in (("rasa_webhook", bare), ("full_path", full)):
                    results[f"{name}_c{concurrency}"] = stats = measure(
                        send, texts, requests=requests, concurrency=concurrency
                    )
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
