"""Identity linking: one-time link codes and the record of citizen merges.

Revision ID: 0003_core
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_core"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("target_identity_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'used', 'exhausted', 'expired', 'superseded')",
            name=op.f("ck_link_codes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identities.id"], name=op.f("fk_link_codes_identity_id_channel_identities")
        ),
        sa.ForeignKeyConstraint(
            ["target_identity_id"],
            ["channel_identities.id"],
            name=op.f("fk_link_codes_target_identity_id_channel_identities"),
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_link_codes_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
    )
    op.create_index(op.f("ix_link_codes_identity_id_created_at"), "link_codes", ["identity_id", "created_at"])
    op.create_index(
        op.f("ix_link_codes_target_identity_id_created_at"), "link_codes", ["target_identity_id", "created_at"]
    )

    op.create_table(
        "citizen_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("kept_citizen_id", sa.Integer(), nullable=False),
        sa.Column("merged_citizen_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("link_code_id", sa.Integer(), nullable=True),
        sa.Column("moved_identity_ids", sa.JSON(), nullable=False),
        sa.Column("identities_moved", sa.Integer(), nullable=False),
        sa.Column("messages_moved", sa.Integer(), nullable=False),
        sa.Column("tickets_moved", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["kept_citizen_id"], ["citizens.id"], name=op.f("fk_citizen_merges_kept_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(
            ["merged_citizen_id"], ["citizens.id"], name=op.f("fk_citizen_merges_merged_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(
            ["link_code_id"], ["link_codes.id"], name=op.f("fk_citizen_merges_link_code_id_link_codes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_merges")),
    )
    op.create_index(op.f("ix_citizen_merges_kept_citizen_id"), "citizen_merges", ["kept_citizen_id"])
    op.create_index(op.f("ix_citizen_merges_merged_citizen_id"), "citizen_merges", ["merged_citizen_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_citizen_merges_merged_citizen_id"), table_name="citizen_merges")
    op.drop_index(op.f("ix_citizen_merges_kept_citizen_id"), table_name="citizen_merges")
    op.drop_table("citizen_merges")
    op.drop_index(op.f("ix_link_codes_target_identity_id_created_at"), table_name="link_codes")
    op.drop_index(op.f("ix_link_codes_identity_id_created_at"), table_name="link_codes")
    op.drop_table("link_codes")
