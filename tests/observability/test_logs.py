"""Structured logs: one event per message with the request id and no citizen text, the request
id carried from the API's X-Request-ID through Rasa's metadata into the action server."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.outcome_action as outcome_action
from actions.small_talk import ActionSmallTalk
from bot.core.turns import REQUEST_ID_KEY
from bot.observability.logs import accept_request_id, bound_request_id, setup_logging
from bot.observability.metrics import scrape
from bot.runtime import Runtime
from bot.store.db import upgrade_database
from tests.observability.support import metrics_client, post_message, sample, settings_for

SECRET_TEXT = "my card number is 4111 1111 1111 1111 and I live at 7 Elm Street"
SENDER = "citizen-phone-+4915112345678"


@pytest.fixture
def log_stream(restored_logging: None) -> io.StringIO:
    """The process's logging set up as production's (JSON) into a buffer (put back afterwards)."""
    stream = io.StringIO()
    setup_logging("json", "INFO", stream=stream)
    return stream


def _records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('logs') / 'crm.db'}"
    upgrade_database(url)
    return url


def test_one_json_event_per_message_with_the_request_id_and_without_citizen_text(sqlite_url, log_stream) -> None:
    with metrics_client(sqlite_url) as (client, rasa):
        response = post_message(client, SECRET_TEXT, sender=SENDER, headers={"X-Request-ID": "req-4711.a"})
        unnamed = post_message(client, "How do I get rid of an old sofa?", sender=SENDER)
    assert response.headers["X-Request-ID"] == "req-4711.a"  # back to the caller
    assert rasa.metadata[0][REQUEST_ID_KEY] == "req-4711.a"  # on to Rasa, beside the message id
    generated = unnamed.headers["X-Request-ID"]
    assert len(generated) == 32 and rasa.metadata[1][REQUEST_ID_KEY] == generated

    records = _records(log_stream)
    events = [r for r in records if r.get("event") == "message_handled"]
    assert len(events) == 2
    first = events[0]
    assert first["request_id"] == "req-4711.a" and first["level"] == "INFO"
    assert first["message_id"] == response.json()["message_id"]
    assert (first["channel"], first["outcome"], first["handling"]) == ("web", "escalated", "escalated")
    assert first["ticket"] == response.json()["handling"]["ticket"]["id"]
    assert set(first["durations_ms"]) == {"store", "rasa", "total"}
    assert events[1]["request_id"] == generated and events[1]["outcome"] == "answered"
    output = log_stream.getvalue()
    assert "4111" not in output and "Elm Street" not in output and "sofa" not in output and SENDER not in output


@pytest.mark.parametrize("supplied", ["has space", "line\nbreak", "x" * 129, "", "quote\"d"])
def test_an_insane_request_id_is_replaced(supplied: str) -> None:
    replaced = accept_request_id(supplied)
    assert replaced != supplied and len(replaced) == 32


def test_text_format_shows_the_request_id_too(restored_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("text", "info", stream=stream)
    with bound_request_id("req-text-1"):
        logging.getLogger("bot.test").info("hello")
    logging.getLogger("bot.test").debug("not at info")
    assert "[req-text-1]: hello" in stream.getvalue() and "not at info" not in stream.getvalue()
    with pytest.raises(ValueError):
        setup_logging("xml")


def test_the_action_binds_the_request_id_from_the_metadata_and_is_timed(sqlite_url, log_stream, monkeypatch) -> None:
    runtime = Runtime(settings_for(sqlite_url))
    monkeypatch.setattr(outcome_action, "action_server_runtime", lambda: runtime)
    tracker = Tracker.from_dict({"sender_id": "rasa-sender-1", "latest_message": {
        "text": SECRET_TEXT, "intent": {"name": "greet", "confidence": 0.99},
        "metadata": {REQUEST_ID_KEY: "req-from-api-9"}}})
    before = sample(scrape().decode(), "crm_stage_seconds_count", stage="actions")

    dispatcher = CollectingDispatcher()
    asyncio.run(ActionSmallTalk().run(dispatcher, tracker, {}))

    assert dispatcher.messages and dispatcher.messages[0]["response"] == "utter_greet"
    assert sample(scrape().decode(), "crm_stage_seconds_count", stage="actions") == before + 1
    events = [r for r in _records(log_stream) if r.get("event") == "action_handled"]
    assert len(events) == 1
    assert events[0]["request_id"] == "req-from-api-9"
    assert events[0]["action"] == "action_small_talk" and events[0]["outcome"] == "done"
    assert "4111" not in log_stream.getvalue()
