"""The provider's ids of a split outbound message's later parts, for receipt lookup by index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Until now the ids were only in ``messages.meta["whatsapp_parts"]`` and a receipt for a
later part searched the metadata of every recent reply; they are copied here, and the
sender no longer writes that metadata key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    parts = op.create_table(
        "message_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_parts_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_parts")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_message_parts_channel_external_id")),
    )
    op.create_index(op.f("ix_message_parts_message_id"), "message_parts", ["message_id"])

    messages = sa.table(
        "messages",
        sa.column("id", sa.Integer()),
        sa.column("channel", sa.String()),
        sa.column("direction", sa.String()),
        sa.column("external_id", sa.String()),
        sa.column("meta", sa.Text()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(messages.c.id, messages.c.channel, messages.c.external_id, sa.cast(messages.c.meta, sa.Text))
        .where(messages.c.direction == "out", sa.cast(messages.c.meta, sa.Text).contains("whatsapp_parts"))
    )
    seen: set[tuple[str, str]] = set()
    copies = []
    for message_id, channel, external_id, meta in rows:
        for part_id in (json.loads(meta or "{}") or {}).get("whatsapp_parts") or []:
            if part_id and part_id != external_id and (channel, part_id) not in seen:
                seen.add((channel, part_id))
                copies.append({"message_id": message_id, "channel": channel, "external_id": part_id})
    if copies:
        op.bulk_insert(parts, copies)


def downgrade() -> None:
    op.drop_index(op.f("ix_message_parts_message_id"), table_name="message_parts")
    op.drop_table("message_parts")
