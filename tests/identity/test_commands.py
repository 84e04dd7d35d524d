"""The /link command as citizens type it on any channel."""

from __future__ import annotations

import pytest

from bot.identity.addresses import LINKABLE_CHANNELS, normalize_address
from bot.identity.commands import CHANNEL_WORDS, EnterCode, LinkUsage, RequestCode, parse_link_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/link email ana@example.org", RequestCode("email", "ana@example.org")),
        ("/link ana@example.org", RequestCode("email", "ana@example.org")),
        ("  /LINK   E-mail:  Ana@Example.org  ", RequestCode("email", "Ana@Example.org")),
        ("/link@CityBot email ana@example.org", RequestCode("email", "ana@example.org")),
        ("/link whatsapp +34 600 123 456", RequestCode("whatsapp", "+34 600 123 456")),
        ("/link telegram 123456789", RequestCode("telegram", "123456789")),
        ("/link 123456", EnterCode("123456", explicit=True)),
        ("/link 123 456", EnterCode("123456", explicit=True)),
        ("123456", EnterCode("123456", explicit=False)),
        (" 123-456\n", EnterCode("123456", explicit=False)),
        ("/link", LinkUsage()),
        ("/link email", LinkUsage("email")),
        ("/link my facebook", LinkUsage()),
        ("/link sms +34600123456", LinkUsage()),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert parse_link_command(text) == expected


@pytest.mark.parametrize(
    "text",
    ["When is my bin collected?", "1234567", "12345", "my code is 123456", "/linked", "please /link me", "", "/status K7M"],
)
def test_ordinary_messages_are_not_commands(text: str) -> None:
    assert parse_link_command(text) is None


def test_every_channel_word_names_a_linkable_channel() -> None:
    assert set(CHANNEL_WORDS.values()) == set(LINKABLE_CHANNELS)


@pytest.mark.parametrize(
    ("channel", "raw", "stored"),
    [
        ("email", " <Ana@Example.ORG> ", "ana@example.org"),
        ("email", "mailto:ana@example.org", "ana@example.org"),
        ("email", "ana@localhost", None),
        ("email", "ana@exa mple.org", None),
        ("whatsapp", "+34 (600) 123-456", "34600123456"),
        ("whatsapp", "0034600123456", "34600123456"),
        ("whatsapp", "600 12", None),
        ("whatsapp", "+34 600 ABC 456", None),
        ("telegram", "123456789", "123456789"),
        ("telegram", "@ana", None),
        ("telegram", "-100123", None),
        ("web", "anything", None),
    ],
)
def test_addresses_are_normalised_like_the_channels_store_them(channel: str, raw: str, stored: str | None) -> None:
    assert normalize_address(channel, raw) == stored


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/vincular correo ana@example.org", RequestCode("email", "ana@example.org")),
        ("/Vincular@CityBot Correo: Ana@Example.org", RequestCode("email", "Ana@Example.org")),
        ("/enlazar whatsapp +34 600 123 456", RequestCode("whatsapp", "+34 600 123 456")),
        ("/vincular 123 456", EnterCode("123456", explicit=True)),
        ("/vincular", LinkUsage()),
        ("/vincular mi facebook", LinkUsage()),
        ("vincular", LinkUsage()),
        ("Vincular correo", LinkUsage("email")),
        ("vincular ana@example.org", RequestCode("email", "ana@example.org")),
        ("vincular 123456", EnterCode("123456", explicit=True)),
        ("/link correo ana@example.org", RequestCode("email", "ana@example.org")),
    ],
)
def test_parse_spanish(text: str, expected: object) -> None:
    assert parse_link_command(text) == expected


@pytest.mark.parametrize(
    "text",
    ["vincular mi cuenta del padrón", "¿cómo puedo vincular mi correo?", "vinculado", "/vincularme", "mi código es 123456"],
)
def test_spanish_sentences_are_not_commands(text: str) -> None:
    assert parse_link_command(text) is None
