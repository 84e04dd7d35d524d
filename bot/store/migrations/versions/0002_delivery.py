"""Delivery of outbound messages: status, attempts, backoff, lease, author.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Existing outbound rows were answered in the HTTP response of the generic API,
so they are marked sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "delivery_status IN ('pending', 'sending', 'sent', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author", sa.String(100), nullable=True))
        batch.add_column(sa.Column("delivery_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivery_error", sa.Text(), nullable=True))
        batch.create_check_constraint("delivery_status", _STATUSES)
        batch.create_index("ix_messages_delivery_status_next_attempt_at", ["delivery_status", "next_attempt_at"])
    op.execute(
        "UPDATE messages SET delivery_status = 'sent', sent_at = created_at, author = 'assistant' "
        "WHERE direction = 'out'"
    )
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("delivery_attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_delivery_status_next_attempt_at")
        batch.drop_constraint("ck_messages_delivery_status", type_="check")
        for column in (
            "delivery_error", "sent_at", "lease_expires_at", "next_attempt_at",
            "delivery_attempts", "delivery_status", "author",
        ):
            batch.drop_column(column)
