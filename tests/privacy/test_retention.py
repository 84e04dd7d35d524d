"""Retention on a store with three years of history, on SQLite and PostgreSQL, with a fixed clock.

Rasa's tracker store is where production has it: in the same PostgreSQL database, or in its own
SQLite file next to the SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bot import cli
from bot.channels.email.models import EmailInbound, EmailMailbox
from bot.console.models import SignInAttempt
from bot.identity.models import CitizenMerge, LinkCode
from bot.privacy.retention import KINDS, job, run_retention
from bot.settings import Settings, get_settings
from bot.staff.models import AuditLog
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.models import Ticket, TicketEvent

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=3 * 365)
RECENTLY = NOW - timedelta(days=1)

_metadata = sa.MetaData()
# Rasa's SQLTrackerStore table, the columns retention reads.
EVENTS = sa.Table(
    "events", _metadata,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)), sa.Column("timestamp", sa.Float), sa.Column("data", sa.Text),
)


@dataclass
class World:
    settings: Settings
    tracker: sa.Engine
    resolved_ticket: int
    open_ticket: int
    open_citizens_chat: int
    old_chat: list[int]
    recent_chat: int


@pytest.fixture
def tracker_url(db_url: str, tmp_path) -> Iterator[str]:
    url = db_url if db_url.startswith("postgresql") else f"sqlite:///{tmp_path / 'rasa_tracker.db'}"
    engine = sa.create_engine(url)
    _metadata.create_all(engine)
    yield url
    _metadata.drop_all(engine)
    engine.dispose()


def _message(session, identity, text: str, at: datetime, ticket: Ticket | None = None, direction: str = "in") -> int:
    row = Message(citizen_id=identity.citizen_id, identity_id=identity.id, channel=identity.channel, direction=direction,
                  text=text, created_at=at, ticket_id=ticket.id if ticket else None, meta={"subject": text},
                  delivery_status="sent" if direction == "out" else None)
    session.add(row)
    session.flush()
    return row.id


def _ticket(session, identity, public_id: str, status: str, at: datetime) -> Ticket:
    ticket = Ticket(public_id=public_id, citizen_id=identity.citizen_id, identity_id=identity.id, department="waste",
                    status=status, reason="complaint", subject="Broken bin outside 5 Elm Street", created_at=at,
                    updated_at=at, due_at=at + timedelta(days=1))
    session.add(ticket)
    session.flush()
    session.add(TicketEvent(ticket_id=ticket.id, kind="note", actor="agent:ana", body="Spoke to Mrs Smith", created_at=at))
    return ticket


@pytest.fixture
def world(db_url: str, tracker_url: str) -> World:
    settings = Settings(_env_file=None, api_keys="k" * 24, database_url=db_url, tracker_database_url=tracker_url,
                        retention_batch_size=2)
    with session_factory(db_url).begin() as session:
        ana = get_or_create_identity(session, "web", "ana")
        resolved = _ticket(session, ana, "AAA-AAA-AAA", "resolved", LONG_AGO)
        _message(session, ana, "My bin was not emptied", LONG_AGO, resolved)
        _message(session, ana, "Thank you, ticket AAA-AAA-AAA", LONG_AGO, resolved, direction="out")

        ben = get_or_create_identity(session, "sms", "+34600000001")
        still_open = _ticket(session, ben, "BBB-BBB-BBB", "open", LONG_AGO)
        _message(session, ben, "The street light is out", LONG_AGO, still_open)
        bens_chat = _message(session, ben, "When are bins collected?", LONG_AGO)

        cleo = get_or_create_identity(session, "telegram", "4242")
        old_chat = [_message(session, cleo, "Opening hours?", LONG_AGO),
                    _message(session, cleo, "We open at 9.", LONG_AGO, direction="out"),
                    _message(session, cleo, "Parking?", LONG_AGO)]
        recent = _message(session, cleo, "Library hours?", RECENTLY)

        mailbox = EmailMailbox(account="city", name="INBOX")
        session.add(mailbox)
        session.flush()
        for key, at, status in (("<old@x>", LONG_AGO, "handled"), ("<new@x>", RECENTLY, "handled"),
                                ("<unhandled@x>", LONG_AGO, "received")):
            session.add(EmailInbound(message_key=key, mailbox_id=mailbox.id, uidvalidity=1, uid=len(key),
                                     sender="ana@example.org", subject="My bin", body="Dear city, my bin",
                                     headers=[["From", "Ana <ana@example.org>"]], raw_size=10, raw_sha256="0" * 64,
                                     status=status, received_at=at, outcome="error: ana@example.org said"))

        session.add_all([AuditLog(at=NOW - timedelta(days=6 * 365), actor="ana", action="signin"),
                         AuditLog(at=RECENTLY, actor="ana", action="signin"),
                         SignInAttempt(username="ana", ip="10.0.0.1", at=NOW - timedelta(days=100)),
                         SignInAttempt(username="ana", ip="10.0.0.1", at=RECENTLY)])
        dan = get_or_create_identity(session, "email", "dan@example.org")
        for status in ("expired", "used"):
            session.add(LinkCode(identity_id=cleo.id, target_identity_id=dan.id, code_hash=status[0] * 64,
                                 created_at=LONG_AGO, expires_at=LONG_AGO, status=status))
        session.flush()
        used = session.scalars(select(LinkCode).where(LinkCode.status == "used")).one()
        session.add(CitizenMerge(kept_citizen_id=cleo.citizen_id, merged_citizen_id=dan.citizen_id, actor="citizen",
                                 link_code_id=used.id, created_at=LONG_AGO))
        ids = World(settings, sa.create_engine(tracker_url), resolved.id, still_open.id, bens_chat, old_chat, recent)
    with ids.tracker.begin() as connection:
        for sender, at in (("s1", NOW - timedelta(days=100)), ("s1", NOW - timedelta(days=95)), ("s2", RECENTLY)):
            connection.execute(EVENTS.insert().values(sender_id=sender, type_name="user", timestamp=at.timestamp()))
    yield ids
    ids.tracker.dispose()


EXPECTED = {
    "ticket_messages": 2, "tickets": 1, "conversation_messages": 3, "email_copies": 1,
    "trackers": 2, "audit_log": 1, "sign_in_attempts": 1, "link_codes": 1,
}


def _snapshot(db_url: str, tracker: sa.Engine) -> dict[str, object]:
    with session_factory(db_url)() as session:
        snap: dict[str, object] = {
            "messages": sorted(session.execute(select(Message.id, Message.text, Message.anonymised_at)).all()),
            "tickets": sorted(session.execute(select(Ticket.id, Ticket.subject)).all()),
            "events": sorted(session.scalars(select(TicketEvent.body)).all()),
            "email": sorted(session.execute(select(EmailInbound.id, EmailInbound.sender, EmailInbound.body)).all()),
            "counts": [session.scalar(select(func.count()).select_from(t)) for t in (AuditLog, SignInAttempt, LinkCode)],
        }
    with tracker.connect() as connection:
        snap["tracker"] = connection.execute(select(func.count()).select_from(EVENTS)).scalar()
    return snap


def test_dry_run_counts_and_changes_nothing(world: World, db_url: str) -> None:
    before = _snapshot(db_url, world.tracker)
    report = run_retention(session_factory(db_url), world.settings, NOW, dry_run=True)
    assert report.counts == EXPECTED and report.dry_run
    assert _snapshot(db_url, world.tracker) == before
    assert any("would erase" in line for line in report.lines())


def test_real_run_does_what_the_dry_run_said_then_nothing_the_second_time(world: World, db_url: str) -> None:
    sessions = session_factory(db_url)
    report = run_retention(sessions, world.settings, NOW)
    assert report.counts == EXPECTED and set(report.counts) == set(KINDS)
    with sessions() as session:
        resolved = session.get(Ticket, world.resolved_ticket)
        assert resolved.subject == "" and resolved.anonymised_at == NOW and resolved.status == "resolved"
        assert {e.body for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == resolved.id))} == {""}
        on_resolved = session.scalars(select(Message).where(Message.ticket_id == resolved.id)).all()
        assert len(on_resolved) == 2 and all(m.text == "" and m.meta == {} and m.anonymised_at for m in on_resolved)
        # The rows stay for the statistics: channel, direction and time are kept.
        assert {(m.channel, m.direction) for m in on_resolved} == {("web", "in"), ("web", "out")}
        for message_id in world.old_chat:
            assert session.get(Message, message_id).text == ""
        assert session.get(Message, world.recent_chat).text == "Library hours?"
        mail = {m.message_key: m for m in session.scalars(select(EmailInbound))}
        assert mail["<old@x>"].sender is None and mail["<old@x>"].body == "" and mail["<old@x>"].headers == []
        assert mail["<old@x>"].outcome == "error" and mail["<old@x>"].anonymised_at == NOW
        assert mail["<new@x>"].body and mail["<unhandled@x>"].body  # recent, and not handled yet
        assert session.scalars(select(LinkCode.status)).all() == ["used"]  # the merge cites it
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 1
        assert session.scalar(select(func.count()).select_from(SignInAttempt)) == 1
    with world.tracker.connect() as connection:
        assert connection.execute(select(EVENTS.c.sender_id)).scalars().all() == ["s2"]

    after = _snapshot(db_url, world.tracker)
    again = run_retention(sessions, world.settings, NOW + timedelta(hours=1))
    assert again.total == 0 and _snapshot(db_url, world.tracker) == after


def test_a_citizen_with_an_open_ticket_is_not_touched(world: World, db_url: str) -> None:
    run_retention(session_factory(db_url), world.settings, NOW + timedelta(days=3650))
    with session_factory(db_url)() as session:
        still_open = session.get(Ticket, world.open_ticket)
        assert still_open.subject.startswith("Broken bin") and still_open.anonymised_at is None
        texts = session.scalars(select(Message.text).where(Message.citizen_id == still_open.citizen_id)).all()
        assert sorted(texts) == ["The street light is out", "When are bins collected?"]
        assert session.get(Message, world.open_citizens_chat).anonymised_at is None


def test_the_scheduler_job_and_the_command(world: World, db_url: str, monkeypatch, capsys) -> None:
    class Parts:
        sessions = session_factory(db_url)
        settings = world.settings

    assert job(Parts(), NOW).counts == EXPECTED
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_TRACKER_DATABASE_URL", world.settings.tracker_database_url)
    get_settings.cache_clear()
    try:
        assert cli.main(["privacy", "retention", "--dry-run"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "dry run" in out and "ticket_messages" in out and "total would erase or anonymise: 0" in out


def test_a_naive_clock_is_refused(world: World, db_url: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run_retention(session_factory(db_url), world.settings, datetime(2030, 1, 1))


def test_an_agents_reason_for_a_vulnerable_flag_is_anonymised(world: World, db_url: str) -> None:
    sessions = session_factory(db_url)
    with sessions.begin() as session:
        resolved = session.get(Ticket, world.resolved_ticket)
        resolved.vulnerable, resolved.vulnerable_reason = True, "agent ana: she is blind"
    run_retention(sessions, world.settings, NOW)
    with sessions() as session:
        resolved = session.get(Ticket, world.resolved_ticket)
        assert resolved.vulnerable and resolved.vulnerable_reason == "agent"
