"""Seeding for the notices tests: citizens who wrote on a channel, consents, a staff member."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from bot.console.auth import CurrentStaff
from bot.identity.consent import give_consent
from bot.settings import PROJECT_ROOT, Settings
from bot.staff.models import StaffUser
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.store.models import ChannelIdentity
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from bot.tickets.service import open_or_join_ticket

API_KEY = "notices-tests-api-key-0123456789"


class RecordingSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent = []

    async def send(self, outbound):
        from bot.outbox.outbound import SendResult

        self.sent.append(outbound)
        return SendResult(external_id=f"{self.channel}-{len(self.sent)}")


def settings(db_url: str, **overrides) -> Settings:
    values = {"api_keys": API_KEY, "database_url": db_url, "kb_dir": PROJECT_ROOT / "knowledge_base",
              "privacy_notice_channels": ""}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def citizen(session: Session, channel: str, address: str, *, hours_ago: float = 1.0, purposes=(),
            text: str = "hello") -> ChannelIdentity:
    """A citizen who last wrote ``hours_ago`` on ``channel`` and agreed to ``purposes``."""
    identity = get_or_create_identity(session, channel, address)
    inbound, _ = record_inbound(session, identity, text)
    inbound.created_at = utcnow() - timedelta(hours=hours_ago)
    for purpose in purposes:
        give_consent(session, identity.citizen_id, purpose, channel=channel, source="test")
    session.flush()
    return identity


def ticket_of(session: Session, identity: ChannelIdentity, text: str = "My bin was not emptied",
              department: str = "waste", *, hours_ago: float = 0.0) -> Ticket:
    identity = session.merge(identity)
    inbound, _ = record_inbound(session, identity, text)
    inbound.created_at = utcnow() - timedelta(hours=hours_ago)
    ticket, _ = open_or_join_ticket(session, inbound=inbound, reason="complaint", department=department,
                                    priority="normal", settings=settings("sqlite://"))
    return ticket


def staff(session: Session, username: str = "sue", role: str = "supervisor") -> CurrentStaff:
    user = StaffUser(username=username, display_name=username.title(), role=role, password_hash="x", active=True)
    session.add(user)
    session.flush()
    return CurrentStaff(user_id=user.id, username=username, display_name=user.display_name, role=role,
                        departments=frozenset({"waste"}), csrf_token="", session_id=0)
