"""Photos, locations and other non-text messages: kept, attached to an open ticket or
answered with a request for words; never sent to Rasa, never lost."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.outbox.delivery import PENDING, SENT
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import Message
from bot.tickets.models import TicketEvent
from bot.tickets.service import open_or_join_ticket


class NoRasa:
    def send(self, **_kw):
        raise AssertionError("a message without words must not reach Rasa")


def _conversation(db_url: str) -> Conversation:
    settings = Settings(api_keys="k" * 20, database_url=db_url, privacy_notice_channels="")  # the first-contact notice: tests/privacy
    return Conversation(settings, session_factory(db_url), NoRasa())


def _photo(**kw) -> InboundMessage:
    return InboundMessage(
        channel="telegram", sender="77", text="", external_id=kw.pop("external_id", "u1"), kind="photo",
        metadata={"attachment": {"file_id": "AgAD", "width": 800}}, **kw,
    )


def test_photo_without_ticket_asks_for_text_and_is_stored(db_url: str) -> None:
    handled = _conversation(db_url).handle_inbound(_photo(), replies_in_response=False)
    assert handled.handling == "attachment_unhandled"
    assert "describe" in handled.replies[0]
    with session_factory(db_url)() as session:
        stored = session.get(Message, handled.message_id)
        assert stored.meta == {"attachment": {"file_id": "AgAD", "width": 800}, "kind": "photo"}
        assert session.get(Message, handled.reply_ids[0]).delivery_status == PENDING


def test_photo_joins_the_open_ticket(db_url: str) -> None:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "telegram", "77")
        report, _ = record_inbound(session, identity, "There is a pothole on Mill Road")
        ticket, _ = open_or_join_ticket(session, inbound=report, reason="report_problem", department="roads")
        public_id = ticket.public_id
    handled = _conversation(db_url).handle_inbound(_photo(), replies_in_response=True)
    assert handled.handling == "attachment_added"
    assert handled.ticket.id == public_id and public_id in handled.replies[0]
    with session_factory(db_url)() as session:
        assert session.get(Message, handled.reply_ids[0]).delivery_status == SENT
        kinds = list(session.scalars(select(TicketEvent.kind).order_by(TicketEvent.id)))
        assert kinds == ["created", "citizen_message"]


def test_redelivered_photo_is_not_answered_twice(db_url: str) -> None:
    conversation = _conversation(db_url)
    first = conversation.handle_inbound(_photo(), replies_in_response=False)
    again = conversation.handle_inbound(_photo(), replies_in_response=False)
    assert again.duplicate and again.message_id == first.message_id
    with session_factory(db_url)() as session:
        assert session.scalar(select(Message.id).where(Message.direction == "out").limit(2).offset(1)) is None
