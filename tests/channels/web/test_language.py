"""The web chat's language: the browser's reaches the core as a hint, and what the chat words
itself after handling (the "none of these" button) speaks the turn's language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.channels.web import chat
from bot.core.clarification import none_option_title
from bot.core.conversation import HandledMessage
from tests.console.conftest import build_app, make_settings

ASKING = {"offer": "abcdefgh2345", "options": [{"n": 1, "entry": "a", "title": "¿Cómo reservo una recogida?"},
                                               {"n": 2, "entry": "b", "title": "¿Dónde dejo el jardín?"}]}


class SaysWhatItWasTold:
    """Stands in for the core: keeps what the chat handed it, and answers in ``language``
    with a "Do you mean ...?" whose stored shape lacks the "none" title (an older one)."""

    def __init__(self, language: str | None = None) -> None:
        self.language = language
        self.seen: list[Any] = []

    def handle_inbound(self, inbound, **_kwargs) -> HandledMessage:  # noqa: ANN001
        self.seen.append(inbound)
        return HandledMessage(message_id=len(self.seen), replies=["¿Quiere decir...?"], handling="clarify",
                              intent=None, confidence=None, kb_entry_id=None, ticket=None, duplicate=False,
                              reply_ids=[100 + len(self.seen)], choices=ASKING, language=self.language)


@pytest.fixture
def web(db_url: str):
    app = build_app(make_settings(db_url))
    conversation = SaysWhatItWasTold()
    app.state.web_chat.conversation = conversation
    with TestClient(app, base_url="http://testserver") as client:
        page = client.get("/chat")
        token = re.search(r'<meta name="chat-token" content="([0-9a-f]+)">', page.text).group(1)
        yield client, token, conversation


def _send(client: TestClient, token: str, headers: dict[str, str] | None = None, **body: Any):
    return client.post("/chat/messages", json={"text": "hola", **body},
                       headers={"X-Chat-Token": token, **(headers or {})})


@pytest.mark.parametrize(
    ("body", "accept_language", "hint"),
    [
        ({"language": "es-ES"}, "en-GB,en;q=0.9", "es"),  # the page's navigator.language first
        ({}, "pt-BR,pt;q=0.9,en;q=0.5", "pt"),  # else Accept-Language's first tag
        ({"language": "*"}, "de", "de"),  # a language that is no ISO 639-1 code says nothing
        ({"language": None}, None, None),
        ({}, "*", None),
    ],
)
def test_the_browsers_language_is_the_hint(web, body, accept_language, hint) -> None:
    client, token, conversation = web
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = _send(client, token, headers, **body)
    assert response.status_code == 200, response.text
    assert conversation.seen[-1].language_hint == hint


@pytest.mark.parametrize("language", [7, ["es"], {"es": 1}, "e" * (chat.MAX_LANGUAGE_CHARS + 1)])
def test_a_language_that_is_no_short_text_is_refused_before_the_conversation(web, language) -> None:
    client, token, conversation = web
    response = _send(client, token, language=language)
    assert response.status_code == 422 and response.json()["error"] == "invalid_language"
    assert conversation.seen == []


@pytest.mark.parametrize("language", ["es", None])
def test_the_buttons_speak_the_turns_language(web, language) -> None:
    client, token, conversation = web
    conversation.language = language
    options = _send(client, token, language="es").json()["replies"][-1]["choices"]["options"]
    assert options[-1] == {"n": 0, "title": none_option_title(language), "choice": "kb:abcdefgh2345:0"}
    if language == "es":
        assert none_option_title("es") != none_option_title()


def test_the_page_sends_navigator_language() -> None:
    script = (chat.__file__.rsplit("/", 1)[0] + "/static/chat.js")
    with open(script, encoding="utf-8") as handle:
        source = handle.read()
    assert "body.language = String(navigator.language)" in source
