"""Vulnerable citizens: the flag on a ticket with its reason, who and when; the citizen's record.

Revision ID: 0012_vulnerable
Revises: 0011_model_builds
Create Date: 2026-12-07

Plain ``ADD COLUMN`` on both backends (no table rebuild). Existing tickets are not vulnerable:
the rules that would have flagged them only raised their priority, and re-timing open tickets
behind the agents' backs would move deadlines they are already working to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_vulnerable"
down_revision: str | None = "0011_model_builds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("vulnerable", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("tickets", sa.Column("vulnerable_reason", sa.Text(), nullable=True))
    op.add_column("tickets", sa.Column("vulnerable_by", sa.String(length=64), nullable=True))
    op.add_column("tickets", sa.Column("vulnerable_at", _utc(), nullable=True))
    op.add_column("citizens", sa.Column("vulnerable_at", _utc(), nullable=True))
    op.add_column("citizens", sa.Column("vulnerable_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizens") as batch:
        batch.drop_column("vulnerable_by")
        batch.drop_column("vulnerable_at")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("vulnerable_at")
        batch.drop_column("vulnerable_by")
        batch.drop_column("vulnerable_reason")
        batch.drop_column("vulnerable")
