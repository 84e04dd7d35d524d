"""Citizens' requests for their data or its erasure, awaiting a one-time code (bot.privacy).

Revision ID: 0010_privacy
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_privacy"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("target_identity_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("confirmed_at", _utc(), nullable=True),
        sa.Column("download_hash", sa.String(length=64), nullable=True),
        sa.Column("download_expires_at", _utc(), nullable=True),
        sa.Column("downloaded_at", _utc(), nullable=True),
        sa.Column("code_message_id", sa.Integer(), nullable=True),
        sa.Column("link_message_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('export', 'erase')", name=op.f("ck_privacy_requests_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'exhausted', 'expired', 'superseded')",
            name=op.f("ck_privacy_requests_status"),
        ),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_privacy_requests_citizen_id_citizens")),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identities.id"], name=op.f("fk_privacy_requests_identity_id_channel_identities")
        ),
        sa.ForeignKeyConstraint(
            ["target_identity_id"], ["channel_identities.id"],
            name=op.f("fk_privacy_requests_target_identity_id_channel_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["code_message_id"], ["messages.id"], name=op.f("fk_privacy_requests_code_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["link_message_id"], ["messages.id"], name=op.f("fk_privacy_requests_link_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
        sa.UniqueConstraint("download_hash", name=op.f("uq_privacy_requests_download_hash")),
    )
    op.create_index(op.f("ix_privacy_requests_citizen_id"), "privacy_requests", ["citizen_id"])
    op.create_index(
        op.f("ix_privacy_requests_identity_id_created_at"), "privacy_requests", ["identity_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("privacy_requests")
