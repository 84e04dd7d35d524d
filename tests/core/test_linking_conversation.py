"""The whole linking flow through Conversation.handle_inbound, as citizens live it.

A fake Rasa runs the real turn outcomes (escalation, ticket status), so the
test shows what matters: after the code, a ticket opened on Telegram is the
same citizen's ticket when asked about from e-mail.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.core.turn_outcomes import Turn, escalate_turn, ticket_status
from bot.identity.models import LinkCode
from bot.runtime import Runtime
from bot.settings import Settings, get_settings
from bot.store.db import session_factory
from bot.store.messages import citizen_history
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.tickets import ids

API_KEY = "test-key-0123456789abcdef"
EMAIL_ON = dict(
    imap_host="127.0.0.1", email_address="city@example.org", imap_user="city", imap_password="imap-pass",
    smtp_host="127.0.0.1", telegram_bot_token="123456:test-token",
)


class FakeRasa:
    """Status questions go to the status action, everything else is a reported problem."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.seen.append(text)
        status = "status" in text.lower()
        turn = Turn(
            sender_id=sender, text=text, intent="ticket_status" if status else "report_problem", confidence=0.99,
            metadata=metadata, kb_match={}, entities=[],
        )
        services = Runtime(get_settings())
        replies = ticket_status(turn, services) if status else escalate_turn(turn, services)
        return [{"recipient_id": sender, "text": f"{r.response} {r.variables.get('ticket_id', '')}".strip()} for r in replies]


@pytest.fixture
def conversation(db_url: str, monkeypatch: pytest.MonkeyPatch):
    # The turn outcomes run as in the action server: configured by the environment.
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_API_KEYS", API_KEY)
    get_settings.cache_clear()
    rasa = FakeRasa()
    settings = Settings(api_keys=API_KEY, database_url=db_url, privacy_notice_channels="", **EMAIL_ON)  # the first-contact notice: tests/privacy
    yield Conversation(settings, session_factory(db_url), rasa), rasa
    get_settings.cache_clear()


def _say(conversation: Conversation, channel: str, sender: str, text: str, external_id: str | None = None):
    return conversation.handle_inbound(
        InboundMessage(channel=channel, sender=sender, text=text, external_id=external_id), replies_in_response=False
    )


def _latest_code(db_url: str, address: str) -> str:
    with session_factory(db_url)() as session:
        text = session.scalars(
            select(Message.text)
            .join(ChannelIdentity, Message.identity_id == ChannelIdentity.id)
            .where(ChannelIdentity.address == address, Message.direction == "out")
            .order_by(Message.id.desc())
        ).first()
    return re.search(r"Your code is (\d{6})", text).group(1)


def test_link_by_code_then_one_history_and_one_ticket(conversation, db_url: str) -> None:
    conv, rasa = conversation
    opened = _say(conv, "telegram", "4242", "The streetlight on Elm Street is out")
    ticket_id = opened.ticket.id
    assert opened.handling == "escalated"

    # Before linking, e-mail is a stranger to that ticket.
    assert _say(conv, "email", "ana@example.org", f"What is the status of {ticket_id}?").replies == ["utter_ticket_not_found"]

    asked = _say(conv, "telegram", "4242", "/link email ana@example.org", external_id="tg-10")
    assert asked.handling == "identity_link" and "6-digit code" in asked.replies[0]
    # A redelivered update is not answered twice, and sends no second code.
    assert _say(conv, "telegram", "4242", "/link email ana@example.org", external_id="tg-10").duplicate
    with session_factory(db_url)() as session:
        assert session.scalar(select(func.count()).select_from(LinkCode)) == 1
        reply = session.get(Message, asked.reply_ids[0])
        assert (reply.channel, reply.delivery_status) == ("telegram", "pending")
    code = _latest_code(db_url, "ana@example.org")

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "not right" in _say(conv, "telegram", "4242", f"/link {wrong}").replies[0]
    # Typing the code in the e-mail (where it arrived) does not work: it must be typed where it was asked.
    assert "no code waiting" in _say(conv, "email", "ana@example.org", f"/link {code}").replies[0]
    linked = _say(conv, "telegram", "4242", code)
    assert linked.handling == "identity_link" and "now linked" in linked.replies[0]
    assert "no code waiting" in _say(conv, "telegram", "4242", f"/link {code}").replies[0]

    # From e-mail, the Telegram ticket is now the citizen's own ...
    status = _say(conv, "email", "ana@example.org", f"What is the status of {ticket_id}?")
    assert status.replies == [f"utter_ticket_status {ticket_id}"]
    # ... and a new problem reported by e-mail joins it.
    joined = _say(conv, "email", "ana@example.org", "The one on Oak Street is out too")
    assert joined.handling == "ticket_joined" and joined.ticket.id == ticket_id

    with session_factory(db_url)() as session:
        telegram = session.scalars(select(ChannelIdentity).where(ChannelIdentity.channel == "telegram")).one()
        history = citizen_history(session, telegram.citizen_id)
        inbound = [(m.channel, m.text) for m in history if m.direction == "in"]
        assert ("telegram", "The streetlight on Elm Street is out") in inbound
        assert ("email", "The one on Oak Street is out too") in inbound
        assert ("telegram", code) in inbound  # stored exactly as received, like every message
    # Rasa never saw a link command or a code.
    assert not any("/link" in text or code in text for text in rasa.seen)


def test_expired_code_and_bare_digits_after_it(conversation, db_url: str) -> None:
    conv, rasa = conversation
    _say(conv, "telegram", "4242", "/link ana@example.org")
    code = _latest_code(db_url, "ana@example.org")
    with session_factory(db_url).begin() as session:
        session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    late = _say(conv, "telegram", "4242", code)
    assert late.handling == "identity_link" and "expired" in late.replies[0]
    # Without a pending code, six digits are an ordinary message for the assistant.
    assert _say(conv, "telegram", "4242", "123456").handling == "escalated"
    assert rasa.seen == ["123456"]


def test_usage_and_web_channel(conversation, db_url: str) -> None:
    conv, _rasa = conversation
    help_reply = _say(conv, "web", "session-9", "/link").replies[0]
    assert "/link email ana@example.org" in help_reply
    asked = conv.handle_inbound(
        InboundMessage(channel="web", sender="session-9", text="/link email ana@example.org"), replies_in_response=True
    )
    assert "6-digit code" in asked.replies[0]
    with session_factory(db_url)() as session:
        assert session.get(Message, asked.reply_ids[0]).delivery_status == "sent"
    linked = conv.handle_inbound(
        InboundMessage(channel="web", sender="session-9", text=f"/link {_latest_code(db_url, 'ana@example.org')}"),
        replies_in_response=True,
    )
    assert "now linked" in linked.replies[0]


def _letters_only_id() -> str:
    """A valid ID with no digit at all (about one in twenty are), which prose rules could mistake for a word."""
    data = "KMXTRWZQ"
    check = ids._check_symbol(data)
    assert check.isalpha() or not check.isalnum()
    return f"{data[:3]}-{data[3:6]}-{data[6:]}{check}"


def test_status_query_finds_a_letters_only_id_typed_in_lowercase(conversation, monkeypatch) -> None:
    conv, _ = conversation
    ticket_id = _letters_only_id()
    monkeypatch.setattr(ids, "new_ticket_id", lambda: ticket_id)
    assert _say(conv, "telegram", "4343", "The streetlight on Elm Street is out").ticket.id == ticket_id
    status = _say(conv, "telegram", "4343", f"status {ticket_id.replace('-', '').lower()}")
    assert status.replies == [f"utter_ticket_status {ticket_id}"]
