"""Handling a stored webhook delivery: answer its messages, record its statuses.

Runs right after the webhook has answered Meta (a background task of that
request) and, for deliveries that were interrupted, from a sweeper in the API
process. Running a delivery twice is harmless: messages are keyed by their
wamid, so a message already stored is not answered again, and its replies that
are still pending are delivered, never re-sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.whatsapp import inbox
from bot.channels.whatsapp.payload import ParsedMessage, StatusUpdate, parse_webhook
from bot.channels.whatsapp.statuses import apply_status
from bot.channels.whatsapp.window import release_held
from bot.core.conversation import Conversation
from bot.outbox.delivery import DeliveryService
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.store.models import Message
from bot.texts import text as catalogue_text

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 10.0

# The reply to a choice whose data is not one of ours (its bot.texts key).
MALFORMED_CHOICE_REPLY = "whatsapp.malformed_choice"


class WebhookProcessor:
    def __init__(
        self,
        *,
        phone_number_id: str,
        sessions: sessionmaker[Session],
        conversation: Conversation,
        delivery: DeliveryService,
    ) -> None:
        self._phone_number_id = phone_number_id
        self._sessions = sessions
        self._conversation = conversation
        self._delivery = delivery
        # One lock per citizen while their messages are being handled, so a burst of
        # messages is answered in the order it arrived.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def store(self, body: str) -> int:
        with self._sessions.begin() as session:
            return inbox.store(session, body)

    async def process(self, row_id: int) -> None:
        """Handle one stored delivery if nobody else is; never raises."""
        try:
            claimed = await run_in_threadpool(self._claim, row_id)
        except Exception:
            logger.exception("could not claim WhatsApp webhook %s; the sweeper will retry", row_id)
            return
        if claimed is None:
            return
        body, attempt = claimed
        try:
            # From the second attempt on, an earlier one died part-way: a message it stored
            # but did not answer is answered now.
            await self._handle(body, resume=attempt > 1)
        except Exception as exc:
            logger.exception("handling WhatsApp webhook %s failed; it will be retried", row_id)
            try:
                status = await run_in_threadpool(self._retry_later, row_id, f"{type(exc).__name__}: {exc}")
            except Exception:
                logger.exception("could not reschedule WhatsApp webhook %s; its lease will expire", row_id)
                return
            if status == inbox.FAILED:
                logger.error("WhatsApp webhook %s failed for good; kept in whatsapp_webhooks", row_id)
            return
        try:
            await run_in_threadpool(self._finish, row_id)
        except Exception:
            logger.exception("could not remove handled WhatsApp webhook %s; it will be handled again", row_id)

    async def sweep(self) -> int:
        """Take over deliveries nobody is handling (a crash, a failed attempt now due)."""
        ids = await run_in_threadpool(self._due)
        for row_id in ids:
            await self.process(row_id)
        return len(ids)

    async def run_sweeper(self, stop: asyncio.Event, *, interval: float = SWEEP_SECONDS) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # the database went away for a moment
                logger.exception("WhatsApp inbox sweep failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass

    async def _handle(self, body: str, *, resume: bool) -> None:
        events = parse_webhook(json.loads(body), phone_number_id=self._phone_number_id)
        for problem in events.problems:
            logger.warning("WhatsApp webhook: %s", problem)
        for parsed in events.messages:
            lock = self._locks.get(parsed.inbound.sender)
            if lock is None:
                lock = self._locks[parsed.inbound.sender] = asyncio.Lock()
            async with lock:
                await self._message(parsed, resume=resume)
        for status in events.statuses:
            await run_in_threadpool(self._status, status)

    async def _message(self, parsed: ParsedMessage, *, resume: bool) -> None:
        if not parsed.answer:
            await run_in_threadpool(self._store_only, parsed)
            return
        if parsed.malformed_choice:
            handled = await run_in_threadpool(
                lambda: self._conversation.answer_directly(
                    parsed.inbound, catalogue_text(MALFORMED_CHOICE_REPLY), handling="choice_invalid", replies_in_response=False
                )
            )
        else:
            handled = await run_in_threadpool(
                lambda: self._conversation.handle_inbound(
                    parsed.inbound, replies_in_response=False, resume_unanswered=resume
                )
            )
        released = [] if handled.duplicate else await run_in_threadpool(self._release_held, handled.message_id)
        # Replies still pending from an interrupted earlier attempt go out now; sent ones are not re-sent.
        await self._delivery.deliver_many([*released, *handled.reply_ids])

    def _store_only(self, parsed: ParsedMessage) -> None:
        inbound = parsed.inbound
        with self._sessions.begin() as session:
            identity = get_or_create_identity(session, inbound.channel, inbound.sender)
            record_inbound(
                session, identity, inbound.text, external_id=inbound.external_id,
                meta={**inbound.metadata, "kind": inbound.kind},
            )

    def _release_held(self, message_id: int) -> list[int]:
        with self._sessions.begin() as session:
            return release_held(session, session.get(Message, message_id).identity_id)

    def _status(self, status: StatusUpdate) -> None:
        with self._sessions.begin() as session:
            apply_status(session, status)

    def _claim(self, row_id: int) -> tuple[str, int] | None:
        with self._sessions.begin() as session:
            return inbox.claim(session, row_id)

    def _due(self) -> list[int]:
        with self._sessions() as session:
            return inbox.due(session)

    def _finish(self, row_id: int) -> None:
        with self._sessions.begin() as session:
            inbox.finish(session, row_id)

    def _retry_later(self, row_id: int, error: str) -> str:
        with self._sessions.begin() as session:
            return inbox.retry_later(session, row_id, error)
