"""Webhook mode: the API (real HTTP, uvicorn) receives Telegram's POSTs; the secret
token is checked on every request before anything is read or stored."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import func, select

from bot.api.app import create_app
from bot.channels.registry import worker_channels
from bot.channels.telegram.webhook import WEBHOOK_PATH
from bot.runtime import Runtime
from bot.stack import free_port
from bot.store.db import session_factory
from bot.store.models import Message
from tests.channels.telegram.choice_support import OFFERED, ChoiceRasa
from tests.channels.telegram.support import FakeRasa, store_fails, telegram_settings
from tools.local_server import serve_in_thread

SECRET = "webhook-secret-" + "k" * 20


def served_api(settings, rasa):
    """The API app served by uvicorn in a thread, on the port its settings name."""
    return serve_in_thread(create_app(Runtime(settings, rasa=rasa)), port=settings.api_port, name="telegram-webhook-api")


def _webhook_settings(db_url, standin, **kw):
    port = free_port()
    return telegram_settings(db_url, standin, telegram_mode="webhook", api_port=port,
                             telegram_webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                             telegram_webhook_secret=SECRET, **kw)


def _wait_registered(standin, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not standin.webhook.get("url"):
        assert time.monotonic() < deadline, "setWebhook was never called"
        time.sleep(0.05)
    time.sleep(0.1)  # the application starts right after setWebhook returns


def _inbound_count(db_url: str) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))


@pytest.fixture
def served(db_url, standin):
    rasa = FakeRasa(db_url)
    settings = _webhook_settings(db_url, standin)
    with served_api(settings, rasa):
        _wait_registered(standin)
        yield settings, rasa


def test_webhook_is_registered_with_the_secret_and_no_worker_is_needed(served, standin):
    settings, _rasa = served
    assert standin.webhook == {"url": settings.telegram_webhook_url, "secret_token": SECRET,
                               "allowed_updates": ["message", "edited_message", "callback_query"]}
    assert worker_channels(settings) == []


def test_requests_without_the_right_secret_are_refused_unprocessed(served, standin, db_url):
    _settings, rasa = served
    for secret in (None, "", "wrong-secret", SECRET[:-1], SECRET + "x"):
        response = standin.post_to_webhook(standin.updates.text(61, "forged"), secret=secret)
        assert response.status_code == 403, secret
    time.sleep(0.3)
    assert _inbound_count(db_url) == 0 and rasa.seen == [] and standin.sent == []
    assert standin.post_to_webhook(standin.updates.text(61, "genuine")).status_code == 200
    (reply,) = standin.wait_for_sent(61)
    assert reply.text == "echo: genuine" and rasa.texts() == ["genuine"]


def test_unreadable_update_with_the_right_secret_is_a_400(served, standin):
    url = standin.webhook["url"]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert httpx.post(url, content=b"{not json", headers=headers).status_code == 400
    assert httpx.post(url, content=b"", headers=headers).status_code == 400


def test_webhook_updates_of_one_chat_are_answered_in_order(served, standin):
    """Each call is answered after its update is handled (so a 200 never loses one); calls
    for other chats run side by side, as Telegram makes them over several connections."""
    _settings, rasa = served
    rasa.delays["one"] = 0.8

    def chat_62() -> None:
        for text in ("one", "two", "three"):
            assert standin.post_to_webhook(standin.updates.text(62, text)).status_code == 200

    first = threading.Thread(target=chat_62)
    first.start()
    time.sleep(0.2)  # "one" is being handled
    assert standin.post_to_webhook(standin.updates.text(63, "other chat")).status_code == 200
    first.join(timeout=30)
    standin.wait_for_sent(62, 3)
    assert [m.text for m in standin.sent_to(62)] == ["echo: one", "echo: two", "echo: three"]
    assert standin.sent.index(standin.sent_to(63)[0]) == 0  # not held up by chat 62


def test_a_tap_posted_twice_by_telegram_is_handled_once(db_url, standin):
    """A webhook retry of a callback query (the first 200 was lost) settles nothing twice."""
    settings = _webhook_settings(db_url, standin)
    rasa = ChoiceRasa(settings)
    with served_api(settings, rasa):
        _wait_registered(standin)
        assert standin.post_to_webhook(standin.updates.text(64, "I want to build something")).status_code == 200
        (asking,) = standin.wait_for_sent(64)
        tap = standin.tap(asking, 0)
        assert standin.post_to_webhook(tap).status_code == 200
        assert standin.post_to_webhook(tap).status_code == 200
        _asking, answer = standin.wait_for_sent(64, 2)
        assert standin.keyboard_of(asking) is None
    assert answer.text == f"answer: {OFFERED[0]}" and len(standin.sent_to(64)) == 2
    assert len(standin.answers_to(tap["callback_query"]["id"])) == 1
    assert len(rasa.seen) == 2 and _inbound_count(db_url) == 2


def test_api_starts_while_telegram_is_down_and_serves_telegram_once_it_is_back(db_url, standin):
    standin.fail_next("getMe", 502, times=2)
    settings = _webhook_settings(db_url, standin)
    with served_api(settings, FakeRasa(db_url)):
        assert httpx.get(f"http://127.0.0.1:{settings.api_port}/health").status_code == 200
        early = standin.updates.text(64, "too early")
        assert httpx.post(settings.telegram_webhook_url, json=early,
                          headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 503
        _wait_registered(standin)
        assert standin.post_to_webhook(early).status_code == 200  # Telegram retries; now it is taken
        standin.wait_for_sent(64)


def test_polling_mode_has_no_webhook_route(db_url, standin):
    settings = telegram_settings(db_url, standin)
    assert Runtime(settings).routers() == []
    assert worker_channels(settings) == ["telegram"]


def test_an_update_that_cannot_be_stored_gets_a_5xx_so_telegram_sends_it_again(db_url, standin, monkeypatch):
    """A 200 tells Telegram to forget the update: while the store fails it gets 503, and the
    redelivery is stored and answered once."""
    from bot.channels.telegram.handlers import HANDLE_ATTEMPTS

    store_fails(monkeypatch, times=HANDLE_ATTEMPTS)
    rasa = FakeRasa(db_url)
    with served_api(_webhook_settings(db_url, standin), rasa):
        _wait_registered(standin)
        update = standin.updates.text(5260, "is anyone there?")
        first = standin.post_to_webhook(update)
        assert first.status_code == 503 and first.headers.get("retry-after")
        assert _inbound_count(db_url) == 0
        again = standin.post_to_webhook(update)
        assert again.status_code == 200
        assert [m.text for m in standin.wait_for_sent(5260)] == ["echo: is anyone there?"]
    assert _inbound_count(db_url) == 1


def test_an_update_that_never_stores_is_given_up_after_the_window(db_url, standin, monkeypatch, caplog):
    """Telegram would keep retrying it (and hold back what follows) for a day: after
    ``telegram_retry_unstored_seconds`` it gets its 200 and is logged as lost."""
    import logging

    store_fails(monkeypatch, text="cannot be stored")
    rasa = FakeRasa(db_url)
    settings = _webhook_settings(db_url, standin, telegram_retry_unstored_seconds=1.0)
    with caplog.at_level(logging.ERROR, logger="bot.channels.telegram"), served_api(settings, rasa):
        _wait_registered(standin)
        update = standin.updates.text(5261, "cannot be stored")
        assert standin.post_to_webhook(update).status_code == 503
        time.sleep(1.1)
        assert standin.post_to_webhook(update).status_code == 200
        assert standin.post_to_webhook(standin.updates.text(5262, "hello")).status_code == 200
        assert [m.text for m in standin.wait_for_sent(5262)] == ["echo: hello"]
    assert _inbound_count(db_url) == 1
    assert any(f"update {update['update_id']} could not be stored for" in r.getMessage() for r in caplog.records)
