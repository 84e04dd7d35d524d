"""Erasure: afterwards no table of either database (the store and Rasa's tracker), and no
stored file, holds the citizen's address, name or words; counts and the bystander stay."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.privacy.erase import ERASED, ErasureRefused, erase_and_purge, erase_citizen
from bot.settings import Settings
from bot.staff.models import AuditLog
from bot.store.db import session_factory
from bot.store.models import Citizen, Message
from bot.tickets.models import Ticket
from tests.api.api_client import api_client
from tests.privacy.helpers import (
    BYSTANDER_TEXT,
    NEEDLES,
    TEXTS,
    build_citizen,
    create_tracker,
    find_in_database,
    find_in_files,
    message_count,
    sqlite_dir,
)


def _settings(db_url: str) -> Settings:
    return Settings(_env_file=None, api_keys="test-key-0123456789abcdef", database_url=db_url)


def _counts(db_url: str) -> tuple:
    with session_factory(db_url)() as session:
        per_department = session.execute(
            sa.select(Ticket.department, Ticket.status, sa.func.count()).group_by(Ticket.department, Ticket.status)
            .order_by(Ticket.department, Ticket.status)).all()
        messages = session.execute(
            sa.select(Message.channel, Message.direction, sa.func.count()).group_by(Message.channel, Message.direction)
            .order_by(Message.channel, Message.direction)).all()
    return per_department, messages


def test_nothing_of_the_citizen_is_left_anywhere(db_url: str) -> None:
    settings = _settings(db_url)
    with api_client(db_url) as client:
        built = build_citizen(client, db_url)
    create_tracker(settings.tracker_url, built.senders, list(TEXTS))
    # The data really is everywhere before.
    before = find_in_database(db_url, NEEDLES)
    assert any(f.startswith("messages.text") for f in before)
    assert any(f.startswith("email_inbound.") for f in before)
    assert find_in_database(settings.tracker_url, NEEDLES)
    counts = _counts(db_url)
    held_before = message_count(db_url, built.citizen_id)

    report = erase_and_purge(session_factory(db_url), settings, built.citizen_id, actor="supervisor:maria",
                             reason="Request by letter, ref DPO-2026-12")

    assert report.complete and report.held == []
    assert report.tracker_events == len(built.senders) * len(TEXTS)
    assert find_in_database(db_url, NEEDLES) == []
    assert find_in_database(settings.tracker_url, NEEDLES) == []
    directory = sqlite_dir(db_url)
    if directory is not None:  # the SQLite files themselves, free pages and WAL included
        assert find_in_files(directory, NEEDLES) == []
    # Statistics keep their counts; the bystander keeps everything.
    assert _counts(db_url) == counts
    assert message_count(db_url, built.citizen_id) == held_before
    assert find_in_database(db_url, ("Oswin Pettigrew",)) != []
    assert find_in_database(settings.tracker_url, ("Oswin Pettigrew",)) != []
    with session_factory(db_url)() as session:
        citizen = session.get(Citizen, built.citizen_id)
        assert citizen.erased_at is not None and citizen.display_name is None
        texts = set(session.scalars(sa.select(Message.text).where(Message.citizen_id == built.citizen_id)))
        assert texts == {ERASED}
        entry = session.scalars(sa.select(AuditLog).where(AuditLog.action == "privacy.erase")).one()
        assert entry.actor == "supervisor:maria" and entry.target == f"citizen:{citizen.public_id}"
        assert entry.detail["reason"] == "Request by letter, ref DPO-2026-12"
        assert entry.detail["messages"] > 0
        bystander_texts = set(session.scalars(sa.select(Message.text).where(Message.citizen_id == built.bystander_id)))
        assert BYSTANDER_TEXT in bystander_texts


def test_an_open_ticket_is_held_and_finished_later(db_url: str) -> None:
    from bot.privacy.jobs import job
    from bot.tickets.service import change_status

    settings = _settings(db_url)
    with api_client(db_url) as client:
        built = build_citizen(client, db_url)
        # A new case, still open: under legal hold.
        from tests.api.api_client import post
        from tests.privacy.helpers import WEB_SENDER
        held = post(client, {"channel": "web", "sender": WEB_SENDER, "text": "Willowmere bins were not collected"})
        held_id = held.json()["handling"]["ticket"]["id"]
    sessions = session_factory(db_url)
    report = erase_and_purge(sessions, settings, built.citizen_id, actor="system", reason="citizen request")
    assert [h.id for h in report.held] == [held_id] and not report.complete
    left = find_in_database(db_url, NEEDLES)
    assert left and all(f.split(".")[0] in ("messages", "tickets", "ticket_events", "channel_identities")
                        for f in left), left
    with sessions() as session:
        assert session.scalars(sa.select(Ticket.subject).where(Ticket.public_id == held_id)).one() != ERASED
    # Nothing to finish while the case is open; once it is closed, the job erases the rest.
    assert job(sessions, settings).citizens_finished == 0
    with sessions.begin() as session:
        ticket = session.scalars(sa.select(Ticket).where(Ticket.public_id == held_id)).one()
        change_status(session, ticket, "closed", actor="agent:ines")
    assert job(sessions, settings).citizens_finished == 1
    assert find_in_database(db_url, NEEDLES) == []
    assert job(sessions, settings).citizens_finished == 0  # idempotent


def test_erasure_needs_a_reason_and_a_citizen(db_url: str) -> None:
    with session_factory(db_url)() as session:
        with pytest.raises(ErasureRefused):
            erase_citizen(session, 12345, actor="system", reason="x")
        citizen = Citizen()
        session.add(citizen)
        session.flush()
        with pytest.raises(ErasureRefused):
            erase_citizen(session, citizen.id, actor="system", reason="   ")
