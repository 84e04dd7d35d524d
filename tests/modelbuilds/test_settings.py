"""CRM_RASA_TOKEN: optional, but a given one must be real."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.settings import Settings

KEY = "k" * 32


@pytest.mark.parametrize("token", ["changeme", "short", "x" * 15, "has spaces in it 123", "a&b=c" * 5])
def test_a_placeholder_or_unsafe_token_is_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="CRM_RASA_TOKEN"):
        Settings(_env_file=None, api_keys=KEY, rasa_token=token)


def test_the_token_is_optional_and_never_shown() -> None:
    assert Settings(_env_file=None, api_keys=KEY).rasa_token is None
    settings = Settings(_env_file=None, api_keys=KEY, rasa_token="abcdefghijklmnop_-123")
    assert settings.rasa_token.get_secret_value() == "abcdefghijklmnop_-123"
    assert "abcdefghijklmnop" not in repr(settings)
