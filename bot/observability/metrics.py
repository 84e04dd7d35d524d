"""The Prometheus metrics every process writes, and the one scrape that reads them all.

Several processes write (API workers, channel workers, the deliveries worker, the action
server), and one scrape of the API must show them all: with ``PROMETHEUS_MULTIPROC_DIR``
set (``bot run`` sets it for every process it starts) prometheus-client keeps each process's
values in memory-mapped files in that directory and ``scrape`` adds them up. Without it
(one process, a test) the values live in this process and ``scrape`` reads them directly.
prometheus-client picks the mode when it is first imported, so the variable must be in the
environment before the process starts.

Every metric here has labels, so defining it creates no value and, in multiprocess mode,
no file: nothing happens at import time beyond the definitions. Label values come from
closed vocabularies (channels the settings accept, handling kinds, stages), never from
citizens, so the number of series stays small.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The stages of a message's path whose time is measured (docs/observability.md).
STORE, RASA, ACTIONS, DELIVERY = "store", "rasa", "actions", "delivery"
STAGES = (STORE, RASA, ACTIONS, DELIVERY)

# From a millisecond store write to Rasa's 30-second timeout.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MESSAGES = Counter(
    "crm_messages",
    "Inbound citizen messages by channel and outcome (answered, asked, escalated, other, duplicate) "
    "and the stored handling.",
    ["channel", "outcome", "handling"],
)
STAGE_SECONDS = Histogram(
    "crm_stage_seconds",
    "Time per stage: store and rasa per message (summed over its transactions and calls; rasa "
    "includes the actions), actions per action run, delivery per attempt.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
DELIVERIES = Counter(
    "crm_deliveries",
    "Delivery attempts of outbound messages by channel and result "
    "(sent, retrying, failed, settled_sent, settled_failed).",
    ["channel", "result"],
)
DELIVERY_RETRIES = Counter(
    "crm_delivery_retries",
    "Delivery attempts after the first of a message (retries after a failure or a dead worker's lease).",
    ["channel"],
)

_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,47}")


def label(value: str | None) -> str:
    """A label value from a closed vocabulary; anything else is folded into "other" so that a
    bug or an unexpected value can never create series without bound."""
    if value is None:
        return "none"
    return value if _LABEL.fullmatch(value) else "other"


# The stage times of the message being handled in this context (None outside a message).
_turn_timings: ContextVar[dict[str, float] | None] = ContextVar("crm_turn_timings", default=None)


def observe_stage(stage: str, seconds: float) -> None:
    """Inside ``measuring_turn`` the time is added to the message's total for the stage (one
    observation per message at its end); outside it, observed at once."""
    timings = _turn_timings.get()
    if timings is None:
        STAGE_SECONDS.labels(stage).observe(seconds)
    else:
        timings[stage] = timings.get(stage, 0.0) + seconds


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Time the block as ``stage``, whether it succeeds or raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        observe_stage(stage, time.perf_counter() - start)


@contextmanager
def measuring_turn() -> Iterator[dict[str, float]]:
    """Collect the stage times of one message; yields them (seconds by stage) for its log event.

    The dict is shared with threads started from this context (``asyncio.to_thread`` copies
    the context, not the dict), so work handed to a thread still counts for the message."""
    timings: dict[str, float] = {}
    token = _turn_timings.set(timings)
    try:
        yield timings
    finally:
        _turn_timings.reset(token)
        for stage, seconds in timings.items():
            STAGE_SECONDS.labels(stage).observe(seconds)


def count_message(channel: str, outcome: str, handling: str | None) -> None:
    MESSAGES.labels(label(channel), label(outcome), label(handling)).inc()


def count_delivery(channel: str, result: str, *, retry: bool = False) -> None:
    """``retry``: this attempt was not the message's first."""
    DELIVERIES.labels(label(channel), label(result)).inc()
    if retry:
        DELIVERY_RETRIES.labels(label(channel)).inc()


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class _ThisProcess:
    """The default registry as one collector, so it can sit beside scrape-time collectors."""

    def collect(self):
        return REGISTRY.collect()


def scrape(collectors: Iterable[Collector] = (), *, multiproc_dir: Path | None = None) -> bytes:
    """The Prometheus text exposition of every process's metrics plus ``collectors`` (read now).

    ``multiproc_dir``: the directory of multiprocess mode; default from the environment."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiproc_dir or multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
