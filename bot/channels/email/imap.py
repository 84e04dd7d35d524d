"""Opening the city's mailbox over IMAP (IMAPClient), the same way for the worker and the sender."""

from __future__ import annotations

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from bot.settings import Settings


def connect(settings: Settings) -> IMAPClient:
    """A logged-in client: implicit TLS, STARTTLS (refusing to log in without it) or plain."""
    from bot.channels.email.tls import tls_context

    security = settings.imap_security
    context = tls_context(settings) if security != "none" else None
    client = IMAPClient(
        settings.imap_host,
        port=settings.imap_port,
        ssl=security == "tls",
        ssl_context=context,
        timeout=settings.network_timeout_seconds,
    )
    try:
        if security == "starttls":
            client.starttls(context)
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        client.login(settings.imap_user, password)
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def already_in_mailbox(settings: Settings, message_id: str) -> bool:
    """Whether a message with this Message-ID is in the inbox or the Sent folder.

    Used for our own replies: their copy to our address shows the server took them.
    """
    client = connect(settings)
    try:
        for folder in (settings.email_sent_mailbox, settings.imap_mailbox):
            try:
                client.select_folder(folder, readonly=True)
            except IMAPClientError:
                continue  # no Sent folder (yet)
            if client.search(["HEADER", "Message-ID", message_id]):
                return True
        return False
    finally:
        _close(client)


def close(client: IMAPClient) -> None:
    _close(client)
