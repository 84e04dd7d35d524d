"""Real mail servers for the e-mail channel's tests, and the assistant they talk to.

``mail_servers``: Dovecot (IMAP + LMTP) and an SMTP server with STARTTLS/TLS
and AUTH, on free loopback ports in a temporary directory, once per session.
``assistant`` is the end-to-end stack of ``tests/e2e`` (trained model, Rasa,
action server, a throw-away SQLite store), shared with those tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.email.mailkit import EmailHarness
from tests.stack_fixture import RunningAssistant
from tools.standins.email import MailServers, start_mail_servers


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    with start_mail_servers() as servers:
        yield servers


@pytest.fixture(scope="session")
def email_harness(mail_servers: MailServers, assistant: RunningAssistant) -> Iterator[EmailHarness]:
    harness = EmailHarness(mail_servers, assistant)
    yield harness
    harness.close()
