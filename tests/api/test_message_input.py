"""Issue 24: idempotency keys are per sender (and API key), and hostile bodies get a JSON 4xx,
on SQLite and on PostgreSQL (which refuses NUL, NaN and lone surrogates that SQLite keeps)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.api.app import MAX_JSON_DEPTH
from bot.api.schemas import MAX_MESSAGE_ID_CHARS
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from bot.tickets.models import Ticket
from tests.api.api_client import AUTH, OTHER_API_KEY, api_client, error_of, post, post_raw

COMPLAINT = "The staff were rude, I want to complain"


@pytest.fixture
def client(db_url: str):
    with api_client(db_url) as test_client:
        yield test_client


def _inbound(db_url: str, sender: str) -> list[tuple[str, str | None]]:
    with session_factory(db_url)() as session:
        return [
            (m.text, m.external_id)
            for m in session.scalars(
                select(Message).join(ChannelIdentity, Message.identity_id == ChannelIdentity.id)
                .where(ChannelIdentity.address == sender, Message.direction == "in").order_by(Message.id)
            )
        ]


def test_another_senders_reused_message_id_is_their_own_message(client, db_url):
    a = post(client, {"channel": "web", "sender": "A", "text": COMPLAINT, "message_id": "m1"})
    b = post(client, {"channel": "web", "sender": "B", "text": "hello", "message_id": "m1"})
    assert a.status_code == b.status_code == 200
    a, b = a.json(), b.json()
    assert b["duplicate"] is False and b["message_id"] != a["message_id"]
    a_ticket = a["handling"]["ticket"]["id"]
    assert a_ticket not in json.dumps(b) and COMPLAINT not in json.dumps(b)
    assert b["handling"]["ticket"]["id"] != a_ticket
    assert [text for text, _ in _inbound(db_url, "B")] == ["hello"]
    with session_factory(db_url)() as session:
        owner = session.scalar(select(ChannelIdentity.address).join(Ticket, Ticket.identity_id == ChannelIdentity.id)
                               .where(Ticket.public_id == b["handling"]["ticket"]["id"]))
    assert owner == "B"


def test_same_sender_same_key_same_text_is_answered_once(client, db_url):
    body = {"channel": "sms", "sender": "+15550100", "text": COMPLAINT, "message_id": "gw-1"}
    first, again = post(client, body).json(), post(client, body).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["message_id"] == first["message_id"] and again["replies"] == first["replies"]
    assert len(_inbound(db_url, "+15550100")) == 1


def test_same_sender_same_key_different_text_is_a_409(client, db_url):
    post(client, {"channel": "web", "sender": "A", "text": COMPLAINT, "message_id": "m1"})
    response = post(client, {"channel": "web", "sender": "A", "text": "something else", "message_id": "m1"})
    assert response.status_code == 409
    assert error_of(response)["error"] == "message_id_reused"
    assert COMPLAINT not in response.text
    assert [text for text, _ in _inbound(db_url, "A")] == [COMPLAINT]


def test_the_key_is_scoped_to_the_api_key_that_sent_it(client, db_url):
    body = {"channel": "web", "sender": "A", "text": COMPLAINT, "message_id": "m1"}
    first = post(client, body).json()
    other = post(client, body, api_key=OTHER_API_KEY).json()
    assert other["duplicate"] is False and other["message_id"] != first["message_id"]
    ids = [external_id for _, external_id in _inbound(db_url, "A")]
    assert len(set(ids)) == 2 and all(i.endswith(":m1") for i in ids)


def test_1000_nested_arrays_are_a_400(client):
    response = post_raw(client, b"[" * 1000 + b"]" * 1000)
    assert response.status_code == 400
    assert error_of(response)["error"] == "invalid_json"
    assert "nested" in response.json()["detail"]


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_limit_is_exact(client, db_url):
    # The body object is level 1 and metadata level 2.
    ok = {"channel": "web", "sender": "deep", "text": "hi", "metadata": {"x": _nested(MAX_JSON_DEPTH - 2)}}
    assert post(client, ok).status_code == 200
    too_deep = {"channel": "web", "sender": "deep", "text": "hi", "metadata": {"x": _nested(MAX_JSON_DEPTH - 1)}}
    response = post(client, too_deep)
    assert response.status_code == 400 and "nested" in error_of(response)["detail"]
    assert len(_inbound(db_url, "deep")) == 1


def test_an_integer_over_4300_digits_is_a_400(client, db_url):
    body = '{"channel": "web", "sender": "n", "text": "hi", "metadata": {"n": %s}}'
    response = post_raw(client, (body % ("9" * 4301)).encode())
    assert response.status_code == 400
    assert "4300 digits" in error_of(response)["detail"]
    assert post_raw(client, (body % ("-" + "9" * 4300)).encode()).status_code == 200
    assert len(_inbound(db_url, "n")) == 1


def test_duplicate_keys_are_a_400(client, db_url):
    response = post_raw(client, b'{"channel": "web", "sender": "d", "text": "one", "text": "two"}')
    assert response.status_code == 400
    assert "duplicate key 'text'" in error_of(response)["detail"]
    assert _inbound(db_url, "d") == []


@pytest.mark.parametrize(
    "raw",
    [
        r'"message_id": "a\u0000b"',
        r'"message_id": "bad \ud800"',
        '"message_id": "%s"' % ("x" * (MAX_MESSAGE_ID_CHARS + 1)),
        '"message_id": "%s"' % ("x" * 256),
        '"message_id": ""',
        r'"metadata": {"k": "a\u0000b"}',
        r'"metadata": {"a\u0000b": 1}',
        r'"metadata": {"k": ["ok", {"deeper": "\udc00"}]}',
        r'"metadata": {"\ud800": 1}',
        '"metadata": {"k": NaN}',
        '"metadata": {"k": [Infinity]}',
        '"metadata": {"k": -Infinity}',
        '"metadata": {"k": 1e400}',
    ],
    ids=["nul-id", "surrogate-id", "id-too-long", "id-256", "id-empty", "nul-value", "nul-key", "surrogate-deep",
         "surrogate-key", "nan", "infinity", "minus-infinity", "float-overflow"],
)
def test_unstorable_message_id_or_metadata_is_a_422(client, db_url, raw):
    response = post_raw(client, ('{"channel": "web", "sender": "u", "text": "hi", %s}' % raw).encode())
    assert response.status_code == 422, response.text
    detail = error_of(response)["detail"]
    assert detail and detail[0]["field"] in {"message_id", "metadata"}
    assert _inbound(db_url, "u") == []


def test_message_id_at_its_limit_is_stored(client, db_url):
    key = "k" * MAX_MESSAGE_ID_CHARS
    response = post(client, {"channel": "web", "sender": "long", "text": "hi", "message_id": key})
    assert response.status_code == 200
    [(text, external_id)] = _inbound(db_url, "long")
    assert text == "hi" and external_id.endswith(key) and len(external_id) <= 255


def test_a_field_name_with_a_lone_surrogate_gets_a_json_422(client):
    response = post_raw(client, b'{"channel": "web", "sender": "s", "text": "hi", "\\ud800": 1}')
    assert response.status_code == 422
    error_of(response)


def test_ticket_reply_with_a_lone_surrogate_is_a_422(client):
    response = client.post("/api/v1/tickets/K7M-39Q-XD2/replies", headers={**AUTH, "Content-Type": "application/json"},
                           content=b'{"text": "bad \\ud800", "author": "ana"}')
    assert response.status_code == 422
    error_of(response)


def test_deeply_nested_ticket_reply_is_a_json_400(client):
    response = client.post("/api/v1/tickets/K7M-39Q-XD2/replies", headers={**AUTH, "Content-Type": "application/json"},
                           content=b"[" * 5000 + b"]" * 5000)
    assert 400 <= response.status_code < 500
    error_of(response)


def test_pulling_replies_for_a_nul_sender_is_a_422(client):
    response = client.get("/api/v1/conversations/web/a%00b/replies", headers=AUTH)
    assert response.status_code == 422
    assert error_of(response)["detail"][0]["field"] == "sender"
