"""Two Rasa processes on PostgreSQL and Redis, sixteen citizens at once, one process killed.

The promise of the scale-out: a conversation's turns never interleave (Rasa's Redis
lock store orders them across processes), every message sent is stored once and
answered once, and when one Rasa process dies (SIGKILL, no goodbye) the messages it
held are escalated and the rest go to the other process: none is lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.training import train
from tools.bench.scale import ScaleRun, conversation_load, store_counts, tracker_interleavings

pytestmark = pytest.mark.e2e

SENDERS = 16
TURNS = 4


@pytest.fixture(scope="module")
def two_rasa(tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[str], str],
             redis_url: str):
    database_url = new_database("postgresql")
    with ScaleRun(model=train(quiet=True), work=tmp_path_factory.mktemp("scale"), database_url=database_url,
                  redis_url=redis_url, rasa_processes=2) as run:
        yield run


def test_two_rasa_processes_share_postgresql_and_keep_each_conversation_in_order(two_rasa: ScaleRun) -> None:
    config = two_rasa.config
    assert len(config.rasa_urls) == 2
    assert config.tracker_url and config.tracker_url.startswith("postgresql://")
    results, _wall = conversation_load(config.api_url, config.api_key, senders=SENDERS, turns=TURNS)
    counts = store_counts(config.database_url, results)
    public_ids = set(counts.pop("rasa_senders"))
    assert counts["sent"] == counts["stored"] == counts["stored_with_reply"] == SENDERS * TURNS, counts
    assert counts["answered_to_client"] == counts["sent"], counts
    assert counts["stored_twice"] == counts["answered_twice"] == counts["lost"] == 0, counts
    assert counts["escalated_assistant_unavailable"] == 0, counts
    # Both processes wrote into the one tracker store, and no conversation interleaved.
    assert len(public_ids) == SENDERS
    assert tracker_interleavings(config.tracker_url, public_ids) == 0


def test_a_killed_rasa_process_loses_nothing_and_answers_nothing_twice(two_rasa: ScaleRun) -> None:
    config = two_rasa.config
    killed = []

    def kill_after_a_third(done: int) -> None:
        if not killed and done >= SENDERS * TURNS // 3:
            killed.append(done)
            two_rasa.kill_rasa("rasa-2")

    results, _wall = conversation_load(config.api_url, config.api_key, senders=SENDERS, turns=TURNS,
                                       during=kill_after_a_third)
    assert killed, "the load finished before the kill"
    counts = store_counts(config.database_url, results)
    public_ids = set(counts.pop("rasa_senders"))
    assert counts["sent"] == counts["stored"] == counts["stored_with_reply"] == SENDERS * TURNS, counts
    assert counts["answered_to_client"] == counts["sent"], counts
    assert counts["stored_twice"] == counts["answered_twice"] == counts["lost"] == 0, counts
    # Only what the killed process held at that moment (at most two per conversation) is escalated.
    assert counts["escalated_assistant_unavailable"] <= 2 * SENDERS, counts
    assert tracker_interleavings(config.tracker_url, public_ids) == 0
    # The survivor carries on alone.
    after, _ = conversation_load(config.api_url, config.api_key, senders=4, turns=2)
    assert all(r.status == 200 and r.replies for r in after)
    assert store_counts(config.database_url, after)["escalated_assistant_unavailable"] == 0


def test_rasa_processes_get_their_stores_from_the_settings(tmp_path: Path) -> None:
    from bot.settings import Settings
    from bot.stack import rasa_server_command

    settings = Settings(api_keys="k" * 20, database_url="postgresql+psycopg://crm:s3cret@db:5432/crm",
                        redis_url="redis://:p%40ss@cache:6380/3", action_server_url="http://actions:5055")
    command, env = rasa_server_command(settings, port=5006, model=tmp_path, host="0.0.0.0")
    assert command[command.index("--port") + 1] == "5006"
    assert env["RASA_TRACKER_URL"] == "postgresql://crm:s3cret@db:5432/crm"
    assert env["RASA_ACTION_ENDPOINT"] == "http://actions:5055/webhook"
    assert int(env["TICKET_LOCK_LIFETIME"]) < settings.rasa_timeout_seconds
    assert (env["RASA_LOCK_STORE"], env["RASA_REDIS_HOST"], env["RASA_REDIS_PORT"], env["RASA_REDIS_DB"],
            env["RASA_REDIS_PASSWORD"]) == ("redis", "cache", "6380", "3", "p@ss")
    sqlite = Settings(api_keys="k" * 20, database_url=f"sqlite:///{tmp_path / 'crm.db'}")
    _command, env = rasa_server_command(sqlite, port=5005, model=tmp_path, host="127.0.0.1")
    assert env["RASA_TRACKER_URL"] == f"sqlite:///{tmp_path / 'rasa_tracker.db'}"
    assert env["RASA_LOCK_STORE"] == "in_memory"
    assert "TF_NUM_INTRAOP_THREADS" not in env or env["TF_NUM_INTRAOP_THREADS"] == os.environ["TF_NUM_INTRAOP_THREADS"]


def test_several_rasa_processes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.stack import thread_env

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.delenv("CRM_ENCODER_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    assert thread_env(1) == {}
    assert thread_env(2)["CRM_ENCODER_THREADS"] == thread_env(2)["TF_NUM_INTRAOP_THREADS"] == "2"
    assert thread_env(8)["CRM_ENCODER_THREADS"] == "1"
    monkeypatch.setenv("CRM_ENCODER_THREADS", "3")
    assert "CRM_ENCODER_THREADS" not in thread_env(2)


def test_several_rasa_processes_without_redis_fail_fast() -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    with pytest.raises(ValidationError, match="CRM_REDIS_URL"):
        Settings(api_keys="k" * 20, rasa_processes=2)
    with pytest.raises(ValidationError, match="CRM_RASA_LOCK_LIFETIME_SECONDS"):
        Settings(api_keys="k" * 20, redis_url="redis://127.0.0.1:6379/0", rasa_timeout_seconds=10,
                 rasa_lock_lifetime_seconds=10)
