"""The "Do you mean ...?" offers: what a citizen was asked to pick from, and what became of it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kb_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=16), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("settled_at", _utc(), nullable=True),
        sa.Column("chosen_entry", sa.String(length=128), nullable=True),
        sa.Column("settled_by_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'answered', 'declined', 'superseded', 'expired')", name=op.f("ck_kb_offers_status")
        ),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_kb_offers_citizen_id_citizens")),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identities.id"], name=op.f("fk_kb_offers_identity_id_channel_identities")
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_kb_offers_message_id_messages")),
        sa.ForeignKeyConstraint(["settled_by_id"], ["messages.id"], name=op.f("fk_kb_offers_settled_by_id_messages")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_kb_offers_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_offers")),
        sa.UniqueConstraint("token", name=op.f("uq_kb_offers_token")),
    )
    op.create_index(op.f("ix_kb_offers_citizen_id"), "kb_offers", ["citizen_id"])
    op.create_index(op.f("ix_kb_offers_identity_id"), "kb_offers", ["identity_id"])
    op.create_index(op.f("ix_kb_offers_message_id"), "kb_offers", ["message_id"])
    op.create_index(op.f("ix_kb_offers_ticket_id"), "kb_offers", ["ticket_id"])
    op.create_index(op.f("ix_kb_offers_status_expires_at"), "kb_offers", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_table("kb_offers")
