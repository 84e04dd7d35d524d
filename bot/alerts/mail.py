"""Delivering queued staff e-mails (``staff_notifications``) over SMTP, with retries.

Staff alerts are not citizen messages: they do not belong in the citizens' outbox, its channel
senders or the e-mail channel's threading, and they must work when the e-mail channel (IMAP) is
off. So this is a small SMTP client of its own (the standard library's ``smtplib``, the same
CRM_SMTP_* settings and CA file as the e-mail channel) and a queue with a lease and a stored
backoff. Delivery is at least once: a crash after the server accepted a mail and before the row
says "sent" sends it again when the lease runs out; the Message-ID is the row's, so mail clients
show the repeat as one message.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.models import FAILED, PENDING, SENT, StaffNotification

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 20


class MailError(Exception):
    """A mail that did not go out; ``retryable`` False when no retry can help (a refused address)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Mailer(Protocol):
    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None: ...


class SmtpMailer:
    """One connection per batch is plenty for alerts; every call is bounded by the network timeout."""

    def __init__(self, settings: Settings) -> None:
        if settings.alert_sender is None:
            raise ValueError("staff e-mail needs CRM_SMTP_HOST and CRM_ALERT_FROM_ADDRESS (or CRM_EMAIL_ADDRESS)")
        self._settings = settings
        self._sender = settings.alert_sender

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._settings.email_tls_ca_file is not None:
            context.load_verify_locations(cafile=str(self._settings.email_tls_ca_file))
        return context

    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        settings = self._settings
        mail = EmailMessage()
        mail["From"] = formataddr((settings.email_from_name or "", self._sender))
        mail["To"] = to
        mail["Subject"] = subject
        mail["Message-ID"] = f"<{message_id}@{self._sender.rsplit('@', 1)[-1]}>"
        mail["Date"] = format_datetime(datetime.now().astimezone())
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: nobody should auto-reply to an alert
        mail.set_content(body)
        timeout = settings.network_timeout_seconds
        try:
            if settings.smtp_security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host or "", settings.smtp_port,
                                                      timeout=timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=timeout)
            with smtp:
                if settings.smtp_security == "starttls":
                    smtp.starttls(context=self._context())
                if settings.smtp_user:
                    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                    smtp.login(settings.smtp_user, password)
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            # Our credentials, not this mail: keep it queued until someone fixes the settings.
            raise MailError(f"SMTP login refused ({exc.smtp_code}); check CRM_SMTP_USER/PASSWORD") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _msg in exc.recipients.values()]
            raise MailError(f"recipient refused: {codes}", retryable=not all(500 <= c < 600 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise MailError(f"SMTP {exc.smtp_code}", retryable=not 500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP unavailable: {type(exc).__name__}: {exc}") from exc


def backoff(attempts: int, settings: Settings) -> timedelta:
    seconds = settings.delivery_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.delivery_backoff_max_seconds))


def _claim(session: Session, now: datetime) -> list[StaffNotification]:
    """Take up to BATCH due rows under a lease; a row another sender holds is left to it."""
    ids = session.scalars(
        select(StaffNotification.id)
        .where(
            StaffNotification.status == PENDING,
            StaffNotification.next_attempt_at <= now,
            or_(StaffNotification.lease_until.is_(None), StaffNotification.lease_until < now),
        )
        .order_by(StaffNotification.next_attempt_at, StaffNotification.id)
        .limit(BATCH)
    ).all()
    claimed = []
    for row_id in ids:
        taken = session.execute(
            update(StaffNotification)
            .where(
                StaffNotification.id == row_id,
                StaffNotification.status == PENDING,
                or_(StaffNotification.lease_until.is_(None), StaffNotification.lease_until < now),
            )
            .values(lease_until=now + LEASE)
        ).rowcount
        if taken:
            claimed.append(row_id)
    return list(session.scalars(select(StaffNotification).where(StaffNotification.id.in_(claimed))))


def deliver_pending(sessions: sessionmaker[Session], mailer: Mailer, settings: Settings, *, now: datetime) -> int:
    """Send what is due; returns how many went out. Each row's outcome is its own unit of work."""
    with sessions.begin() as session:
        rows = [(r.id, r.to_address, r.subject, r.body, r.attempts) for r in _claim(session, now)]
    sent = 0
    for row_id, to, subject, body, attempts in rows:
        error: MailError | None = None
        try:
            mailer.send(to=to, subject=subject, body=body, message_id=f"staff-notification-{row_id}")
        except MailError as exc:
            error = exc
        with sessions.begin() as session:
            row = session.get(StaffNotification, row_id)
            if row is None:
                continue
            row.attempts = attempts + 1
            row.lease_until = None
            if error is None:
                row.status, row.sent_at, row.last_error = SENT, now, None
                sent += 1
                continue
            row.last_error = str(error)[:500]
            if not error.retryable or row.attempts >= settings.alert_mail_max_attempts:
                row.status = FAILED
                logger.warning("staff e-mail %d failed for good after %d attempt(s): %s", row_id, row.attempts, error)
            else:
                row.next_attempt_at = now + backoff(row.attempts, settings)
                logger.info("staff e-mail %d not sent (attempt %d), retrying later: %s", row_id, row.attempts, error)
    return sent
