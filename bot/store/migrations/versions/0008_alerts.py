"""Commitment alerts: tickets' near-due time, staff e-mail addresses, the alerts sent, the staff
e-mail queue and the scheduler's job leases.

Tickets opened before this revision keep ``warn_at`` NULL: they get the overdue alert only.

Revision ID: 0008_alerts
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_alerts"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("warn_at", _utc(), nullable=True))
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))

    op.create_table(
        "ticket_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=100), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("delivery", sa.String(length=64), nullable=False),
        sa.CheckConstraint("threshold IN ('near_due', 'overdue')", name=op.f("ck_ticket_alerts_threshold")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_alerts_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_alerts")),
        sa.UniqueConstraint(
            "ticket_id", "threshold", "recipient", name=op.f("uq_ticket_alerts_ticket_id_threshold_recipient")
        ),
    )
    op.create_index(op.f("ix_ticket_alerts_ticket_id"), "ticket_alerts", ["ticket_id"])
    op.create_index(op.f("ix_ticket_alerts_recipient_created_at"), "ticket_alerts", ["recipient", "created_at"])

    op.create_table(
        "staff_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("lease_until", _utc(), nullable=True),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'skipped')", name=op.f("ck_staff_notifications_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_staff_notifications_key")),
    )
    op.create_index(
        op.f("ix_staff_notifications_status_next_attempt_at"), "staff_notifications", ["status", "next_attempt_at"]
    )

    op.create_table(
        "job_leases",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("until", _utc(), nullable=False),
        sa.Column("last_run_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("staff_notifications")
    op.drop_table("ticket_alerts")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("warn_at")
