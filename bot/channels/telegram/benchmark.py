"""Telegram's per-message overhead over the generic API, measured on one running stack.

The same messages, in the same order, go through both paths:

- generic API: ``POST /api/v1/messages``, timed until the HTTP response (which carries
  the replies);
- Telegram: the update is put in the Bot API stand-in's getUpdates queue, the polling
  worker (``python -m bot channel telegram``, its own process as in production) fetches
  it, and the time is taken when the stand-in receives the last sendMessage of the
  replies (and the first, since a citizen starts reading then).

The difference is what Telegram costs us: the long poll returning, python-telegram-bot's
parsing, the replies stored as pending and then sent one sendMessage each, and their
delivery recorded. Telegram's own network round trips are not in it (loopback stand-in).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bot.channels.telegram.standin import BotApiStandIn
from bot.settings import PROJECT_ROOT

TOKEN = "555000:BENCH-stand-in-token"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    first_reply: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0

    def stats(self) -> dict:
        data = {
            "messages": len(self.latencies),
            "errors": self.errors,
            "p50_ms": round(_percentile(self.latencies, 50) * 1000, 1),
            "p99_ms": round(_percentile(self.latencies, 99) * 1000, 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 1),
            "throughput_msg_s": round(len(self.latencies) / self.wall, 2) if self.wall else 0.0,
        }
        if self.first_reply:
            data["first_reply_p50_ms"] = round(_percentile(self.first_reply, 50) * 1000, 1)
        return data


def _partition(texts: list[str], concurrency: int) -> list[list[str]]:
    return [texts[i::concurrency] for i in range(concurrency)]


def _in_threads(work, concurrency: int) -> float:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def api_path(api_url: str, api_key: str, texts: list[str], *, concurrency: int, tag: str) -> tuple[Run, list[list[int]]]:
    """Returns the run and, per sender, how many replies each message got."""
    run = Run()
    parts = _partition(texts, concurrency)
    counts: list[list[int]] = [[] for _ in parts]
    lock = threading.Lock()

    def work(index: int) -> None:
        with httpx.Client(timeout=60.0, headers={"X-API-Key": api_key}) as client:
            for text in parts[index]:
                start = time.perf_counter()
                response = client.post(f"{api_url}/api/v1/messages",
                                       json={"channel": "web", "sender": f"bench-{tag}-{index}", "text": text})
                elapsed = time.perf_counter() - start
                ok = response.status_code == 200
                counts[index].append(len(response.json()["replies"]) if ok else 1)
                with lock:
                    run.latencies.append(elapsed)
                    run.errors += 0 if ok else 1

    run.wall = _in_threads(work, concurrency)
    return run, counts


def telegram_path(standin: BotApiStandIn, texts: list[str], counts: list[list[int]], *, concurrency: int,
                  first_chat: int, timeout: float = 60.0) -> Run:
    run = Run()
    parts = _partition(texts, concurrency)
    lock = threading.Lock()

    def work(index: int) -> None:
        chat = first_chat + index
        for text, count in zip(parts[index], counts[index]):
            before = len(standin.sent_to(chat))
            start = time.perf_counter()
            standin.push(standin.updates.text(chat, text))
            try:
                sent = standin.wait_for_sent(chat, before + count, timeout=timeout)
            except AssertionError:
                with lock:
                    run.errors += 1
                continue
            with lock:
                run.latencies.append(sent[before + count - 1].at - start)
                run.first_reply.append(sent[before].at - start)

    run.wall = _in_threads(work, concurrency)
    return run


class TelegramWorker:
    """``python -m bot channel telegram`` against the stand-in, as `bot run` starts it."""

    def __init__(self, env: dict[str, str], standin: BotApiStandIn, log: Path, poll_interval: float) -> None:
        self.env = {**env, "CRM_TELEGRAM_POLL_INTERVAL_SECONDS": str(poll_interval)}
        self.standin, self.log = standin, log

    def __enter__(self) -> "TelegramWorker":
        polls = len(self.standin.calls_of("getUpdates"))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "channel", "telegram"], cwd=PROJECT_ROOT,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(self.standin.calls_of("getUpdates")) <= polls:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Telegram worker did not start; see {self.log}")
            time.sleep(0.1)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main(*, messages: int, concurrency: list[int], poll_intervals: list[float], out_dir: Path) -> int:
    from bot.evaluation import load_cases, machine_description
    from bot.stack import Stack, StackConfig, free_port
    from bot.store.db import upgrade_database
    from bot.training import train

    texts = [case.text for case in load_cases(PROJECT_ROOT / "evaluation" / "dev.tsv")]
    texts = [texts[i % len(texts)] for i in range(messages)]
    model = train()
    # (chats, poll interval, generic API stats, Telegram stats), measured back to back
    pairs: list[tuple[int, float, dict, dict]] = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-telegram-") as tmp, BotApiStandIn(TOKEN) as standin:
        work = Path(tmp)
        database_url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(database_url)
        api_key = uuid.uuid4().hex * 2
        config = StackConfig(
            model=model, database_url=database_url, api_key=api_key, tracker_db=work / "tracker.db",
            api_port=free_port(), rasa_port=free_port(), action_port=free_port(), log_dir=work / "log",
        )
        env = {
            **os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CRM_DATABASE_URL": database_url,
            "CRM_API_KEYS": api_key, "CRM_KB_DIR": str(config.kb_dir), "CRM_RASA_URL": config.rasa_url,
            "CRM_TELEGRAM_BOT_TOKEN": TOKEN, "CRM_TELEGRAM_BASE_URL": standin.base_url,
        }
        chats = iter(range(1_000_000, 2_000_000, 1000))
        with Stack(config):
            for poll_interval in poll_intervals:
                with TelegramWorker(env, standin, work / "log" / "channel-telegram.log", poll_interval):
                    # Warm-up: the first calls load lazily initialised parts on both paths.
                    warm = texts[:20]
                    _run, warm_counts = api_path(config.api_url, api_key, warm, concurrency=1, tag=f"warm{poll_interval}")
                    telegram_path(standin, warm, warm_counts, concurrency=1, first_chat=next(chats))
                    levels = concurrency if poll_interval == poll_intervals[0] else [1]
                    for level in levels:
                        tag = f"{poll_interval}-{level}"
                        api_run, counts = api_path(config.api_url, api_key, texts, concurrency=level, tag=tag)
                        tg_run = telegram_path(standin, texts, counts, concurrency=level, first_chat=next(chats))
                        pairs.append((level, poll_interval, api_run.stats(), tg_run.stats()))
                        print(f"c={level} poll_interval={poll_interval}: API {pairs[-1][2]}; "
                              f"Telegram {pairs[-1][3]}", flush=True)

    lines = _report(pairs, messages=messages, concurrency=concurrency, poll_intervals=poll_intervals,
                    machine=machine_description(), model=model.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "telegram.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"results written to {out_dir / 'telegram.md'}")
    return 0


def _report(pairs, *, messages, concurrency, poll_intervals, machine, model) -> list[str]:
    command = (f"python -m bot bench-telegram --messages {messages} --concurrency "
               f"{','.join(map(str, concurrency))} --poll-intervals {','.join(f'{p:g}' for p in poll_intervals)}")
    lines = [
        "# Telegram: per-message overhead over the generic API",
        "",
        f"Produced by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.",
        f"Machine: {machine}. Model: `{model}`. Loopback, SQLite store, one stack (Rasa, action server, API)",
        "and the polling worker `python -m bot channel telegram` in its own process, against the Bot API",
        "stand-in (`bot/channels/telegram/standin.py`, long polling: getUpdates is held open until an",
        "update arrives, as Telegram does). Messages: the development set's texts, the same ones in the",
        "same order on both paths, measured back to back.",
        "",
        "- generic API: `POST /api/v1/messages` until the response (which carries all replies);",
        "- Telegram: update queued in the stand-in until the stand-in receives the *last* sendMessage of",
        "  the replies (a KB answer is two messages: the answer, then its links); \"first reply\" is until",
        "  the first one.",
        "",
        "| path | chats / senders | poll interval s | messages | p50 ms | p99 ms | first reply p50 ms | msg/s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, poll_interval, api, tg in pairs:
        for name, s, interval in (("generic API", api, ""), ("Telegram", tg, f"{poll_interval:g}")):
            lines.append(
                f"| {name} | {level} | {interval} | {s['messages']} | {s['p50_ms']} | {s['p99_ms']} | "
                f"{s.get('first_reply_p50_ms', '')} | {s['throughput_msg_s']} | {s['errors']} |"
            )
    lines += ["", "Overhead (Telegram minus generic API, same messages):", ""]
    for level, poll_interval, api, tg in pairs:
        lines.append(
            f"- {level} chat(s), poll interval {poll_interval:g} s: p50 **{tg['p50_ms'] - api['p50_ms']:+.1f} ms** "
            f"(x{tg['p50_ms'] / api['p50_ms']:.2f}), p99 {tg['p99_ms'] - api['p99_ms']:+.1f} ms "
            f"(x{tg['p99_ms'] / api['p99_ms']:.2f})"
        )
    lines.append("")
    return lines
