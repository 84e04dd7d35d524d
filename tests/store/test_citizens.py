from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory, session_scope
from bot.store.models import ChannelIdentity, Citizen


def test_first_contact_creates_citizen_and_identity(session) -> None:
    identity = get_or_create_identity(session, "sms", "+15551234567")
    assert identity.id is not None and identity.citizen_id is not None
    assert len(identity.public_id) == 32 and int(identity.public_id, 16) >= 0
    assert identity.public_id != identity.citizen.public_id
    assert "+1555" not in identity.public_id


def test_same_address_returns_same_identity(session) -> None:
    first = get_or_create_identity(session, "sms", "+15551234567")
    second = get_or_create_identity(session, "sms", "+15551234567")
    assert first.id == second.id
    assert session.scalar(select(func.count(Citizen.id))) == 1


def test_same_address_on_other_channel_is_another_identity(session) -> None:
    sms = get_or_create_identity(session, "sms", "+15551234567")
    whatsapp = get_or_create_identity(session, "whatsapp", "+15551234567")
    assert sms.id != whatsapp.id
    assert sms.citizen_id != whatsapp.citizen_id  # linking people across channels is a deliberate act
    assert sms.public_id != whatsapp.public_id


def test_channel_address_is_unique_in_the_database(session) -> None:
    identity = get_or_create_identity(session, "email", "a@example.org")
    session.add(ChannelIdentity(citizen_id=identity.citizen_id, channel="email", address="a@example.org"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_failed_create_leaves_outer_transaction_usable(session) -> None:
    """The SAVEPOINT must confine a failure to the insert, not poison the unit of work."""
    kept = get_or_create_identity(session, "web", "kept")
    with pytest.raises(IntegrityError):
        get_or_create_identity(session, "web", None)  # type: ignore[arg-type]  (NOT NULL violation)
    assert get_or_create_identity(session, "web", "kept").id == kept.id


def test_loser_of_a_race_gets_the_winners_identity(db_url: str, backend: str, monkeypatch) -> None:
    """Deterministic race: B looks, finds nothing, and inserts while A's insert is uncommitted."""
    from bot.store import citizens

    lookups_by_b = []
    real_find = citizens._find_identity

    def counting_find(session, channel, address):
        found = real_find(session, channel, address)
        if threading.current_thread().name == "b":
            lookups_by_b.append(found)
        return found

    monkeypatch.setattr(citizens, "_find_identity", counting_find)
    flushed = threading.Event()
    may_commit = threading.Event()

    def a() -> int:
        with session_scope(db_url) as session:
            identity = get_or_create_identity(session, "sms", "+15550009999")
            flushed.set()
            assert may_commit.wait(10)
            return identity.id

    def b() -> int:
        threading.current_thread().name = "b"
        assert flushed.wait(10)
        with session_scope(db_url) as session:
            return get_or_create_identity(session, "sms", "+15550009999").id

    with ThreadPoolExecutor(2) as pool:
        fa, fb = pool.submit(a), pool.submit(b)
        time.sleep(0.3)  # let B block on A's row (PostgreSQL) or on the write lock (SQLite)
        may_commit.set()
        assert fa.result(timeout=20) == fb.result(timeout=20)

    if backend == "postgresql":
        # B really took the IntegrityError path: looked (nothing), lost the insert, looked again.
        assert lookups_by_b[0] is None and lookups_by_b[-1] is not None and len(lookups_by_b) == 2
    else:
        # SQLite: BEGIN IMMEDIATE made B wait for A before even looking.
        assert len(lookups_by_b) == 1 and lookups_by_b[0] is not None
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count(ChannelIdentity.id))) == 1
        assert session.scalar(select(func.count(Citizen.id))) == 1


def test_many_concurrent_first_messages(db_url: str) -> None:
    workers = 8
    barrier = threading.Barrier(workers)

    def contact() -> int:
        barrier.wait(10)
        with session_scope(db_url) as session:
            return get_or_create_identity(session, "telegram", "42").id

    with ThreadPoolExecutor(workers) as pool:
        results = [f.result(timeout=30) for f in [pool.submit(contact) for _ in range(workers)]]
    assert len(set(results)) == 1
    with session_factory(db_url)() as session:
        assert session.scalar(select(func.count(Citizen.id))) == 1
