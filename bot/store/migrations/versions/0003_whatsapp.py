"""WhatsApp webhook inbox.

Revision ID: 0003_whatsapp
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_whatsapp"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'processing', 'failed')", name=op.f("ck_whatsapp_webhooks_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_webhooks")),
    )
    op.create_index(
        "ix_whatsapp_webhooks_status_next_attempt_at", "whatsapp_webhooks", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_whatsapp_webhooks_status_next_attempt_at", table_name="whatsapp_webhooks")
    op.drop_table("whatsapp_webhooks")
