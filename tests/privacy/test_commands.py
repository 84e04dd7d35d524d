"""The phrases are small and exact: a question that mentions data is for the assistant."""

from __future__ import annotations

import pytest

from bot.privacy.commands import RightsCode, RightsRequest, RightsUsage, might_be_rights_command, parse_rights_command
from bot.privacy.export import render_html


@pytest.mark.parametrize(("text", "expected"), [
    ("my data", RightsRequest("export")),
    ("  My Data! ", RightsRequest("export")),
    ("send me my data", RightsRequest("export")),
    ("/mydata", RightsRequest("export")),
    ("/mydata@CityHallBot", RightsRequest("export")),
    ("my data email Ana@Example.org", RightsRequest("export", "email", "Ana@Example.org")),
    ("/mydata ana@example.org", RightsRequest("export", "email", "ana@example.org")),
    ("erase my data", RightsRequest("erase")),
    ("Delete my data.", RightsRequest("erase")),
    ("/erase whatsapp +34 600 123 456", RightsRequest("erase", "whatsapp", "+34 600 123 456")),
    ("erase my data please now", RightsUsage("erase")),
    ("123 456", RightsCode("123456")),
    ("123456", RightsCode("123456")),
])
def test_phrases(text: str, expected: object) -> None:
    assert parse_rights_command(text) == expected


@pytest.mark.parametrize("text", [
    "how do you use my data?", "is my data safe", "I want to know what my data is used for", "my database is down",
    "1234567", "12345", "/erasefoo", "", "x" * 500,
])
def test_not_for_the_flow(text: str) -> None:
    assert not might_be_rights_command(text)


def test_html_shows_consents_when_there_are_any_and_escapes_them() -> None:
    bundle = {"produced_at": "now", "citizen": {"id": "abc", "display_name": None, "created_at": "t"},
              "identities": [], "tickets": [], "messages": [],
              "consents": [{"purpose": "<b>notifications</b>", "given_at": "2026-12-01"}]}
    page = render_html(bundle)
    assert "Your consents" in page and "&lt;b&gt;notifications&lt;/b&gt;" in page
    del bundle["consents"]
    assert "Your consents" not in render_html(bundle)


@pytest.mark.parametrize(("text", "expected"), [
    ("mis datos", RightsRequest("export")),
    ("¡Mis Datos!", RightsRequest("export")),
    ("envíame mis datos", RightsRequest("export")),
    ("enviame mis datos", RightsRequest("export")),
    ("/misdatos@CityHallBot", RightsRequest("export")),
    ("mis datos correo Ana@Example.org", RightsRequest("export", "email", "Ana@Example.org")),
    ("mis datos ana@example.org", RightsRequest("export", "email", "ana@example.org")),
    ("borrar mis datos", RightsRequest("erase")),
    ("Eliminar mis datos.", RightsRequest("erase")),
    ("elimina mis datos whatsapp +34 600 123 456", RightsRequest("erase", "whatsapp", "+34 600 123 456")),
    ("/borrar", RightsRequest("erase")),
    ("borrar mis datos por favor ya", RightsUsage("erase")),
    # Either language, whatever the message's: "my data" followed by a Spanish channel word.
    ("my data correo ana@example.org", RightsRequest("export", "email", "ana@example.org")),
])
def test_spanish_phrases(text: str, expected: object) -> None:
    assert parse_rights_command(text) == expected


@pytest.mark.parametrize("text", [
    "¿cómo usáis mis datos?", "¿están seguros mis datos?", "quiero saber para qué usan mis datos", "borrar",
    "mis datoss", "/borrarlo", "datos", "eliminar",
])
def test_spanish_sentences_are_not_for_the_flow(text: str) -> None:
    assert not might_be_rights_command(text)
