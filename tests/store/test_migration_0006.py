"""Migration 0006 scopes idempotency keys to the sender without losing a row that points at a message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.store.db import make_engine, upgrade_database

_MESSAGE = (
    "INSERT INTO messages (id, citizen_id, identity_id, channel, direction, text, created_at, external_id, meta,"
    " delivery_attempts) VALUES (:id, 1, :identity, 'web', :direction, :text, CURRENT_TIMESTAMP, :external_id, '{}', 0)"
)


def test_0006_keeps_referencing_rows_and_scopes_keys_to_the_sender(backend: str, new_database: Callable[[str], str]) -> None:
    url = new_database(backend)
    upgrade_database(url, "0005")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO citizens (id, public_id, created_at) VALUES (1, 'c', CURRENT_TIMESTAMP)"))
            for identity, address in [(1, "A"), (2, "B")]:
                connection.execute(sa.text(
                    "INSERT INTO channel_identities (id, citizen_id, channel, address, public_id, created_at)"
                    " VALUES (:id, 1, 'web', :address, :address, CURRENT_TIMESTAMP)"
                ), {"id": identity, "address": address})
            connection.execute(sa.text(_MESSAGE), {"id": 1, "identity": 1, "direction": "in", "text": "complaint", "external_id": "m1"})
            connection.execute(sa.text(_MESSAGE), {"id": 2, "identity": 1, "direction": "out", "text": "reply", "external_id": "out-1"})
            connection.execute(sa.text("UPDATE messages SET reply_to_id = 1 WHERE id = 2"))
            connection.execute(sa.text("INSERT INTO message_parts (message_id, channel, external_id) VALUES (2, 'web', 'out-1b')"))
        upgrade_database(url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT message_id, external_id FROM message_parts")).all() == [(2, "out-1b")]
            assert connection.execute(sa.text("SELECT id, reply_to_id FROM messages ORDER BY id")).all() == [(1, None), (2, 1)]
        with engine.begin() as connection:  # another sender's m1 is its own message
            connection.execute(sa.text(_MESSAGE), {"id": 3, "identity": 2, "direction": "in", "text": "hello", "external_id": "m1"})
        with pytest.raises(IntegrityError), engine.begin() as connection:  # the same sender's m1 is still a duplicate
            connection.execute(sa.text(_MESSAGE), {"id": 4, "identity": 1, "direction": "in", "text": "again", "external_id": "m1"})
        if backend == "sqlite":
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
