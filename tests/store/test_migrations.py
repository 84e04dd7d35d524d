from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from bot.store.db import Base, make_engine, upgrade_database
from bot.store.models import Ticket
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
