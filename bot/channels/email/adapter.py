"""The e-mail channel as the runtime sees it (``bot.channels.contract.ChannelAdapter``): a
sender for the outbox and the IMAP reader as a worker of its own (``python -m bot channel email``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.channels.contract import ChannelAdapter

if TYPE_CHECKING:
    from bot.channels.contract import ChannelServices
    from bot.settings import Settings

logger = logging.getLogger(__name__)


def build_sender(settings: Settings):  # noqa: ANN201 - an EmailSender
    from bot.channels.email.sender import EmailSender

    return EmailSender(settings)


def build_preparer(_services: ChannelServices):  # noqa: ANN201 - a delivery Preparer
    """Threads replies the assistant did not write (agents', copies) under the citizen's mail."""
    from bot.channels.email.staff_threading import thread_staff_reply

    return thread_staff_reply


def needs_worker(settings: Settings) -> bool:
    return settings.email_enabled


def delivery_lease(settings: Settings) -> timedelta:
    """A send takes at most 4 network timeouts (IMAP check + SMTP); the lease outlasts that."""
    return timedelta(seconds=6 * settings.network_timeout_seconds)


def run_worker(services: ChannelServices) -> int:
    from bot.channels.email.sender import EmailSender
    from bot.channels.email.worker import EmailWorker

    settings = services.settings
    sender = EmailSender(settings)
    delivery = services.delivery_service(
        {"email": sender}, preparers={"email": build_preparer(services)}, lease=delivery_lease(settings)
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with asyncio.Runner() as runner:
        worker = EmailWorker(settings, services.sessions, services.conversation, delivery, run_async=runner.run)
        logger.info("e-mail worker reading %s on %s", settings.imap_mailbox, settings.imap_host)
        try:
            worker.run(stop)
        finally:
            runner.run(sender.aclose())
    return 0


ADAPTER = ChannelAdapter(
    name="email",
    build_sender=build_sender,
    build_preparer=build_preparer,
    run_worker=run_worker,
    needs_worker=needs_worker,
)
