"""KB proposals: agents propose entries and phrasings, supervisors approve or reject them.

Revision ID: 0003_insights
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_insights"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kb_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("target_entry_id", sa.String(length=128), nullable=True),
        sa.Column("entry_id", sa.String(length=128), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("source_message_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", _utc(), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('new_entry', 'new_phrasing')", name=op.f("ck_kb_proposals_kind")),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected')", name=op.f("ck_kb_proposals_status")
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_kb_proposals_ticket_id_tickets")),
        sa.ForeignKeyConstraint(
            ["source_message_id"], ["messages.id"], name=op.f("fk_kb_proposals_source_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_proposals")),
    )
    op.create_index(op.f("ix_kb_proposals_status_created_at"), "kb_proposals", ["status", "created_at"])
    op.create_index(op.f("ix_kb_proposals_ticket_id"), "kb_proposals", ["ticket_id"])
    op.create_index(op.f("ix_kb_proposals_source_message_id"), "kb_proposals", ["source_message_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_kb_proposals_source_message_id"), table_name="kb_proposals")
    op.drop_index(op.f("ix_kb_proposals_ticket_id"), table_name="kb_proposals")
    op.drop_index(op.f("ix_kb_proposals_status_created_at"), table_name="kb_proposals")
    op.drop_table("kb_proposals")
