"""Outbound messages as a durable queue in the interaction store.

An outbound message is stored ``pending`` in the same unit of work that
decides to send it (an agent's reply, the assistant's answer), so a crash
never loses it. Delivery claims a message with a conditional UPDATE (``pending``
-> ``sending`` plus a lease), so two workers never send the same row; a
worker that dies leaves an expired lease, and the message is tried again.
That is at-least-once for the rare crash between the provider accepting a
message and us recording it; channels whose providers deduplicate (e-mail
Message-ID) pass the stored id on so the retry is recognisable.

Service functions take a session and never commit; ``DeliveryService`` owns
the units of work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Union

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot.observability.metrics import DELIVERY, count_delivery, timed
from bot.outbox.outbound import ChannelSender, DeliveryError, OutboundMessage, SendResult
from bot.store.messages import _storable
from bot.store.models import ChannelIdentity, Message, MessagePart
from bot.store.types import HasId, utcnow

logger = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"

# How long a worker may hold a message before another worker assumes it died.
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Settled:
    """A preparer's verdict that the channel's sender must not send this message.

    ``FAILED``: nothing can reach the citizen this way and an agent must act
    (``reason`` becomes the delivery error). ``SENT``: it reached, or will reach,
    the citizen another way (the preparer records how on the message).
    ``then_deliver`` are messages the preparer queued (a copy on another
    channel), tried at once after the verdict is committed.
    """

    status: str
    reason: str
    then_deliver: tuple[int, ...] = ()


# Optional, per channel (``build_preparer`` in the channel's adapter): looks at the store
# before a message goes out, inside the transaction that claims it, so whatever it
# changes or queues commits with the claim. Returns the message to send (possibly
# changed, e.g. as a WhatsApp template), None to send it unchanged, or a Settled verdict.
Preparer = Callable[[Session, Message, OutboundMessage], Union[OutboundMessage, Settled, None]]

# Whatever the channel, checks the runtime registers may stop a message just before it goes out,
# in the same transaction as the claim: a notice whose recipient said "stop" after it was queued.
# They read ``meta[CONDITIONS_META_KEY]``, which the outbox stores and copies but never interprets,
# so that the rules (consent, bot.identity.consent) stay with the packages that own them.
CONDITIONS_META_KEY = "deliver_if"
Guard = Callable[[Session, Message], Union[Settled, None]]


def kept_conditions(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of a message's meta a copy of it must carry (a hand-over to another channel, a
    held reply released later), so that the copy is checked like the original."""
    if meta and CONDITIONS_META_KEY in meta:
        return {CONDITIONS_META_KEY: meta[CONDITIONS_META_KEY]}
    return {}


def queue_outbound(
    session: Session,
    *,
    identity: ChannelIdentity,
    text: str,
    author: str,
    ticket: HasId | None = None,
    reply_to: Message | None = None,
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Message:
    """Store a message for a citizen, ``pending`` and due at once."""
    now = now or utcnow()
    stored_text, stored_meta = _storable(text, meta)
    message = Message(
        citizen_id=identity.citizen_id,
        identity_id=identity.id,
        channel=identity.channel,
        direction="out",
        text=stored_text,
        ticket_id=ticket.id if ticket is not None else (reply_to.ticket_id if reply_to is not None else None),
        reply_to_id=reply_to.id if reply_to is not None else None,
        meta=stored_meta,
        author=author,
        delivery_status=PENDING,
        delivery_attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def mark_sent_in_response(message: Message, now: datetime | None = None) -> None:
    """For channels that return replies in the HTTP response (the generic API)."""
    message.delivery_status = SENT
    message.sent_at = now or utcnow()


def backoff(attempt: int, *, base: float, cap: float) -> timedelta:
    """Delay before attempt ``attempt + 1``: base, 2·base, 4·base, ... capped."""
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempt - 1))))


def _none_in_flight(now: datetime) -> ColumnElement[bool]:
    """No other message to the same address is being sent right now.

    A citizen reads replies in the order they go out, and two workers (the
    turn that wrote the replies and the polling worker that picks up every
    due message) may race for them: while one message to an identity is in
    flight, no other to that identity is taken, so none overtakes another.
    The order is the claimer's: the turn sends its replies in the order it
    wrote them (a held WhatsApp reply first, when the citizen's message
    reopens the window). A message retrying after a provider error holds
    nothing back while it waits; a dead worker's expired lease neither.
    """
    other = aliased(Message)
    return ~exists(
        select(other.id).where(
            other.identity_id == Message.identity_id,
            other.id != Message.id,
            other.direction == "out",
            other.delivery_status == SENDING,
            other.lease_expires_at >= now,
        )
    )


def claim(session: Session, message_id: int, *, now: datetime | None = None, lease: timedelta = LEASE) -> bool:
    """Take a message for sending; False if someone else has it, it is not due, or another to the same address is in flight."""
    now = now or utcnow()
    result = session.execute(
        update(Message)
        .where(
            Message.id == message_id,
            or_(
                (Message.delivery_status == PENDING),
                (Message.delivery_status == SENDING) & (Message.lease_expires_at < now),
            ),
            _none_in_flight(now),
        )
        .values(delivery_status=SENDING, lease_expires_at=now + lease, delivery_attempts=Message.delivery_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def due_ids(session: Session, channels: Iterable[str], *, now: datetime | None = None, limit: int = 50) -> list[int]:
    """Messages a worker should try now: pending and due, or held by a dead worker."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.direction == "out",
                Message.channel.in_(list(channels)),
                or_(
                    (Message.delivery_status == PENDING) & (Message.next_attempt_at <= now),
                    (Message.delivery_status == SENDING) & (Message.lease_expires_at < now),
                ),
                _none_in_flight(now),
            )
            .order_by(Message.next_attempt_at, Message.id)
            .limit(limit)
        )
    )


def record_success(message: Message, result: SendResult, *, now: datetime | None = None) -> None:
    message.delivery_status = SENT
    message.sent_at = now or utcnow()
    message.lease_expires_at = None
    message.delivery_error = None
    if result.external_id is not None and message.external_id is None:
        message.external_id = result.external_id
    if result.meta:
        message.meta = {**(message.meta or {}), **result.meta}
    if result.part_ids:
        known = {part.external_id for part in message.parts} | {message.external_id}
        for part_id in dict.fromkeys(result.part_ids):
            if part_id not in known:
                message.parts.append(MessagePart(channel=message.channel, external_id=part_id))


def record_failure(
    message: Message,
    error: DeliveryError,
    *,
    max_attempts: int,
    base: float,
    cap: float,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    message.lease_expires_at = None
    message.delivery_error = error.reason[:2000]
    if not error.retryable or message.delivery_attempts >= max_attempts:
        message.delivery_status = FAILED
        message.next_attempt_at = None
        return
    delay = backoff(message.delivery_attempts, base=base, cap=cap)
    if error.retry_after is not None:
        delay = max(delay, timedelta(seconds=min(error.retry_after, cap)))
    message.delivery_status = PENDING
    message.next_attempt_at = now + delay


def record_settled(message: Message, settled: Settled, *, now: datetime | None = None) -> None:
    if settled.status not in (SENT, FAILED):
        raise ValueError(f"a preparer settles a message as sent or failed, not {settled.status!r}")
    message.delivery_status = settled.status
    message.lease_expires_at = None
    message.next_attempt_at = None
    if settled.status == SENT:
        message.sent_at = now or utcnow()
        message.delivery_error = None
    else:
        message.delivery_error = settled.reason[:2000]


def to_outbound(session: Session, message: Message) -> OutboundMessage:
    identity = session.get(ChannelIdentity, message.identity_id)
    ticket = message.ticket
    return OutboundMessage(
        message_id=message.id,
        channel=message.channel,
        address=identity.address,
        text=message.text,
        meta=dict(message.meta or {}),
        ticket_public_id=ticket.public_id if ticket is not None else None,
        attempt=message.delivery_attempts,
        language=message.language,
    )


def _result_of(status: str) -> str:
    """An attempt's result in the metrics: sent, retrying (pending again) or failed for good."""
    return {SENT: "sent", PENDING: "retrying"}.get(status, "failed")


class DeliveryService:
    """Sends stored outbound messages through the channels' senders."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: Mapping[str, ChannelSender],
        *,
        max_attempts: int = 8,
        backoff_seconds: float = 5.0,
        backoff_max_seconds: float = 3600.0,
        preparers: Mapping[str, Preparer] | None = None,
        lease: timedelta = LEASE,
        guards: Sequence[Guard] = (),
    ) -> None:
        self._sessions = sessions
        self._guards = tuple(guards)
        # Must outlast the slowest send a sender allows itself, or two workers could send one row.
        self._lease = lease
        self._senders = dict(senders)
        self._preparers = dict(preparers or {})
        self._max_attempts = max_attempts
        self._base = backoff_seconds
        self._cap = backoff_max_seconds

    def can_send(self, channel: str) -> bool:
        """Whether this service pushes messages on ``channel`` (its sender is configured)."""
        return channel in self._senders

    async def deliver(self, message_id: int) -> str | None:
        """Try one message now; returns its delivery status afterwards (None if not ours to send)."""
        with self._sessions.begin() as session:
            message = session.get(Message, message_id)
            if message is None or message.channel not in self._senders:
                return None
            if not claim(session, message_id, lease=self._lease):
                return message.delivery_status
            session.refresh(message)
            channel, retry = message.channel, message.delivery_attempts > 1
            outbound = to_outbound(session, message)
            prepared = self._prepare(session, message, outbound)
            if isinstance(prepared, DeliveryError):
                record_failure(message, prepared, max_attempts=self._max_attempts, base=self._base, cap=self._cap)
                count_delivery(channel, _result_of(message.delivery_status), retry=retry)
                return message.delivery_status
            if isinstance(prepared, Settled):
                logger.info("message %s settled as %s before sending: %s", message_id, prepared.status, prepared.reason)
                record_settled(message, prepared)
                status = message.delivery_status
                count_delivery(channel, f"settled_{status}", retry=retry)
            else:
                outbound = prepared
        if isinstance(prepared, Settled):
            await self.deliver_many(prepared.then_deliver)
            return status
        sender = self._senders[outbound.channel]
        try:
            with timed(DELIVERY):
                result = await sender.send(outbound)
        except DeliveryError as exc:
            error: DeliveryError | None = exc
            result = None
        except Exception as exc:  # a bug or an unexpected provider answer: retry, and log it
            logger.exception("sending message %s on %s failed", message_id, outbound.channel)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
            result = None
        else:
            error = None
        with self._sessions.begin() as session:
            message = session.get(Message, message_id)
            if error is None:
                record_success(message, result)
            else:
                logger.warning("message %s not delivered (attempt %s): %s", message_id, message.delivery_attempts, error.reason)
                record_failure(message, error, max_attempts=self._max_attempts, base=self._base, cap=self._cap)
            count_delivery(channel, _result_of(message.delivery_status), retry=retry)
            return message.delivery_status

    def _prepare(
        self, session: Session, message: Message, outbound: OutboundMessage
    ) -> OutboundMessage | Settled | DeliveryError:
        prepare = self._preparers.get(outbound.channel)
        if prepare is None and not self._guards:
            return outbound
        try:
            with session.begin_nested():  # a failing preparer must not undo the claim
                for guard in self._guards:
                    verdict = guard(session, message)
                    if verdict is not None:
                        return verdict
                prepared = prepare(session, message, outbound) if prepare is not None else None
        except Exception as exc:
            logger.exception("preparing message %s on %s failed", message.id, outbound.channel)
            return DeliveryError(f"preparing the message failed: {type(exc).__name__}: {exc}")
        return outbound if prepared is None else prepared

    async def deliver_many(self, message_ids: Iterable[int], *, settle_seconds: float = 30.0) -> list[str | None]:
        """In order: a citizen reads replies in the order they were written.

        The delivery worker may have taken one of them first, or be sending
        another message to the same citizen (``claim`` then holds ours back);
        we wait, up to ``settle_seconds``, until it is done, so the next one
        goes out now rather than at the worker's next pass, and never early."""
        statuses: list[str | None] = []
        for message_id in message_ids:
            status = await self.deliver(message_id)
            if status == SENDING:
                status = await self._until(message_id, settle_seconds, self._in_flight)
            elif status == PENDING and await asyncio.to_thread(self._held_back, message_id):
                await self._until(message_id, settle_seconds, self._held_back)
                status = await self.deliver(message_id)
            statuses.append(status)
        return statuses

    def _in_flight(self, message_id: int) -> bool:
        with self._sessions() as session:
            return session.scalar(select(Message.delivery_status).where(Message.id == message_id)) == SENDING

    def _held_back(self, message_id: int) -> bool:
        """Due, and waiting only because another message to the same address is in flight."""
        now = utcnow()
        with self._sessions() as session:
            due = session.scalar(
                select(Message.id).where(
                    Message.id == message_id, Message.delivery_status == PENDING, Message.next_attempt_at <= now
                )
            )
            if due is None:
                return False
            free = session.scalar(select(Message.id).where(Message.id == message_id, _none_in_flight(now)))
            return free is None

    async def _until(self, message_id: int, seconds: float, waiting: Callable[[int], bool]) -> str | None:
        deadline = time.monotonic() + seconds
        while await asyncio.to_thread(waiting, message_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with self._sessions() as session:
            return session.scalar(select(Message.delivery_status).where(Message.id == message_id))

    async def run_once(self, *, limit: int = 50) -> int:
        with self._sessions() as session:
            ids = due_ids(session, self._senders, limit=limit)
        await self.deliver_many(ids)
        return len(ids)

    async def run_forever(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # the database went away for a moment; keep the worker alive
                logger.exception("delivery pass failed")
                handled = 0
            if not handled:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=idle_seconds)
                except asyncio.TimeoutError:
                    pass
