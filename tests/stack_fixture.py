"""The running assistant for end-to-end tests (shared by every test package, so a
full run starts one stack): a trained model, Rasa, the action
server and the API on free loopback ports, with a throw-away SQLite store.

Started once per test session; `make test` trains the model beforehand, so
this only trains when run on its own after an input changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.stack import Stack, StackConfig
from bot.store.db import session_factory
from bot.training import train


@dataclass
class RunningAssistant:
    config: StackConfig
    client: httpx.Client

    @property
    def database_url(self) -> str:
        return self.config.database_url

    def post(self, body: object | None = None, *, raw: bytes | None = None, headers: dict | None = None,
             api_key: str | None = "default") -> httpx.Response:
        all_headers = {"Content-Type": "application/json"}
        if api_key == "default":
            all_headers["X-API-Key"] = self.config.api_key
        elif api_key is not None:
            all_headers["X-API-Key"] = api_key
        all_headers.update(headers or {})
        if raw is not None:
            return self.client.post(f"{self.config.api_url}/api/v1/messages", content=raw, headers=all_headers)
        return self.client.post(f"{self.config.api_url}/api/v1/messages", json=body, headers=all_headers)

    def say(self, sender: str, text: str, channel: str = "web", **extra: object) -> dict:
        response = self.post({"channel": channel, "sender": sender, "text": text, **extra})
        assert response.status_code == 200, response.text
        return response.json()

    def sessions(self):
        return session_factory(self.database_url)


@pytest.fixture(scope="session")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAssistant]:
    work: Path = tmp_path_factory.mktemp("stack")
    config = StackConfig.throwaway(train(quiet=True), work)
    with Stack(config), httpx.Client(timeout=60.0) as client:
        yield RunningAssistant(config, client)


@pytest.fixture
def sender() -> str:
    """A new citizen for each test, so tickets never leak between tests."""
    return f"citizen-{uuid.uuid4().hex[:10]}"
