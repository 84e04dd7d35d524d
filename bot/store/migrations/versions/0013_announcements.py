"""Notices and announcements: the city's announcements, and the ticket events citizens were told of.

Revision ID: 0013_announcements
Revises: 0012_vulnerable
Create Date: 2026-12-07

Two new tables, nothing existing changes. ``ticket_notices.event_id`` is unique: one notice per
ticket event, however often the code that tells the citizen runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_announcements"
down_revision: str | None = "0012_vulnerable"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("audience_kind", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("first_due_at", _utc(), nullable=False),
        sa.Column("last_due_at", _utc(), nullable=False),
        sa.CheckConstraint("audience_kind IN ('topic', 'department')", name=op.f("ck_announcements_audience_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_table(
        "ticket_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("kind IN ('assigned', 'waiting', 'reopened')", name=op.f("ck_ticket_notices_kind")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_notices_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["event_id"], ["ticket_events.id"], name=op.f("fk_ticket_notices_event_id_ticket_events")),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_ticket_notices_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_notices")),
        sa.UniqueConstraint("event_id", name=op.f("uq_ticket_notices_event_id")),
    )
    op.create_index(op.f("ix_ticket_notices_ticket_id"), "ticket_notices", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_notices_ticket_id"), table_name="ticket_notices")
    op.drop_table("ticket_notices")
    op.drop_table("announcements")
