"""The e-mail channel as the registry sees it: a sender for the delivery queue and
the IMAP reader as a worker of its own (``python -m bot channel email``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from datetime import timedelta

from bot.settings import Settings

logger = logging.getLogger(__name__)


def build_sender(settings: Settings):  # noqa: ANN201 - an EmailSender
    from bot.channels.email.sender import EmailSender

    return EmailSender(settings)


def build_preparer(settings: Settings):  # noqa: ANN201 - a delivery Preparer
    """Threads replies the assistant did not write (agents', copies) under the citizen's mail."""
    from bot.channels.email.staff_threading import thread_staff_reply

    return thread_staff_reply


def needs_worker(settings: Settings) -> bool:
    return settings.email_enabled


def delivery_lease(settings: Settings) -> timedelta:
    """A send takes at most 4 network timeouts (IMAP check + SMTP); the lease outlasts that."""
    return timedelta(seconds=6 * settings.network_timeout_seconds)


def run_worker(settings: Settings) -> int:
    from bot.outbox.delivery import DeliveryService
    from bot.channels.email.sender import EmailSender
    from bot.channels.email.worker import EmailWorker
    from bot.core.conversation import Conversation
    from bot.core.rasa_client import RasaClient
    from bot.store.db import session_factory

    sessions = session_factory(settings.database_url)
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)
    sender = EmailSender(settings)
    delivery = DeliveryService(
        sessions,
        {"email": sender},
        preparers={"email": build_preparer(settings)},
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=settings.delivery_backoff_seconds,
        backoff_max_seconds=settings.delivery_backoff_max_seconds,
        lease=delivery_lease(settings),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with asyncio.Runner() as runner:
        worker = EmailWorker(
            settings, sessions, Conversation(settings, sessions, rasa), delivery, run_async=runner.run
        )
        logger.info("e-mail worker reading %s on %s", settings.imap_mailbox, settings.imap_host)
        try:
            worker.run(stop)
        finally:
            runner.run(sender.aclose())
            rasa.close()
    return 0
