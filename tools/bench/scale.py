"""Several Rasa processes on PostgreSQL and Redis: throughput, p99, and a SIGKILL in mid-load.

Each sender is one citizen holding a conversation: its messages go out two at a
time (a citizen who types on before the answer arrives), so that Rasa's lock store
has something to order. After the run the store and Rasa's tracker are checked:
every message sent is stored once and answered once, and no conversation's turns
interleave in the tracker (a user turn starts only after the previous one ended).

The same load serves the test (tests/e2e/test_scale.py) and the measurement
(``python -m tools bench-scale``, results/scale.md).
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import sqlalchemy as sa

from bot.settings import PROJECT_ROOT

TEXTS = [
    "When is my bin collected?",
    "how do I renew my parking permit",
    "There is a huge pothole on Elm Street, please fix it",
    "What documents do I need for a birth certificate?",
    "I want to complain about the noise from the bar next door",
    "when are the recycling centre opening hours",
    "how do I pay the property tax",
    "hello",
    "I need to talk to a person about my case",
    "thanks, bye",
]
# How the reply to a message escalated because Rasa could not answer it begins (ticket.saved_unavailable).
UNAVAILABLE_PREFIX = "Sorry, I can't process your message right now."
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Sent:
    sender: str
    message_id: str
    latency: float
    status: int | None
    replies: list[str] = field(default_factory=list)
    handling: str | None = None
    attempts: int = 1


def _post(client: httpx.Client, api_url: str, api_key: str, sender: str, text: str, message_id: str) -> Sent:
    """One message as a careful client sends it: on a transport error or a 5xx the same message
    (same message_id) is sent again, which the API must recognise rather than answer twice."""
    start = time.perf_counter()
    body = {"channel": "api", "sender": sender, "text": text, "message_id": message_id}
    status = None
    for attempt in range(1, 6):
        try:
            response = client.post(f"{api_url}/api/v1/messages", json=body, headers={"X-API-Key": api_key})
            status = response.status_code
            if status == 200:
                data = response.json()
                replies = [r.get("text", "") if isinstance(r, dict) else str(r) for r in data.get("replies") or []]
                handling = data.get("handling")
                kind = handling.get("kind") if isinstance(handling, dict) else handling
                return Sent(sender, message_id, time.perf_counter() - start, status, replies, kind, attempt)
        except httpx.TransportError:
            status = None
        time.sleep(0.5 * attempt)
    return Sent(sender, message_id, time.perf_counter() - start, status, attempts=5)


def conversation_load(api_url: str, api_key: str, *, senders: int = 16, turns: int = 4, run: str | None = None,
                      during: Callable[[int], None] | None = None) -> tuple[list[Sent], float]:
    """``senders`` conversations of ``turns`` messages, two in flight per conversation.

    ``during(done)`` is called after each finished message (the SIGKILL run kills a process
    from it). Returns every message's outcome and the wall time.
    """
    run = run or uuid.uuid4().hex[:8]
    results: list[Sent] = []
    lock = threading.Lock()

    def converse(index: int) -> None:
        sender = f"scale-{run}-{index}"
        with httpx.Client(timeout=120.0) as client, ThreadPoolExecutor(2) as pair:
            for first in range(0, turns, 2):
                futures = [
                    pair.submit(_post, client, api_url, api_key, sender, TEXTS[(index + n) % len(TEXTS)],
                                f"{sender}-{n}")
                    for n in range(first, min(first + 2, turns))
                ]
                for future in futures:
                    outcome = future.result()
                    with lock:
                        results.append(outcome)
                        done = len(results)
                    if during is not None:
                        during(done)

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(converse, range(senders)))
    return results, time.perf_counter() - started


def store_counts(database_url: str, results: list[Sent]) -> dict:
    """What the interaction store holds for the messages sent: stored once, answered once."""
    from bot.store.db import session_factory
    from bot.store.models import ChannelIdentity, Message

    senders = sorted({r.sender for r in results})
    sessions = session_factory(database_url)
    with sessions() as session:
        inbound = session.execute(
            sa.select(Message.id, Message.external_id, Message.handling)
            .join(ChannelIdentity, Message.identity_id == ChannelIdentity.id)
            .where(ChannelIdentity.channel == "api", ChannelIdentity.address.in_(senders), Message.direction == "in")
        ).all()
        reply_counts = Counter(
            session.scalars(
                sa.select(Message.reply_to_id).where(Message.reply_to_id.in_([row.id for row in inbound]))
            ).all()
        )
        public_ids = set(session.scalars(
            sa.select(ChannelIdentity.public_id).where(ChannelIdentity.channel == "api",
                                                       ChannelIdentity.address.in_(senders))
        ).all())
    # The API stores a client's message_id as "api:<key tag>:<message_id>".
    key_of = {row.id: (row.external_id or "").split(":", 2)[-1] for row in inbound}
    per_key = Counter(key_of.values())
    sent = {r.message_id: r for r in results}
    # A message answered twice would have its replies stored by two handlings: more reply rows
    # than the answer the client received.
    answered_twice = sum(
        1 for row in inbound
        if key_of[row.id] in sent and reply_counts[row.id] > max(1, len(sent[key_of[row.id]].replies))
    )
    return {
        "sent": len(results),
        "answered_to_client": sum(1 for r in results if r.status == 200 and r.replies),
        "stored": len(inbound),
        "stored_with_reply": sum(1 for row in inbound if reply_counts[row.id] > 0),
        "stored_twice": sum(n - 1 for n in per_key.values() if n > 1),
        "answered_twice": answered_twice,
        "lost": len(set(sent) - set(per_key)),
        "client_retries": sum(r.attempts - 1 for r in results),
        "escalated_assistant_unavailable": sum(
            1 for r in results if any(reply.startswith(UNAVAILABLE_PREFIX) for reply in r.replies)),
        "rasa_senders": sorted(public_ids),
    }


def tracker_interleavings(tracker_url: str, senders: set[str]) -> int:
    """Conversations in which a user turn began before the previous one had ended.

    Rasa ends every turn by predicting ``action_listen``; with the lock store holding a
    conversation while one process works on it, a second ``user`` event never comes first.
    """
    engine = sa.create_engine(tracker_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT sender_id, type_name, action_name FROM events ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    open_turn: dict[str, bool] = defaultdict(bool)
    interleaved: set[str] = set()
    for sender_id, type_name, action_name in rows:
        if sender_id not in senders:
            continue
        if type_name == "user":
            if open_turn[sender_id]:
                interleaved.add(sender_id)
            open_turn[sender_id] = True
        elif type_name == "action" and action_name == "action_listen":
            open_turn[sender_id] = False
    return len(interleaved)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def latency_stats(results: list[Sent], wall: float) -> dict:
    latencies = [r.latency for r in results]
    return {
        "messages": len(results),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "throughput_msg_s": round(len(results) / wall, 2),
    }


class ScaleRun:
    """A stack on a new PostgreSQL database and Redis, with ``rasa_processes`` Rasa processes."""

    def __init__(self, *, model: Path, work: Path, database_url: str, redis_url: str, rasa_processes: int,
                 action_servers: int = 1, api_workers: int = 2) -> None:
        from bot.settings import Settings
        from bot.stack import Stack, StackConfig

        tracker = Settings.model_construct(database_url=database_url, tracker_database_url=None).tracker_url
        self.config = StackConfig.throwaway(
            model, work, database_url=database_url, tracker_url=tracker, redis_url=redis_url,
            rasa_processes=rasa_processes, action_servers=action_servers, api_workers=api_workers,
        )
        self.stack = Stack(self.config)

    def __enter__(self) -> "ScaleRun":
        self.stack.start(timeout=400)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.stop()

    def warm_up(self) -> None:
        conversation_load(self.config.api_url, self.config.api_key, senders=4, turns=2)

    def kill_rasa(self, name: str = "rasa-2") -> None:
        import os

        pid = self.stack.pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def _new_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"crm_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from bot.store.db import dispose_engines

        dispose_engines()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


def measure(*, pg_admin_url: str = DEFAULT_PG_ADMIN, redis_url: str = DEFAULT_REDIS, senders: int = 16,
            turns: int = 8) -> dict:
    from bot.training import train

    model = train(quiet=True)
    figures: dict = {"senders": senders, "turns_per_sender": turns}
    for processes, label in ((1, "one_rasa"), (2, "two_rasa"), (2, "two_rasa_sigkill")):
        database_url, drop = _new_database(pg_admin_url)
        try:
            with tempfile.TemporaryDirectory(prefix="crm-scale-") as tmp, ScaleRun(
                model=model, work=Path(tmp), database_url=database_url, redis_url=redis_url, rasa_processes=processes
            ) as run:
                run.warm_up()
                total = senders * turns
                killed: list[float] = []

                def during(done: int) -> None:
                    if label.endswith("sigkill") and not killed and done >= total // 3:
                        killed.append(time.perf_counter())
                        run.kill_rasa()

                results, wall = conversation_load(run.config.api_url, run.config.api_key, senders=senders,
                                                  turns=turns, during=during)
                entry = latency_stats(results, wall)
                entry.update(store_counts(database_url, results))
                entry["interleaved_conversations"] = tracker_interleavings(
                    run.config.tracker_url or "", set(entry.pop("rasa_senders")))
                figures[label] = entry
        finally:
            drop()
        print(label, json.dumps(figures[label]), flush=True)
    return figures


def write_report(figures: dict, path: Path) -> None:
    from tools.evaluation.understanding import machine_description

    one, two, kill = figures["one_rasa"], figures["two_rasa"], figures["two_rasa_sigkill"]
    lines = [
        "# Scale-out: several Rasa processes on PostgreSQL and Redis",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine_description()} with "
        "`.venv/bin/python -m tools bench-scale` (PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, "
        "one action server, two API workers, every store and tracker write on PostgreSQL, Rasa's Redis "
        "lock store on). "
        f"{figures['senders']} concurrent senders, {figures['turns_per_sender']} messages each, two in "
        "flight per conversation.",
        "",
        "| Rasa processes | messages | p50 ms | p99 ms | messages/s |",
        "|---|---|---|---|---|",
        f"| 1 | {one['messages']} | {one['p50_ms']} | {one['p99_ms']} | {one['throughput_msg_s']} |",
        f"| 2 | {two['messages']} | {two['p50_ms']} | {two['p99_ms']} | {two['throughput_msg_s']} |",
        "",
        "## SIGKILL of one Rasa process during the load",
        "",
        "The second Rasa process is killed (SIGKILL) after a third of the messages are answered.",
        "",
        "| sent | stored | answered | stored twice | answered twice | lost | escalated (assistant unavailable) | "
        "client retries | interleaved conversations |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {kill['sent']} | {kill['stored']} | {kill['answered_to_client']} | {kill['stored_twice']} | "
        f"{kill['answered_twice']} | {kill['lost']} | {kill['escalated_assistant_unavailable']} | "
        f"{kill['client_retries']} | {kill['interleaved_conversations']} |",
        "",
        f"Without the kill: interleaved conversations {one['interleaved_conversations']} (one process) and "
        f"{two['interleaved_conversations']} (two); lost {one['lost']} and {two['lost']}.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(pg_admin_url: str = DEFAULT_PG_ADMIN, redis_url: str = DEFAULT_REDIS) -> int:
    figures = measure(pg_admin_url=pg_admin_url, redis_url=redis_url)
    out = PROJECT_ROOT / "results" / "scale.md"
    existing = out.read_text(encoding="utf-8") if out.exists() else ""
    write_report(figures, out)
    marker = "\n## Approval to the new model answering"
    if marker in existing:  # the model-swap figure is measured by its own command
        with out.open("a", encoding="utf-8") as handle:
            handle.write(existing[existing.index(marker):])
    (PROJECT_ROOT / "results" / "scale.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")
    return 0
