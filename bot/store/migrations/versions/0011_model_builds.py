"""The KB learning loop: training requests (model_builds) and which model ran when (model_switches).

Revision ID: 0011_model_builds
Revises: 0010_privacy
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_model_builds"
down_revision: str | None = "0010_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_at", _utc(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("model_path", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("kb_commit", sa.String(length=64), nullable=True),
        sa.Column("kb_hash", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'training', 'loaded', 'failed', 'merged')", name=op.f("ck_model_builds_status")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["model_builds.id"], name=op.f("fk_model_builds_merged_into_id_model_builds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_builds")),
    )
    op.create_index(op.f("ix_model_builds_status_requested_at"), "model_builds", ["status", "requested_at"])
    op.create_table(
        "model_switches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("switched_at", _utc(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=True),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("kb_commit", sa.String(length=64), nullable=True),
        sa.Column("kb_hash", sa.String(length=64), nullable=True),
        sa.Column("inputs_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("processes", sa.JSON(), nullable=False),
        sa.CheckConstraint("reason IN ('training', 'rollback', 'start')", name=op.f("ck_model_switches_reason")),
        sa.ForeignKeyConstraint(["build_id"], ["model_builds.id"], name=op.f("fk_model_switches_build_id_model_builds")),
        sa.ForeignKeyConstraint(
            ["previous_id"], ["model_switches.id"], name=op.f("fk_model_switches_previous_id_model_switches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_switches")),
    )


def downgrade() -> None:
    op.drop_table("model_switches")
    op.drop_table("model_builds")
