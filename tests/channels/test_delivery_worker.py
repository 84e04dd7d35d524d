"""`python -m bot deliveries` as the real process, and `python -m bot run` starting it.

No real channel exists on this branch, so a test adapter (tests/channels/fake_adapter.py)
is put in the registry; it sends over HTTP to a local stand-in that fails once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bot.channels import registry
from bot.outbox.delivery import queue_outbound
from bot.settings import PROJECT_ROOT, get_settings
from bot.stack import Stack, StackConfig
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.models import Message
from tests.channels import fake_adapter

API_KEY = "test-key-0123456789abcdef"

# Runs the real command with the test adapter standing in for Telegram's.
WORKER = """
import sys
from bot.channels import registry
from tests.channels import fake_adapter
registry.adapter = lambda name: fake_adapter.ADAPTER
from bot.cli import main
sys.exit(main(["deliveries"]))
"""


@pytest.fixture
def stand_in(httpserver: HTTPServer) -> HTTPServer:
    """A local HTTP endpoint playing the provider: answers 502 to the first call, then accepts."""
    httpserver.expect_oneshot_request("/send", method="POST").respond_with_data(status=502)
    httpserver.expect_request("/send", method="POST").respond_with_handler(
        lambda request: Response(json.dumps({"external_id": f"ext-{json.loads(request.get_data())['id']}"}),
                                 content_type="application/json")
    )
    return httpserver


def _received(server: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _response in server.log]


def _queue(db_url: str, texts: list[str]) -> list[int]:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "telegram", "4242")
        return [queue_outbound(session, identity=identity, text=t, author="agent:ana").id for t in texts]


def test_deliveries_worker_process_delivers_and_retries(db_url: str, stand_in: HTTPServer, tmp_path: Path) -> None:
    ids = _queue(db_url, ["Your bin will be collected on Monday.", "Sorry for the wait."])
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "CRM_DATABASE_URL": db_url,
        "CRM_API_KEYS": API_KEY,
        "CRM_TELEGRAM_BOT_TOKEN": "123456:test-token",
        "CRM_DELIVERY_BACKOFF_SECONDS": "0.3",
        "FAKE_CHANNEL_URL": stand_in.url_for("/send"),
    }
    log = open(tmp_path / "deliveries.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "deliveries.log").read_text()
            with session_factory(db_url)() as session:
                if all(session.get(Message, i).delivery_status == "sent" for i in ids):
                    break
            time.sleep(0.2)
        else:
            pytest.fail("not delivered in time:\n" + (tmp_path / "deliveries.log").read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # stops cleanly between passes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    with session_factory(db_url)() as session:
        first, second = (session.get(Message, i) for i in ids)
        assert (first.delivery_attempts, first.external_id, first.delivery_error) == (2, f"ext-{ids[0]}", None)
        assert (second.delivery_attempts, second.external_id) == (1, f"ext-{ids[1]}")
    # The failed message waits out its backoff; the next one is not held up behind it.
    received = _received(stand_in)
    assert [(r["id"], r["attempt"]) for r in received] == [(ids[0], 1), (ids[1], 1), (ids[0], 2)]
    assert received[0] == {"id": ids[0], "address": "4242", "text": "Your bin will be collected on Monday.", "attempt": 1}


@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`python -m bot run` with training and the process stack replaced by recorders."""
    import bot.stack
    import bot.training

    started: list[StackConfig] = []

    class RecordingStack:
        def __init__(self, config: StackConfig) -> None:
            started.append(config)

        def start(self) -> "RecordingStack":
            return self

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(bot.training, "train", lambda **_kw: tmp_path / "model.tar.gz")
    monkeypatch.setattr(bot.stack, "Stack", RecordingStack)
    monkeypatch.setattr(registry, "adapter", lambda _name: fake_adapter.ADAPTER)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")
    monkeypatch.setenv("CRM_API_KEYS", API_KEY)
    monkeypatch.setenv("FAKE_CHANNEL_URL", "http://127.0.0.1:9/unused")
    get_settings.cache_clear()
    yield started, monkeypatch
    get_settings.cache_clear()


def test_run_starts_delivery_and_channel_workers_when_a_channel_is_on(run_env) -> None:
    from bot.cli import main

    started, monkeypatch = run_env
    monkeypatch.setenv("CRM_TELEGRAM_BOT_TOKEN", "123456:test-token")
    get_settings.cache_clear()
    assert main(["run"]) == 0
    (config,) = started
    assert config.deliveries is True and config.channel_workers == ["telegram"]


def test_run_starts_no_delivery_worker_without_channels(run_env) -> None:
    from bot.cli import main

    started, monkeypatch = run_env
    for name in ("CRM_TELEGRAM_BOT_TOKEN", "CRM_WHATSAPP_ACCESS_TOKEN", "CRM_IMAP_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run"]) == 0
    (config,) = started
    assert config.deliveries is False and config.channel_workers == []


def test_stack_spawns_the_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(Stack, "_spawn", lambda self, name, command, env: spawned.append((name, command[1:])))
    monkeypatch.setattr(Stack, "_wait", lambda self, url, deadline: None)
    config = StackConfig(
        model=tmp_path / "model.tar.gz", database_url="sqlite://", api_key=API_KEY, log_dir=tmp_path,
        tracker_db=tmp_path / "tracker.db", channel_workers=["telegram", "email"], deliveries=True,
    )
    Stack(config).start()
    workers = {name: command for name, command in spawned if name not in ("actions", "rasa", "api")}
    assert workers == {
        "channel-telegram": ["-m", "bot", "channel", "telegram"],
        "channel-email": ["-m", "bot", "channel", "email"],
        "deliveries": ["-m", "bot", "deliveries"],
    }
