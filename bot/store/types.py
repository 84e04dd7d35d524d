"""Column types shared by the store's models.

Every timestamp in the store is an aware UTC datetime. SQLite has no time zone
support, so without this type the same code would get aware datetimes from
PostgreSQL and naive ones from SQLite, and comparisons between them would fail
only on one backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The one clock of the store, so tests and code agree on aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns aware UTC datetimes, on SQLite too.

    Naive datetimes are refused: guessing their zone is how off-by-hours
    deadlines get into a database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column; use bot.store.types.utcnow()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text without an offset; fixed UTC keeps text order == time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def in_list(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's SQL for a vocabulary, so the database refuses what the code would."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class HasId(Protocol):
    """A row as a lower layer needs it: its id (a ticket passed to the store or the outbox, which never import tickets)."""

    id: int
