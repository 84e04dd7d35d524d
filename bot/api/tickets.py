"""Staff side of the API: read a ticket, reply to the citizen, and let pull-only clients fetch replies.

Routes stay thin: the work is in ``bot.tickets.replies``, ``bot.tickets.detail``
and ``bot.channels.web.pull``, which the agent console calls too. The app
mounts this router behind the same API key as ``/api/v1/messages``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session, sessionmaker

from bot.api.errors import ApiError
from bot.api.schemas import unstorable
from bot.channels.web.pull import fetch_pending, is_pull_channel
from bot.outbox.delivery import DeliveryService
from bot.settings import Settings
from bot.store.models import Message
from bot.tickets.detail import TicketNotFound, find_ticket, ticket_detail
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.replies import EmptyReply, TicketClosed, reply_to_ticket

logger = logging.getLogger(__name__)

AGENT_PREFIX = "agent:"
MAX_REPLY_CHARS = 20_000


class ReplyIn(BaseModel):
    text: str = Field(max_length=MAX_REPLY_CHARS, description="The reply, sent to the citizen as written.")
    author: str = Field(
        min_length=1,
        max_length=50,
        description="Who writes it (a staff username); recorded as `agent:<author>` on the message and the ticket.",
        examples=["ana"],
    )

    @field_validator("text", "author")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or only whitespace")
        if reason := unstorable(value):
            raise ValueError(reason)
        return value

    @field_validator("author")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\t"):
            raise ValueError("must be a single line")
        return value.strip()


class DeliveryOut(BaseModel):
    status: Literal["pending", "sending", "sent", "failed"] | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    method: Literal["push", "pull", "unavailable"] = Field(
        description="push: a channel sender delivers it and retries failures; pull: the citizen's client "
        "fetches it (web chat, generic API); unavailable: the channel is not configured here, so it waits."
    )


class MessageRecordOut(BaseModel):
    id: int
    direction: Literal["in", "out"]
    channel: str
    text: str
    created_at: datetime
    author: str | None = Field(description="`assistant` or `agent:<name>` for outbound messages; null for the citizen's.")
    handling: str | None = Field(description="What the assistant did with an inbound message.")
    delivery: DeliveryOut | None = Field(description="Outbound messages only.")


class ReplyAccepted(MessageRecordOut):
    ticket_id: str


class EventOut(BaseModel):
    kind: str
    actor: str
    public: bool
    body: str
    created_at: datetime
    from_status: str | None
    to_status: str | None
    message_id: int | None


class TicketDetailOut(BaseModel):
    id: str
    status: str
    department: str
    priority: str
    reason: str
    subject: str
    language: str | None = Field(default=None, description="ISO 639-1 code the citizen wrote in when it was opened; null: the KB's default language.")
    created_at: datetime
    updated_at: datetime
    due_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reply_channel: str = Field(description="The channel a reply written now goes to: the citizen's latest on this ticket.")
    messages: list[MessageRecordOut]
    events: list[EventOut]


class PulledReplyOut(BaseModel):
    id: int
    text: str
    created_at: datetime
    sender: Literal["assistant", "staff"]
    ticket_id: str | None


class PulledRepliesOut(BaseModel):
    replies: list[PulledReplyOut]
    last_id: int | None = Field(description="Pass as `after` on the next request.")


def _error_for(exc: Exception) -> ApiError:
    if isinstance(exc, TicketNotFound):
        if exc.mistyped:
            return ApiError(404, "ticket_not_found", f"{exc}")
        return ApiError(404, "ticket_not_found", f"no ticket with ID {exc.raw_id}")
    if isinstance(exc, TicketClosed):
        return ApiError(409, "ticket_closed", str(exc))
    if isinstance(exc, EmptyReply):
        return ApiError(422, "invalid_request", [{"field": "text", "message": str(exc)}])
    raise exc


def build_router(settings: Settings, sessions: sessionmaker[Session], delivery: DeliveryService) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tickets"])
    channels = settings.channel_list

    def method(channel: str) -> str:
        if delivery.can_send(channel):
            return "push"
        return "pull" if is_pull_channel(channel) else "unavailable"

    def delivery_out(message: Message) -> DeliveryOut | None:
        if message.direction != "out":
            return None
        return DeliveryOut(
            status=message.delivery_status,
            attempts=message.delivery_attempts or 0,
            last_error=message.delivery_error,
            next_attempt_at=message.next_attempt_at if message.delivery_status == "pending" else None,
            sent_at=message.sent_at,
            method=method(message.channel),
        )

    def message_out(message: Message) -> MessageRecordOut:
        return MessageRecordOut(
            id=message.id,
            direction=message.direction,
            channel=message.channel,
            text=message.text,
            created_at=message.created_at,
            author=message.author,
            handling=message.handling,
            delivery=delivery_out(message),
        )

    def event_out(event: TicketEvent) -> EventOut:
        return EventOut(
            kind=event.kind,
            actor=event.actor,
            public=event.public,
            body=event.body,
            created_at=event.created_at,
            from_status=event.from_status,
            to_status=event.to_status,
            message_id=event.message_id,
        )

    def store_reply(raw_id: str, body: ReplyIn) -> ReplyAccepted:
        author = body.author if body.author.startswith(AGENT_PREFIX) else AGENT_PREFIX + body.author
        try:
            with sessions.begin() as session:
                ticket: Ticket = find_ticket(session, raw_id, for_update=True)
                message = reply_to_ticket(session, ticket, body.text, author=author)
                return ReplyAccepted(ticket_id=ticket.public_id, **message_out(message).model_dump())
        except (TicketNotFound, TicketClosed, EmptyReply) as exc:
            raise _error_for(exc) from None

    async def deliver_now(message_id: int) -> None:
        try:
            await delivery.deliver(message_id)
        except Exception:  # the store hiccuped; the message is still pending and the worker retries it
            logger.exception("immediate delivery of message %s failed; left to the delivery worker", message_id)

    @router.post(
        "/tickets/{ticket_id}/replies",
        status_code=202,
        response_model=ReplyAccepted,
        summary="Reply to the citizen on a ticket",
        description="Stores the reply as the ticket's public update and queues it on the channel the citizen "
        "last used for this ticket. Delivery is tried at once after the response; failures are retried with "
        "backoff by `python -m bot deliveries`. Read the outcome with `GET /api/v1/tickets/{ticket_id}`.",
        responses={
            401: {"description": "missing or wrong API key"},
            404: {"description": "no such ticket, or the ID is mistyped"},
            409: {"description": "the ticket is closed"},
            422: {"description": "text or author missing or empty"},
        },
    )
    async def post_reply(ticket_id: str, body: ReplyIn, background: BackgroundTasks) -> ReplyAccepted:
        stored = await run_in_threadpool(store_reply, ticket_id, body)
        if stored.delivery is not None and stored.delivery.method == "push":
            background.add_task(deliver_now, stored.id)
        return stored

    def read_ticket(raw_id: str) -> TicketDetailOut:
        try:
            with sessions() as session:
                ticket = find_ticket(session, raw_id)
                detail = ticket_detail(session, ticket)
                return TicketDetailOut(
                    id=ticket.public_id,
                    status=ticket.status,
                    department=ticket.department,
                    priority=ticket.priority,
                    reason=ticket.reason,
                    subject=ticket.subject,
                    language=ticket.language,
                    created_at=ticket.created_at,
                    updated_at=ticket.updated_at,
                    due_at=ticket.due_at,
                    first_response_at=ticket.first_response_at,
                    resolved_at=ticket.resolved_at,
                    closed_at=ticket.closed_at,
                    reply_channel=detail.reply_channel,
                    messages=[message_out(m) for m in detail.messages],
                    events=[event_out(e) for e in detail.events],
                )
        except TicketNotFound as exc:
            raise _error_for(exc) from None

    @router.get(
        "/tickets/{ticket_id}",
        response_model=TicketDetailOut,
        summary="A ticket with its messages, their delivery status, and its events",
        responses={401: {"description": "missing or wrong API key"}, 404: {"description": "no such ticket"}},
    )
    async def get_ticket(ticket_id: str) -> TicketDetailOut:
        return await run_in_threadpool(read_ticket, ticket_id)

    def pull(channel: str, sender: str, after: int | None) -> PulledRepliesOut:
        with sessions.begin() as session:
            messages = fetch_pending(session, channel, sender, after)
            tickets = {m.ticket_id: None for m in messages if m.ticket_id is not None}
            for ticket_id in tickets:
                tickets[ticket_id] = session.get(Ticket, ticket_id).public_id
            replies = [
                PulledReplyOut(
                    id=m.id,
                    text=m.text,
                    created_at=m.created_at,
                    sender="assistant" if m.author in (None, "assistant") else "staff",
                    ticket_id=tickets.get(m.ticket_id) if m.ticket_id is not None else None,
                )
                for m in messages
            ]
        return PulledRepliesOut(replies=replies, last_id=replies[-1].id if replies else after)

    @router.get(
        "/conversations/{channel}/{sender:path}/replies",
        response_model=PulledRepliesOut,
        summary="Fetch replies waiting for a web chat or generic API client",
        description="Returns outbound messages (agents' replies) waiting for this sender and marks them sent. "
        "Pass the id of the last reply you have shown as `after`: replies after it that were fetched before "
        "are returned again, so a lost response loses nothing; without `after`, only never-fetched replies.",
        responses={401: {"description": "missing or wrong API key"},
                   422: {"description": "unknown channel, or a channel that delivers its own messages"}},
    )
    async def get_replies(
        channel: str, sender: str, after: int | None = Query(default=None, ge=0)
    ) -> PulledRepliesOut:
        if channel not in channels:
            raise ApiError(422, "invalid_request", [{"field": "channel", "message": f"unknown channel {channel!r}; known channels: {', '.join(channels)}"}])
        if reason := unstorable(sender):
            raise ApiError(422, "invalid_request", [{"field": "sender", "message": reason}])
        if not is_pull_channel(channel):
            raise ApiError(
                422,
                "invalid_request",
                [{"field": "channel", "message": f"the {channel} channel delivers its replies itself; they cannot be fetched"}],
            )
        return await run_in_threadpool(pull, channel, sender, after)

    return router
