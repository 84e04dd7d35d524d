"""The KB learning loop end to end: approve a KB proposal, and time until the new answer comes back.

A throwaway stack (Rasa with its token-protected model API, the action server, the API and
the trainer) runs on a copy of the KB. Senders post a known KB question through the API
(``--senders`` threads, ``--pause`` seconds apart), each message from a new citizen, while a
probe asks the proposal's question every half second. The proposal is approved with the console's own service function (the
same unit of work as the console's Approve button); the trainer trains and swaps the model.
The figure is the time from the approval's commit to the first probe answered with the new
entry. Every message sent must be stored and answered, none escalated as
``assistant_unavailable``. One training: a few minutes on two cores.

    .venv/bin/python -m tools bench-model-swap
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bot.settings import PROJECT_ROOT

QUESTION = "When does the city's compost fair take place?"
# Rasa caches trained components by their inputs (.rasa/cache): the same change a second time
# would be packaged, not trained. A word of its own per run makes every run a real training.
PLACES = ("riverside", "harbour", "old town", "north park", "market square", "east gate", "station", "castle hill")
ANSWER = "The compost fair is on the first Saturday of May at the recycling depot, 10:00 to 16:00."
ENTRY_ID = "waste-compost-fair-swap"
KNOWN = ("When is my bin collected?", "How do I get rid of an old sofa or other bulky items?")


@dataclass
class SwapResult:
    approval_to_new_answer_seconds: float | None = None
    training_seconds: float | None = None
    sent: int = 0
    ok_responses: int = 0
    stored: int = 0
    answered: int = 0
    unavailable: int = 0
    kinds: Counter = field(default_factory=Counter)
    build_status: str | None = None
    build_error: str | None = None
    processes: dict[str, str] = field(default_factory=dict)
    old_model: str = ""
    new_model: str | None = None
    token_in_logs: list[str] = field(default_factory=list)
    # API response times over the whole run: the longest is a message that waited out a model load.
    median_seconds: float = 0.0
    longest_seconds: float = 0.0


class _Traffic:
    """Senders posting through the API until stopped; every response is counted."""

    def __init__(self, api_url: str, api_key: str, *, senders: int, pause: float, question: str) -> None:
        self.api_url, self.api_key, self.pause, self.question = api_url, api_key, pause, question
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = self.ok = 0
        self.kinds: Counter = Counter()
        self.latencies: list[float] = []
        self.first_new_answer: float | None = None
        self.threads = [threading.Thread(target=self._send_known, args=(i,), daemon=True) for i in range(senders)]
        self.threads.append(threading.Thread(target=self._probe, daemon=True))

    def _post(self, client: httpx.Client, text: str) -> dict | None:
        sender = f"swap-{uuid.uuid4().hex[:12]}"
        with self.lock:
            self.sent += 1
        started = time.perf_counter()
        try:
            response = client.post(f"{self.api_url}/api/v1/messages", headers={"X-API-Key": self.api_key},
                                   json={"channel": "web", "sender": sender, "text": text})
            with self.lock:
                self.latencies.append(time.perf_counter() - started)
        except httpx.HTTPError as exc:
            with self.lock:
                self.kinds[f"error:{type(exc).__name__}"] += 1
            return None
        with self.lock:
            if response.status_code != 200:
                self.kinds[f"http:{response.status_code}"] += 1
                return None
            self.ok += 1
            handling = response.json()["handling"]
            self.kinds[handling["kind"]] += 1
            return handling

    def _send_known(self, worker: int) -> None:
        with httpx.Client(timeout=120.0) as client:
            n = worker
            while not self.stop.is_set():
                self._post(client, KNOWN[n % len(KNOWN)])
                n += 1
                self.stop.wait(self.pause)

    def _probe(self) -> None:
        with httpx.Client(timeout=120.0) as client:
            while not self.stop.is_set():
                handling = self._post(client, self.question)
                if handling and handling.get("kb_entry_id") == ENTRY_ID and self.first_new_answer is None:
                    self.first_new_answer = time.monotonic()
                self.stop.wait(0.5)

    def __enter__(self) -> "_Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(180)


def _wait(condition, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def run_swap(work: Path, *, senders: int = 2, pause: float = 0.1, timeout: float = 1500.0,
             after_seconds: float = 5.0) -> SwapResult:
    """Start the stack in ``work``, approve one proposal under traffic, and count."""
    from bot.console import proposals
    from bot.console.insights_models import NEW_ENTRY
    from bot.modelbuilds.models import ModelBuild, ModelSwitch
    from bot.stack import Stack, StackConfig
    from bot.store.db import session_factory
    from bot.store.models import Message
    from bot.store.schema import load_models
    from bot.tickets.models import Ticket
    from bot.training import train

    load_models()
    kb_dir = work / "knowledge_base"
    shutil.copytree(PROJECT_ROOT / "knowledge_base", kb_dir)
    model = train(kb_dir=kb_dir, quiet=True)  # the project's model: the copy has the same content
    config = StackConfig.throwaway(
        model, work, kb_dir=kb_dir, trainer=True,
        extra_env={"CRM_MODELS_DIR": str(work / "models"), "CRM_TRAINER_POLL_SECONDS": "0.5"},
    )
    sessions = session_factory(config.database_url)
    result = SwapResult(old_model=model.name)
    with Stack(config) as stack:
        token = stack.rasa_token
        # The trainer records what Rasa runs once it answers: then the loop is ready.
        def switches() -> int:
            with sessions() as session:  # closed at once: on SQLite even a read holds the write lock
                return session.scalar(select(func.count()).select_from(ModelSwitch)) or 0

        _wait(switches, 300, "the trainer's start")
        place = f"{PLACES[uuid.uuid4().int % len(PLACES)]} {uuid.uuid4().hex[:4]}"
        question = QUESTION.replace("compost fair", f"compost fair at {place}")
        with _Traffic(config.api_url, config.api_key, senders=senders, pause=pause, question=question) as traffic:
            time.sleep(3)  # traffic on the old model first
            with sessions.begin() as session:
                proposal = proposals.propose(session, kind=NEW_ENTRY, question=question, answer=ANSWER,
                                             department="waste", proposed_by="bench")
                proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="bench", entry_id=ENTRY_ID)
            approved = time.monotonic()
            _wait(lambda: traffic.first_new_answer, timeout, "the new answer")
            result.approval_to_new_answer_seconds = traffic.first_new_answer - approved
            time.sleep(after_seconds)  # and on the new model after
        with sessions() as session:
            build = session.scalars(select(ModelBuild).order_by(ModelBuild.id.desc())).first()
            if build is not None:
                result.build_status, result.build_error, result.new_model = build.status, build.error, build.model_version
                if build.started_at and build.finished_at:
                    result.training_seconds = (build.finished_at - build.started_at).total_seconds()
            switch = session.scalars(select(ModelSwitch).order_by(ModelSwitch.id.desc())).first()
            result.processes = dict(switch.processes) if switch else {}
            inbound = select(Message).where(Message.direction == "in").subquery()
            result.stored = session.scalar(select(func.count()).select_from(inbound)) or 0
            replied = select(Message.reply_to_id).where(Message.direction == "out", Message.reply_to_id.is_not(None))
            result.answered = session.scalar(
                select(func.count()).select_from(Message).where(Message.direction == "in", Message.id.in_(replied))
            ) or 0
            result.unavailable = session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.reason == "assistant_unavailable")
            ) or 0
    result.sent, result.ok_responses, result.kinds = traffic.sent, traffic.ok, traffic.kinds
    if traffic.latencies:
        result.median_seconds = sorted(traffic.latencies)[len(traffic.latencies) // 2]
        result.longest_seconds = max(traffic.latencies)
    result.token_in_logs = [p.name for p in (work / "log").iterdir() if p.is_file() and token in p.read_text(errors="replace")]
    return result


def report(result: SwapResult) -> str:
    seconds = result.approval_to_new_answer_seconds
    return "\n".join([
        f"approval -> new answer through the API: {seconds:.1f} s" if seconds is not None else "new answer: never",
        f"training + load (build started -> loaded): {result.training_seconds or 0:.1f} s; build {result.build_status}"
        + (f" ({result.build_error})" if result.build_error else ""),
        f"model {result.old_model} -> {result.new_model}; processes now: {result.processes}",
        f"messages sent {result.sent}, HTTP 200 {result.ok_responses}, stored {result.stored}, answered {result.answered}, "
        f"escalated as assistant_unavailable {result.unavailable}",
        f"handling: {dict(result.kinds)}",
        f"API response time: median {result.median_seconds:.2f} s, longest {result.longest_seconds:.1f} s "
        "(a message that arrived during the load waits for it)",
        f"token found in log files: {result.token_in_logs or 'none'}",
    ])


def main(*, senders: int = 2, pause: float = 0.2) -> int:
    with tempfile.TemporaryDirectory(prefix="crm-swap-") as tmp:
        result = run_swap(Path(tmp), senders=senders, pause=pause)
    print(report(result))
    ok = (result.approval_to_new_answer_seconds is not None and result.sent == result.ok_responses == result.stored
          == result.answered and result.unavailable == 0 and not result.token_in_logs)
    return 0 if ok else 1
