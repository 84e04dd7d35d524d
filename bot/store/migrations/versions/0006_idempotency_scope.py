"""Idempotency keys count per sender: unique on (identity, direction, external_id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

The key was unique per channel, so a second sender reusing another's ``message_id`` was
answered with the first sender's reply and ticket, and its own message was dropped. An
identity belongs to one channel, so every row the old constraint allowed is allowed by the
new one. Outbound rows are still looked up by the provider's id alone (WhatsApp receipts),
so that lookup keeps an index. The downgrade fails if two senders now share an id.

SQLite rebuilds the table for this. With foreign keys on, dropping the old table would
delete every message part (ON DELETE CASCADE) and trip the other tables' references, so
they are off for the rebuild and checked afterwards, as SQLite's documentation prescribes
for table rebuilds; the pragma works only outside a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(change: Callable[[], None]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        change()
        return
    context = op.get_context()
    _outside_transaction(context, bind, "PRAGMA foreign_keys=OFF")
    change()
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the rebuilt messages table leaves dangling references: {broken[:5]}")
    # On failure the transaction is rolled back and the connection discarded (migrations/env.py),
    # so nothing half-done is committed and no connection keeps foreign keys off.
    _outside_transaction(context, bind, "PRAGMA foreign_keys=ON")


def _outside_transaction(context, bind, pragma: str) -> None:
    """The store's engine opens every transaction itself (``BEGIN IMMEDIATE``, bot.store.db), even
    in an autocommit block: end that one first, or the pragma is silently ignored."""
    with context.autocommit_block():
        bind.exec_driver_sql("COMMIT")
        bind.exec_driver_sql(pragma)


def upgrade() -> None:
    _rebuild(_upgrade)


def downgrade() -> None:
    _rebuild(_downgrade)


def _upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_channel_direction_external_id", type_="unique")
        batch.create_unique_constraint(
            "uq_messages_identity_id_direction_external_id", ["identity_id", "direction", "external_id"]
        )
        batch.create_index("ix_messages_channel_direction_external_id", ["channel", "direction", "external_id"])


def _downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_channel_direction_external_id")
        batch.drop_constraint("uq_messages_identity_id_direction_external_id", type_="unique")
        batch.create_unique_constraint(
            "uq_messages_channel_direction_external_id", ["channel", "direction", "external_id"]
        )
