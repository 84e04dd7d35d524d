"""Several Rasa processes: a conversation sticks to one, a refused connection moves it on,
a failure after the message went out is never retried elsewhere (it may have been acted on)."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from bot.core.rasa_client import RasaClient, RasaUnavailable
from bot.stack import free_port

REPLY = [{"recipient_id": "x", "text": "hello"}]


def _rasa(server: HTTPServer, status: int = 200) -> HTTPServer:
    server.expect_request("/webhooks/rest/webhook", method="POST").respond_with_json(REPLY, status=status)
    return server


@pytest.fixture
def second_server():
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_one_sender_always_meets_the_same_process(httpserver: HTTPServer, second_server: HTTPServer) -> None:
    _rasa(httpserver)
    _rasa(second_server)
    client = RasaClient([httpserver.url_for("/"), second_server.url_for("/")], 5)
    for _ in range(5):
        client.send(sender="citizen-a", text="hi", metadata={})
    counts = (len(httpserver.log), len(second_server.log))
    assert sorted(counts) == [0, 5]
    # Over many senders both processes get work.
    for n in range(40):
        client.send(sender=f"citizen-{n}", text="hi", metadata={})
    assert len(httpserver.log) > 5 and len(second_server.log) > 5
    client.close()


def test_a_refused_connection_goes_to_the_next_process(httpserver: HTTPServer) -> None:
    _rasa(httpserver)
    httpserver.expect_request("/", method="GET").respond_with_data("Hello from Rasa")
    dead = f"http://127.0.0.1:{free_port()}"
    client = RasaClient(f"{dead},{httpserver.url_for('/')}", 5)
    senders = [f"citizen-{n}" for n in range(10)]
    for sender in senders:
        assert client.send(sender=sender, text="hi", metadata={}) == REPLY
    assert len(httpserver.log) == len(senders)
    assert client.ready()
    assert not client.process_ready(dead)
    client.close()


def test_no_process_accepting_is_unavailable() -> None:
    client = RasaClient([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"], 2)
    with pytest.raises(RasaUnavailable, match="no Rasa process"):
        client.send(sender="a", text="hi", metadata={})
    assert not client.ready()
    client.close()


def test_an_error_after_sending_is_not_retried_elsewhere(httpserver: HTTPServer, second_server: HTTPServer) -> None:
    """The failing process may have run the actions already: a second try could answer twice."""
    _rasa(httpserver, status=500)
    _rasa(second_server, status=500)
    client = RasaClient([httpserver.url_for("/"), second_server.url_for("/")], 5)
    with pytest.raises(RasaUnavailable, match="HTTP 500"):
        client.send(sender="citizen-a", text="hi", metadata={})
    assert len(httpserver.log) + len(second_server.log) == 1
    client.close()


def test_at_least_one_url_is_needed() -> None:
    with pytest.raises(ValueError):
        RasaClient(" , ", 5)
