"""The TLS context both mail connections use (SMTP for sending, IMAP for reading)."""

from __future__ import annotations

import ssl

from bot.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system's CAs plus the configured CA file (a city's own CA, the tests' certificate)."""
    context = ssl.create_default_context()
    if settings.email_tls_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.email_tls_ca_file))
    return context
