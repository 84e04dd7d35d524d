"""The generic API's optional ``language``: validated, documented, and handed to the core as
the message's language hint (bot.core.inbound.language_tag)."""

from __future__ import annotations

import pytest

from bot.api.schemas import MAX_LANGUAGE_CHARS
from bot.core.conversation import Conversation
from tests.api.api_client import AUTH, api_client, error_of, post


@pytest.fixture
def seen(monkeypatch) -> list:
    """What the API handed the core, in order (the real core still handles it)."""
    handed: list = []
    original = Conversation.handle_inbound

    def recording(self, inbound, **options):  # noqa: ANN001, ANN202
        handed.append(inbound)
        return original(self, inbound, **options)

    monkeypatch.setattr(Conversation, "handle_inbound", recording)
    return handed


@pytest.fixture
def client(db_url: str, seen):
    with api_client(db_url) as test_client:
        yield test_client


@pytest.mark.parametrize(("language", "hint"), [("es", "es"), ("es-ES", "es"), ("pt_BR", "pt"), ("EN", "en"),
                                                ("x-klingon", None), ("*", None)])
def test_the_language_is_the_hint(client, seen, language, hint):
    response = post(client, {"channel": "web", "sender": "A", "text": "hola", "language": language})
    assert response.status_code == 200, response.text
    assert seen[-1].language_hint == hint


def test_without_a_language_there_is_no_hint(client, seen):
    assert post(client, {"channel": "web", "sender": "A", "text": "hola"}).status_code == 200
    assert post(client, {"channel": "web", "sender": "A", "text": "hola", "language": None}).status_code == 200
    assert [inbound.language_hint for inbound in seen] == [None, None]


@pytest.mark.parametrize("language", ["", "e" * (MAX_LANGUAGE_CHARS + 1), 7, ["es"], "es\x00"])
def test_a_language_that_is_no_short_text_is_a_422(client, seen, language):
    response = post(client, {"channel": "web", "sender": "A", "text": "hola", "language": language})
    assert response.status_code == 422 and error_of(response)["error"] == "invalid_request"
    assert [problem["field"] for problem in error_of(response)["detail"]] == ["language"]
    assert seen == []


def test_the_field_is_in_the_schema(client):
    schema = client.get("/openapi.json", headers=AUTH).json()
    body = schema["paths"]["/api/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    language = body["properties"]["language"]
    assert "hint" in language["description"]
    assert {"type": "string", "minLength": 1, "maxLength": MAX_LANGUAGE_CHARS} in language["anyOf"]
