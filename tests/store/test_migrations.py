from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from bot.store.db import Base, make_engine, upgrade_database
from bot.tickets.models import Ticket
from bot.tickets.priority import PRIORITIES
from bot.tickets.status import STATUSES


def test_migrations_match_models(backend: str, new_database: Callable[[str], str]) -> None:
    url = new_database(backend)
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
            assert diff == [], f"models and migrations differ; write a migration for: {diff}"
            assert len(context.get_current_heads()) == 1, "several migration heads: add a merge revision"
    finally:
        engine.dispose()


def _insert_ticket(session, *, status: str = "new", priority: str = "normal") -> None:
    from bot.store.citizens import get_or_create_identity
    from bot.store.types import utcnow

    identity = get_or_create_identity(session, "web", "constraints")
    session.execute(
        sa.insert(Ticket).values(
            public_id=f"T{status[:4]}{priority[:4]}",
            citizen_id=identity.citizen_id,
            identity_id=identity.id,
            department="waste",
            priority=priority,
            status=status,
            reason="complaint",
            subject="s",
            created_at=utcnow(),
            updated_at=utcnow(),
            due_at=utcnow(),
        )
    )


@pytest.mark.parametrize("status", STATUSES)
def test_database_accepts_every_status_the_code_knows(session, status: str) -> None:
    """Check constraints are frozen in migrations; this catches a status added only in code."""
    _insert_ticket(session, status=status)


@pytest.mark.parametrize("priority", PRIORITIES)
def test_database_accepts_every_priority_the_code_knows(session, priority: str) -> None:
    _insert_ticket(session, priority=priority)


@pytest.mark.parametrize("field", ["status", "priority"])
def test_database_refuses_unknown_vocabulary(session, field: str) -> None:
    with pytest.raises(IntegrityError):
        _insert_ticket(session, **{field: "bogus"})


def test_migration_0005_copies_recorded_part_ids(backend: str, new_database: Callable[[str], str]) -> None:
    """Replies sent before the parts table keep their later parts' receipts."""
    url = new_database(backend)
    upgrade_database(url, "0004")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO citizens (id, public_id, created_at) VALUES (1, 'c', CURRENT_TIMESTAMP)"))
            connection.execute(sa.text(
                "INSERT INTO channel_identities (id, citizen_id, channel, address, public_id, created_at)"
                " VALUES (1, 1, 'whatsapp', '15550001', 'i', CURRENT_TIMESTAMP)"
            ))
            for message_id, external_id, meta in [
                (1, "wamid.a", '{"whatsapp_parts": ["wamid.a", "wamid.b", "wamid.c"]}'),
                (2, "wamid.d", '{"whatsapp": {"statuses": {}}}'),
            ]:
                connection.execute(
                    sa.text(
                        "INSERT INTO messages (id, citizen_id, identity_id, channel, direction, text, created_at,"
                        " external_id, meta, delivery_attempts) VALUES (:id, 1, 1, 'whatsapp', 'out', 't',"
                        " CURRENT_TIMESTAMP, :external_id, :meta, 1)"
                    ),
                    {"id": message_id, "external_id": external_id, "meta": meta},
                )
        upgrade_database(url)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT message_id, channel, external_id FROM message_parts ORDER BY external_id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "whatsapp", "wamid.b"), (1, "whatsapp", "wamid.c")]
    finally:
        engine.dispose()
