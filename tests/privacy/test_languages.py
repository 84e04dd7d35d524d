"""The download page of a copy of one's data opens outside any turn: it is worded in the language
of the conversation that asked (the link's ``?lang=``), else the browser's, else the default."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from bot.api.privacy import page_language
from bot.privacy import requests as privacy_requests
from bot.texts import text
from tests.api.api_client import api_client, post
from tests.privacy.helpers import WEB_SENDER, build_citizen


@pytest.mark.parametrize(("lang", "accept", "expected"), [
    ("es", None, "es"),
    ("ES", "en", "es"),
    ("", "es-ES,es;q=0.9,en;q=0.8", "es"),
    ("", "fr-FR, en;q=0.5, es;q=0.7", "es"),
    ("", "de, en;q=0.1", "en"),
    ("xx", "es;q=0", "en"),
    ("<script>", "es;q=nonsense, x" * 200, "en"),
    (None, None, "en"),
])
def test_page_language(lang, accept, expected) -> None:
    assert page_language(lang, accept) == expected


def test_the_page_speaks_the_links_or_the_browsers_language(db_url: str) -> None:
    with api_client(db_url) as client:
        url = "/privacy/download/" + "A" * 43
        spanish = client.get(url + "?lang=es")
        assert spanish.status_code == 200 and '<html lang="es">' in spanish.text
        assert escape(text("rights.download.button", "es")) in spanish.text
        browser = client.get(url, headers={"accept-language": "es-ES,es;q=0.9"})
        assert browser.text == spanish.text
        english = client.get(url, headers={"accept-language": "de"})
        assert escape(text("rights.download.intro", "en")) in english.text and '<html lang="en">' in english.text
        gone = client.post(url + "?lang=es")
        assert gone.status_code == 404 and escape(text("rights.download.gone", "es")) in gone.text


def test_a_link_asked_for_in_spanish_carries_the_language(db_url: str, monkeypatch) -> None:
    # The core words a Spanish citizen's turn in Spanish (bot.texts.override); here it is pretended.
    monkeypatch.setattr(privacy_requests, "active_language", lambda: "es")
    with api_client(db_url, public_url="https://assist.city.example") as client:
        build_citizen(client, db_url)
        asked = post(client, {"channel": "web", "sender": WEB_SENDER, "text": "My data"}).json()
        code = next(re.search(r"\b(\d{6})\b", r["text"])[1] for r in asked["replies"]
                    if re.search(r"\b\d{6}\b", r["text"]))
        reply = post(client, {"channel": "web", "sender": WEB_SENDER, "text": code}).json()["replies"][0]["text"]
        url = re.search(r"https://assist\.city\.example(/privacy/download/\S+)", reply)[1]
        assert url.endswith("?lang=es")
        page = client.get(url)
        assert escape(text("rights.download.intro", "es")) in page.text
        assert client.post(url).headers["content-type"] == "application/zip"
