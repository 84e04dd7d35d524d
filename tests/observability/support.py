"""An API on a real store with a stand-in for Rasa, and reading a /metrics scrape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.api.app import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stack import free_port
from tests.console.insights_seed import FakeRasa

API_KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}
LOCAL = ("127.0.0.1", 50000)


class RecordingRasa(FakeRasa):
    """Answers sofas from the KB and escalates the rest (as the action server would), and keeps
    the metadata of every turn it was sent."""

    def __init__(self, db_url: str, settings: Any = None) -> None:
        super().__init__(db_url, settings)
        self.metadata: list[dict[str, Any]] = []

    def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.metadata.append(dict(metadata))
        return super().send(sender=sender, text=text, metadata=metadata)


def settings_for(db_url: str, **overrides: Any) -> Settings:
    # Ports nobody listens on: the health probes find Rasa and the action server down at once.
    values: dict[str, Any] = {"rasa_url": f"http://127.0.0.1:{free_port()}", "action_server_port": free_port(),
                              **overrides}
    return Settings(_env_file=None, api_keys=API_KEY, database_url=db_url, **values)


@contextmanager
def metrics_client(db_url: str, *, client: tuple[str, int] = LOCAL, **overrides: Any) -> Iterator[tuple[TestClient, RecordingRasa]]:
    settings = settings_for(db_url, **overrides)
    rasa = RecordingRasa(db_url, settings)
    with TestClient(create_app(Runtime(settings, rasa=rasa)), client=client, raise_server_exceptions=False) as test_client:
        yield test_client, rasa


def post_message(client: TestClient, text: str, sender: str = "s1", headers: dict[str, str] | None = None):
    return client.post("/api/v1/messages", headers={**AUTH, **(headers or {})},
                       json={"channel": "web", "sender": sender, "text": text})


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def sample_names(text: str) -> set[str]:
    """Every name a query may use: the samples' and, for families without samples yet, the family's
    with the suffixes its type exposes."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
                "summary": ("_count", "_sum", "")}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names
