"""The Graph API sender: real HTTP against the stand-in; which failures are retried."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.channels.whatsapp.graph import TEMPLATE_META_KEY, GraphSender, split_text
from bot.outbox.delivery import FAILED, PENDING, SENT, DeliveryService, queue_outbound
from bot.outbox.outbound import DeliveryError, OutboundMessage
from bot.runtime import Runtime
from bot.stack import free_port
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import Message
from tests.channels.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID

WA_ID = "34600000009"


def _sender(url: str, timeout: float = 2.0) -> GraphSender:
    return GraphSender(graph_url=url, phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
                       timeout_seconds=timeout)


def _send(sender: GraphSender, text: str = "Hello", **meta) -> object:
    return asyncio.run(sender.send(OutboundMessage(message_id=1, channel="whatsapp", address=WA_ID, text=text, meta=meta)))


def _error(sender: GraphSender, **kw) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        _send(sender, **kw)
    return caught.value


def test_text_is_posted_with_the_bearer_token_and_the_wamid_returned(graph) -> None:
    result = _send(_sender(graph.url), "Your bin is collected on Tuesday.")
    assert result.external_id == "wamid.standin.1"
    [request] = graph.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.body["type"] == "text" and request.text == "Your bin is collected on Tuesday."


def test_template_is_sent_when_the_window_policy_asks_for_one(graph) -> None:
    template = {"name": "reply_waiting", "language": "es", "parameters": ["ABC-123-XYZ"]}
    _send(_sender(graph.url), **{TEMPLATE_META_KEY: template})
    assert graph.requests[0].body["type"] == "template"
    assert graph.requests[0].template == {
        "name": "reply_waiting", "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "ABC-123-XYZ"}]}],
    }


def test_long_text_is_split_into_several_messages(graph) -> None:
    text = ("word " * 1000).strip() + "\n\n" + "second part " * 100
    result = _send(_sender(graph.url), text)
    bodies = [r.text for r in graph.requests]
    assert len(bodies) == 2 and all(len(b) <= 4096 for b in bodies)
    assert " ".join(" ".join(bodies).split()) == " ".join(text.split())
    assert result.external_id == "wamid.standin.1" and result.part_ids == ["wamid.standin.2"]


def test_split_text_keeps_short_text_whole_and_cuts_unbroken_text_hard() -> None:
    assert split_text("hi") == ["hi"] and split_text("") == [""]
    assert [len(p) for p in split_text("x" * 9000)] == [4096, 4096, 808]


def test_server_error_is_retryable(graph) -> None:
    graph.fail_next(500, code=1, message="An unknown error occurred")
    error = _error(_sender(graph.url))
    assert error.retryable and "HTTP 500" in error.reason and error.retry_after is None


def test_rate_limit_is_retryable_and_retry_after_honoured(graph) -> None:
    graph.fail_next(429, code=4, message="Application request limit reached", headers={"Retry-After": "7"})
    error = _error(_sender(graph.url))
    assert error.retryable and error.retry_after == 7.0


def test_retry_after_as_a_date_or_garbage(graph) -> None:
    from email.utils import formatdate

    graph.fail_next(503, headers={"Retry-After": formatdate(time.time() + 60, usegmt=True)})
    assert 50 < _error(_sender(graph.url)).retry_after <= 60
    graph.fail_next(503, headers={"Retry-After": "soon"})
    assert _error(_sender(graph.url)).retry_after is None


def test_throttling_code_under_http_400_is_retryable(graph) -> None:
    graph.fail_next(400, code=131056, message="(#131056) (Business Account, Consumer Account) pair rate limit hit")
    assert _error(_sender(graph.url)).retryable


def test_other_client_errors_fail_at_once_with_metas_message(graph) -> None:
    graph.fail_next(400, code=131026, message="Message Undeliverable.")
    error = _error(_sender(graph.url))
    assert not error.retryable
    assert "131026" in error.reason and "Message Undeliverable." in error.reason
    graph.fail_next(401, code=190, message="Error validating access token: Session has expired")
    error = _error(_sender(graph.url))
    assert not error.retryable and "access token" in error.reason
    assert ACCESS_TOKEN not in error.reason


def test_unreachable_or_slow_graph_api_is_retryable() -> None:
    error = _error(_sender(f"http://127.0.0.1:{free_port()}/v21.0"))
    assert error.retryable and "unreachable" in error.reason


def test_slow_graph_api_times_out(graph) -> None:
    graph.fail_next(200, code=None, message="{}", delay=1.5)
    error = _error(_sender(graph.url, timeout=0.5))
    assert error.retryable and "timed out" in error.reason


def _queue_reply(db_url: str) -> int:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "whatsapp", WA_ID)
        record_inbound(session, identity, "hello")  # the 24-hour window is open
        return queue_outbound(session, identity=identity, text="Reply", author="agent:ana").id


def test_delivery_retries_5xx_and_429_until_sent(db_url: str, graph) -> None:
    from bot.channels.whatsapp.adapter import build_preparer
    from tests.channels.whatsapp.conftest import make_settings

    message_id = _queue_reply(db_url)
    settings = make_settings(db_url, graph.url)
    service = DeliveryService(session_factory(db_url), {"whatsapp": _sender(graph.url)},
                              preparers={"whatsapp": build_preparer(Runtime(settings))}, backoff_seconds=0.01)
    graph.fail_next(502, message="Bad gateway")
    graph.fail_next(429, code=130429, message="Rate limit hit", headers={"Retry-After": "0"})
    assert asyncio.run(service.deliver(message_id)) == PENDING
    assert asyncio.run(service.deliver(message_id)) == PENDING
    assert asyncio.run(service.deliver(message_id)) == SENT
    with session_factory(db_url)() as session:
        message = session.get(Message, message_id)
        assert message.delivery_attempts == 3 and message.external_id == "wamid.standin.1"
    assert len(graph.requests) == 3


def test_delivery_fails_for_good_on_a_permanent_error(db_url: str, graph) -> None:
    message_id = _queue_reply(db_url)
    service = DeliveryService(session_factory(db_url), {"whatsapp": _sender(graph.url)})
    graph.fail_next(400, code=100, message="Invalid parameter")
    assert asyncio.run(service.deliver(message_id)) == FAILED
    with session_factory(db_url)() as session:
        assert "Invalid parameter" in session.get(Message, message_id).delivery_error
