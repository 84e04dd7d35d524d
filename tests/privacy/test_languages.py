"""The download page of a copy of one's data opens outside any turn: it is worded in the language
of the conversation that asked (the link's ``?lang=``), else the browser's, else the default."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from markupsafe import escape

from bot.api.privacy import page_language
from bot.privacy import requests as privacy_requests
from bot.privacy.export import export_citizen, export_zip, render_html
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


def _bundle() -> dict:
    return {"produced_at": "2026-12-08T00:00:00Z", "citizen": {"id": "abc", "display_name": None, "created_at": "t"},
            "identities": [], "messages": [], "consents": [],
            "feedback": [{"ticket": "T-1", "asked_at": "t", "channel": "web", "solved": True, "rating": 5,
                          "comment": "<b>bien</b>"}],
            "tickets": [{"id": "T-1", "subject": "Basura", "department": "waste", "status": "closed",
                         "opened_at": "t1", "closed_at": "t2", "updates": []}]}


def test_the_page_in_the_zip_is_in_the_citizens_language() -> None:
    spanish = render_html(_bundle(), "es")
    assert '<html lang="es">' in spanish and f"<h1>{escape(text('rights.export_page.title', 'es'))}</h1>" in spanish
    assert escape(text("rights.export_page.ticket_line_closed", "es", department="waste", status="closed",
                       opened_at="t1", closed_at="t2")) in spanish
    assert f"<td>{text('rights.export_page.answer_yes', 'es')}</td>" in spanish
    assert "&lt;b&gt;bien&lt;/b&gt;" in spanish  # the citizen's words are still data
    for language in (None, "en", "xx"):
        english = render_html(_bundle(), language)
        assert '<html lang="en">' in english and "<h1>Your data</h1>" in english and "Your tickets" in english
    assert "Sus solicitudes" in spanish and "Your tickets" not in spanish


def test_the_zip_of_a_spanish_citizen_speaks_spanish(db_url: str) -> None:
    from bot.store.citizens import get_or_create_identity
    from bot.store.db import session_factory
    from bot.store.models import Citizen

    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "web", "hablante-1")
        session.get(Citizen, identity.citizen_id).language = "es"
        session.flush()
        bundle = export_citizen(session, identity.citizen_id)
        citizen = session.get(Citizen, identity.citizen_id)
        page = zipfile.ZipFile(io.BytesIO(export_zip(bundle, citizen.language))).read("data.html").decode()
    assert '<html lang="es">' in page and "Sus mensajes" in page
