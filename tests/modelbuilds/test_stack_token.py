"""Rasa gets its token from the environment, never on the command line (readable in ps)."""

from __future__ import annotations

from bot.stack import Stack, StackConfig, with_auth_token
from bot.training import RASA_BIN


def test_the_token_is_not_on_rasas_command_line(tmp_path) -> None:
    token = "tok-0123456789abcdefghij"
    command, env = with_auth_token([str(RASA_BIN), "run", "--port", "5005"], token)
    assert token not in " ".join(command)
    assert command[0].endswith("/python") and command[-3:] == ["run", "--port", "5005"]
    assert env["CRM_RASA_TOKEN"] == token and "--auth-token" in command[2] and "--enable-api" in command[2]


def test_a_stack_without_a_token_makes_one_per_run(tmp_path) -> None:
    config = StackConfig(model=tmp_path / "m.tar.gz", database_url="sqlite://", api_key="k" * 32)
    first, second = Stack(config).rasa_token, Stack(config).rasa_token
    assert len(first) >= 32 and first != second
    given = StackConfig(model=tmp_path / "m.tar.gz", database_url="sqlite://", api_key="k" * 32,
                        rasa_token="given-token-0123456789")
    assert Stack(given).rasa_token == "given-token-0123456789"
