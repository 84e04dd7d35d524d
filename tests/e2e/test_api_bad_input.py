"""Bad input: a clear 4xx or a sensible reply, never a crash, never a lost or twice-answered message."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from bot.store.models import ChannelIdentity, Message

pytestmark = pytest.mark.e2e


def stored_text(assistant, message_id: int) -> str:
    with assistant.sessions()() as session:
        return session.get(Message, message_id).text


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    return body


@pytest.mark.parametrize(
    "text",
    [
        "When is my bin collected? 🗑️🙂",
        "متى يتم جمع القمامة في شارعي؟",
        "מתי אוספים את הפח שלי?",
        "'; DROP TABLE messages; --",
        "<script>alert('x')</script><img src=x onerror=alert(1)>",
        "line one\r\nline two\x07\x1b[31m red \x7f",
        "   padded text with   odd   spacing   ",
    ],
    ids=["emoji", "arabic", "hebrew", "sql", "html", "control-chars", "spacing"],
)
def test_unusual_text_is_handled_and_stored_exactly(assistant, sender, text):
    result = assistant.say(sender, text)
    assert result["replies"], result
    assert result["handling"]["kind"] in {"kb_answer", "escalated", "ticket_joined", "small_talk", "status"}
    assert stored_text(assistant, result["message_id"]) == text


def test_100_kb_message_is_stored_whole_and_escalated(assistant, sender):
    text = ("My neighbour's extension blocks my light. " * 2500)[:100_000]
    result = assistant.say(sender, text)
    assert result["handling"]["kind"] == "escalated"
    assert result["handling"]["ticket"]["id"] in result["replies"][0]["text"]
    assert stored_text(assistant, result["message_id"]) == text


@pytest.mark.parametrize("text", ["", "   ", "\n\t  "])
def test_empty_text_is_rejected(assistant, sender, text):
    response = assistant.post({"channel": "web", "sender": sender, "text": text})
    assert response.status_code == 422
    assert "empty" in json.dumps(error_of(response)["detail"])


def test_nul_character_is_rejected_with_a_reason(assistant, sender):
    response = assistant.post({"channel": "web", "sender": sender, "text": "a\u0000b"})
    assert response.status_code == 422
    assert "NUL" in json.dumps(error_of(response)["detail"])


def test_invalid_utf8_is_rejected(assistant, sender):
    raw = b'{"channel": "web", "sender": "x", "text": "caf\xe9"}'
    response = assistant.post(raw=raw)
    assert response.status_code == 400
    assert error_of(response)["error"] == "invalid_encoding"


def test_lone_surrogate_is_rejected(assistant, sender):
    raw = b'{"channel": "web", "sender": "x", "text": "bad \\ud800 text"}'
    response = assistant.post(raw=raw)
    assert response.status_code == 422


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", b'{"channel": "web",}'])
def test_malformed_json_is_rejected(assistant, raw):
    response = assistant.post(raw=raw)
    assert response.status_code == 400
    assert error_of(response)["error"] == "invalid_json"


def test_unknown_channel_is_rejected_and_lists_known_ones(assistant, sender):
    response = assistant.post({"channel": "pigeon", "sender": sender, "text": "hello"})
    assert response.status_code == 422
    detail = json.dumps(error_of(response)["detail"])
    assert "pigeon" in detail and "web" in detail


@pytest.mark.parametrize(
    "body",
    [
        {"sender": "x", "text": "hi"},
        {"channel": "web", "text": "hi"},
        {"channel": "web", "sender": "x"},
        {"channel": "web", "sender": "x", "text": 42},
        {"channel": "web", "sender": "x", "text": "hi", "surprise": True},
        ["channel", "web"],
    ],
    ids=["no-channel", "no-sender", "no-text", "text-not-string", "unknown-field", "not-an-object"],
)
def test_missing_or_wrong_fields_are_rejected(assistant, body):
    response = assistant.post(body)
    assert response.status_code == 422
    error_of(response)


def test_missing_api_key_is_rejected(assistant, sender):
    response = assistant.post({"channel": "web", "sender": sender, "text": "hi"}, api_key=None)
    assert response.status_code == 401
    assert "missing" in error_of(response)["detail"]


def test_wrong_api_key_is_rejected_and_nothing_is_stored(assistant, sender):
    response = assistant.post({"channel": "web", "sender": sender, "text": "hi"}, api_key="wrong-key-0123456789")
    assert response.status_code == 401
    with assistant.sessions()() as session:
        # The sender is new to this test: nothing at all may be stored for it.
        assert session.scalar(select(ChannelIdentity).where(ChannelIdentity.address == sender)) is None


def test_bearer_token_is_accepted(assistant, sender):
    response = assistant.post(
        {"channel": "web", "sender": sender, "text": "hello"},
        api_key=None,
        headers={"Authorization": f"Bearer {assistant.config.api_key}"},
    )
    assert response.status_code == 200


def test_oversized_body_is_rejected(assistant, sender):
    response = assistant.post({"channel": "web", "sender": sender, "text": "x" * 1_100_000})
    assert response.status_code == 413
    error_of(response)


def test_repeated_message_id_is_answered_once(assistant, sender):
    body = {"channel": "sms", "sender": sender, "text": "I want to complain about the noise from the depot", "message_id": "gw-123"}
    first = assistant.say(**body)
    second = assistant.say(**body)
    assert second["duplicate"] is True and first["duplicate"] is False
    assert second["message_id"] == first["message_id"]
    assert second["replies"] == first["replies"]
    with assistant.sessions()() as session:
        inbound = session.scalar(
            select(func.count()).select_from(Message).where(Message.external_id.endswith(":gw-123"), Message.direction == "in")
        )
        replies = session.scalar(select(func.count()).select_from(Message).where(Message.reply_to_id == first["message_id"]))
    assert inbound == 1 and replies == len(first["replies"])


def test_another_senders_message_id_is_never_their_reply(assistant, sender):
    """Issue 24: B reusing A's key got A's reply and ticket, and B's message was lost."""
    complaint = "The staff were rude, I want to complain"
    first = assistant.say(channel="web", sender=f"{sender}-A", text=complaint, message_id="m1")
    second = assistant.say(channel="web", sender=f"{sender}-B", text="hello", message_id="m1")
    assert second["duplicate"] is False and second["message_id"] != first["message_id"]
    assert complaint not in json.dumps(second)
    if first["handling"]["ticket"]:
        assert first["handling"]["ticket"]["id"] not in json.dumps(second)
    assert stored_text(assistant, second["message_id"]) == "hello"


def test_same_message_id_with_another_text_is_a_409(assistant, sender):
    assistant.say(channel="web", sender=sender, text="When is my bin collected?", message_id="k1")
    response = assistant.post({"channel": "web", "sender": sender, "text": "Something else", "message_id": "k1"})
    assert response.status_code == 409
    assert error_of(response)["error"] == "message_id_reused"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"channel": "web", "sender": "x", "text": "hi", "metadata": {"n": ' + b"9" * 4301 + b"}}",
        b'{"channel": "web", "sender": "x", "text": "one", "text": "two"}',
    ],
    ids=["nested-1000", "int-4301-digits", "duplicate-key"],
)
def test_json_the_parser_refuses_is_a_400(assistant, raw):
    response = assistant.post(raw=raw)
    assert response.status_code == 400
    assert error_of(response)["error"] == "invalid_json"


@pytest.mark.parametrize(
    "raw",
    [
        rb'"message_id": "a\u0000b"',
        b'"message_id": "' + b"x" * 256 + b'"',
        rb'"metadata": {"k": "a\u0000b"}',
        rb'"metadata": {"k": NaN}',
        rb'"metadata": {"k": "\ud800"}',
    ],
    ids=["nul-id", "id-256", "nul-metadata", "nan-metadata", "surrogate-metadata"],
)
def test_unstorable_message_id_or_metadata_is_a_422(assistant, sender, raw):
    response = assistant.post(raw=b'{"channel": "web", "sender": "%s", "text": "hi", %s}' % (sender.encode(), raw))
    assert response.status_code == 422
    error_of(response)


def test_openapi_description_is_served(assistant):
    spec = httpx.get(f"{assistant.config.api_url}/openapi.json").json()
    operation = spec["paths"]["/api/v1/messages"]["post"]
    assert "requestBody" in operation
    assert {"400", "401", "409", "413", "422"} <= set(operation["responses"])


def test_ready_once_rasa_has_its_model(assistant):
    response = httpx.get(f"{assistant.config.api_url}/ready", timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ready"}
