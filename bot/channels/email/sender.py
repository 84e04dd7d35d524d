"""SMTP delivery of outbound e-mail (aiosmtplib, STARTTLS or TLS, AUTH).

The delivery queue (``bot.outbox.delivery``) hands us one stored outbound row
at a time. Its Message-ID comes from the row id, so every attempt sends the
same message. Every reply also goes to our own address in the same SMTP
transaction (an envelope-only recipient, like Bcc): the server delivers that
copy as part of accepting the mail, and the worker files it in the Sent
folder. A later attempt of a row (``attempt > 1``: the earlier one failed, or
the process died in mid-send) first looks for that copy over IMAP and, if it
is there, reports the row as sent instead of sending it again. That closes the
gap between "the server accepted the mail" and "we recorded it" for a crash.

Automatic replies go out with an empty envelope sender (``MAIL FROM:<>``,
RFC 3834 section 3.3), so a bounce of an auto-reply is never answered by
anyone; replies written by staff use the city's address.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email import policy

import aiosmtplib
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bot.channels.email.compose import compose_reply, make_message_id
from bot.channels.email.imap import already_in_mailbox
from bot.channels.email.tls import tls_context
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult
from bot.settings import Settings
from bot.texts import override

logger = logging.getLogger(__name__)

# Per-recipient SMTP codes that no retry can fix (no such user, bad address, policy refusal).
_PERMANENT = range(500, 600)


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower()


class EmailSender:
    """A ``ChannelSender`` for the e-mail channel; keeps one SMTP connection open between sends."""

    channel = "email"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._address = (settings.email_address or "").strip().lower()
        self._domain = domain_of(self._address)
        self._timeout = settings.network_timeout_seconds
        self._smtp: aiosmtplib.SMTP | None = None
        self._context: ssl.SSLContext | None = None

    def message_id_for(self, outbound_id: int) -> str:
        return make_message_id(outbound_id, self._domain)

    async def send(self, message: OutboundMessage) -> SendResult:
        email_meta = dict(message.meta.get("email") or {})
        automatic = bool(email_meta.get("automatic", False))
        message_id = self.message_id_for(message.message_id)
        if message.attempt > 1 and await self._copy_exists(message_id):
            logger.info("reply %s was already accepted by the server before a crash; not sending again", message_id)
            return SendResult(external_id=message_id, meta={"email_recovered_from_copy": True})
        with override(message.language):  # the subject line speaks the reply's language
            mail = compose_reply(
                from_address=self._address,
                to_address=message.address,
                body=message.text,
                message_id=message_id,
                original_subject=email_meta.get("subject"),
                in_reply_to=email_meta.get("in_reply_to"),
                references=email_meta.get("references") or (),
                ticket_id=message.ticket_public_id,
                from_name=self._settings.email_from_name,
                automatic=automatic,
            )
        raw = mail.as_bytes(policy=policy.SMTP)
        envelope_sender = "" if automatic else self._address
        recipients = [message.address]
        if self._address and self._address != message.address.lower():
            recipients.append(self._address)
        try:
            # One overall bound, below the delivery lease (4 x the network timeout).
            await asyncio.wait_for(self._transmit(envelope_sender, recipients, raw), timeout=2 * self._timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._drop_connection()
            codes = [error.code for error in exc.recipients]
            raise DeliveryError(
                f"recipient refused: {'; '.join(f'{e.code} {e.message}' for e in exc.recipients)}"[:500],
                retryable=not all(code in _PERMANENT for code in codes),
            ) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials, not this message: keep it queued until someone fixes the settings.
            await self._drop_connection()
            raise DeliveryError(f"SMTP login refused ({exc.code}); check CRM_SMTP_USER/PASSWORD") from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop_connection()
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}"[:500], retryable=exc.code not in _PERMANENT) from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            await self._drop_connection()
            raise DeliveryError(f"SMTP unavailable: {type(exc).__name__}: {exc}"[:500]) from exc
        return SendResult(external_id=message_id)

    async def _transmit(self, sender: str, recipients: list[str], raw: bytes) -> None:
        # An idle connection the server closed: one fresh connection, then give up.
        async for attempt in AsyncRetrying(stop=stop_after_attempt(2), reraise=True,
                                           retry=retry_if_exception_type(aiosmtplib.SMTPServerDisconnected)):
            smtp = await self._connection()  # failing to connect is not retried here
            with attempt:
                try:
                    errors, _response = await smtp.sendmail(sender, recipients, raw)
                except aiosmtplib.SMTPServerDisconnected:
                    await self._drop_connection()
                    raise
        if message_refused := errors.get(recipients[0]):
            raise aiosmtplib.SMTPRecipientsRefused([message_refused])

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        settings = self._settings
        if self._context is None:
            self._context = tls_context(settings)
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            tls_context=self._context,
            timeout=self._timeout,
        )
        await smtp.connect()
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            await smtp.login(settings.smtp_user, password)
        self._smtp = smtp
        return smtp

    async def _drop_connection(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except Exception:  # already gone
                pass

    async def _copy_exists(self, message_id: str) -> bool:
        """Our own copy of this reply in the mailbox means the server accepted it already."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(already_in_mailbox, self._settings, message_id), timeout=2 * self._timeout
            )
        except Exception as exc:
            # Cannot tell: sending again risks a duplicate, not sending risks silence. Retry later.
            raise DeliveryError(f"cannot check for an earlier copy over IMAP: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await asyncio.wait_for(smtp.quit(), timeout=self._timeout)
            except Exception:
                smtp.close()
