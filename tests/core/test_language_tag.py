"""Every channel's language field read the same way (bot.core.inbound.language_tag)."""

from __future__ import annotations

import pytest

from bot.core.inbound import language_tag


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("es", "es"),
        ("ES", "es"),
        ("es-ES", "es"),
        ("pt_BR", "pt"),
        ("zh-Hant-TW", "zh"),
        (" en-GB ", "en"),
        ("es-ES,es;q=0.9,en;q=0.8", "es"),  # Accept-Language: the first tag
        ("de, en", "de"),  # Content-Language lists
        ("fr;q=0.7", "fr"),
    ],
)
def test_the_primary_subtag_in_lower_case(value, expected):
    assert language_tag(value) == expected


@pytest.mark.parametrize("value", [None, "", " ", "*", "fil", "x-klingon", "e", "12", "e1", "ñu", "en\u0301", 42, b"es",
                                   ["es"], ",es"])
def test_anything_else_is_no_hint(value):
    assert language_tag(value) is None
