"""\"Was it solved?\": one survey per resolution of a ticket (bot.feedback).

Revision ID: 0014_feedback
Revises: 0013_announcements
Create Date: 2026-12-07

A new table only; tickets resolved before it existed are not asked afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_feedback"
down_revision: str | None = "0013_announcements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("resolution_event_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("asked_at", _utc(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("step_at", _utc(), nullable=False),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", _utc(), nullable=True),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.CheckConstraint("state IN ('asked', 'answered', 'expired')", name=op.f("ck_feedback_surveys_state")),
        sa.CheckConstraint(
            "step IN ('solved', 'rating', 'comment', 'reason', 'done')", name=op.f("ck_feedback_surveys_step")
        ),
        sa.CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name=op.f("ck_feedback_surveys_rating")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_feedback_surveys_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_feedback_surveys_citizen_id_citizens")),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identities.id"], name=op.f("fk_feedback_surveys_identity_id_channel_identities")
        ),
        sa.ForeignKeyConstraint(
            ["resolution_event_id"], ["ticket_events.id"],
            name=op.f("fk_feedback_surveys_resolution_event_id_ticket_events"),
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_feedback_surveys_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_surveys")),
        sa.UniqueConstraint("token", name=op.f("uq_feedback_surveys_token")),
    )
    op.create_index(op.f("ix_feedback_surveys_ticket_id"), "feedback_surveys", ["ticket_id"])
    op.create_index(op.f("ix_feedback_surveys_citizen_id"), "feedback_surveys", ["citizen_id"])
    op.create_index(
        op.f("ix_feedback_surveys_resolution_event_id"), "feedback_surveys", ["resolution_event_id"], unique=True
    )
    op.create_index(op.f("ix_feedback_surveys_identity_id_step"), "feedback_surveys", ["identity_id", "step"])


def downgrade() -> None:
    op.drop_table("feedback_surveys")
