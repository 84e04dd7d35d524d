"""A real API app on a real store (SQLite or PostgreSQL) whose Rasa is down: every message is
kept and escalated to a ticket, so answers carry ticket IDs that must never cross senders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stack import free_port

API_KEY = "test-key-0123456789abcdef"
OTHER_API_KEY = "other-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}


@contextmanager
def api_client(db_url: str, **overrides: object) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        api_keys=f"{API_KEY},{OTHER_API_KEY}",
        database_url=db_url,
        rasa_url=f"http://127.0.0.1:{free_port()}",
        rasa_timeout_seconds=2,
        **overrides,
    )
    with TestClient(create_app(Runtime(settings)), raise_server_exceptions=False) as client:
        yield client


def post_raw(client: TestClient, body: bytes, api_key: str = API_KEY):
    return client.post(
        "/api/v1/messages", content=body, headers={"X-API-Key": api_key, "Content-Type": "application/json"}
    )


def post(client: TestClient, payload: object, api_key: str = API_KEY):
    return post_raw(client, json.dumps(payload).encode(), api_key)


def error_of(response) -> dict:
    """The documented error shape, and nothing else."""
    body = response.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str), body
    return body
