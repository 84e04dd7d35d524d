"""EmailSender._transmit: an idle connection the server closed is replaced once, then the error stands."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from bot.channels.email.sender import EmailSender
from bot.settings import Settings


class FakeSMTP:
    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes  # shared: one entry per sendmail call

    async def sendmail(self, sender, recipients, raw):
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, "ok"


def sender_with(outcomes: list, connect_errors: list | None = None) -> tuple[EmailSender, dict]:
    sender = EmailSender(Settings(_env_file=None, api_keys="reconnect-tests-key-0123456789", email_address="city@example.org"))
    counts = {"connect": 0, "drop": 0}

    async def connection():
        counts["connect"] += 1
        if connect_errors:
            raise connect_errors.pop(0)
        return FakeSMTP(outcomes)

    async def drop():
        counts["drop"] += 1

    sender._connection = connection  # type: ignore[method-assign]
    sender._drop_connection = drop  # type: ignore[method-assign]
    return sender, counts


def transmit(sender: EmailSender) -> None:
    asyncio.run(sender._transmit("city@example.org", ["jo@example.net"], b"raw"))


def test_a_closed_idle_connection_is_replaced_once() -> None:
    sender, counts = sender_with([aiosmtplib.SMTPServerDisconnected("gone"), {}])
    transmit(sender)
    assert counts == {"connect": 2, "drop": 1}


def test_a_second_disconnect_is_raised() -> None:
    sender, counts = sender_with([aiosmtplib.SMTPServerDisconnected("gone"), aiosmtplib.SMTPServerDisconnected("again")])
    with pytest.raises(aiosmtplib.SMTPServerDisconnected, match="again"):
        transmit(sender)
    assert counts == {"connect": 2, "drop": 2}


def test_other_errors_are_not_retried() -> None:
    sender, counts = sender_with([aiosmtplib.SMTPDataError(451, "try later")])
    with pytest.raises(aiosmtplib.SMTPDataError):
        transmit(sender)
    assert counts == {"connect": 1, "drop": 0}
    sender, counts = sender_with([], connect_errors=[aiosmtplib.SMTPServerDisconnected("at connect")])
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        transmit(sender)
    assert counts == {"connect": 1, "drop": 0}


def test_a_refused_recipient_is_raised() -> None:
    sender, _ = sender_with([{"jo@example.net": (550, "no such user")}])
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        transmit(sender)
