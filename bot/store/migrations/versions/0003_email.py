"""E-mail channel: mailbox positions and the ledger of received e-mails.

Revision ID: 0003_email
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_email"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "email_mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_mailboxes")),
        sa.UniqueConstraint("account", "name", name=op.f("uq_email_mailboxes_account_name")),
    )
    op.create_table(
        "email_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=255), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("reply_blocked", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=2000), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_ticket_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("handled_at", _utc(), nullable=True),
        sa.CheckConstraint("status IN ('received', 'handled', 'failed')", name=op.f("ck_email_inbound_status")),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["email_mailboxes.id"], name=op.f("fk_email_inbound_mailbox_id_email_mailboxes")
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_email_inbound_ticket_id_tickets")),
        sa.ForeignKeyConstraint(
            ["acknowledged_ticket_id"], ["tickets.id"], name=op.f("fk_email_inbound_acknowledged_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(["reply_id"], ["messages.id"], name=op.f("fk_email_inbound_reply_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_inbound")),
        sa.UniqueConstraint("message_key", name=op.f("uq_email_inbound_message_key")),
    )
    op.create_index(op.f("ix_email_inbound_mailbox_id"), "email_inbound", ["mailbox_id"])
    op.create_index(op.f("ix_email_inbound_ticket_id"), "email_inbound", ["ticket_id"])
    op.create_index(op.f("ix_email_inbound_acknowledged_ticket_id"), "email_inbound", ["acknowledged_ticket_id"])
    op.create_index(op.f("ix_email_inbound_status_id"), "email_inbound", ["status", "id"])
    op.create_index(op.f("ix_email_inbound_sender_handled_at"), "email_inbound", ["sender", "handled_at"])


def downgrade() -> None:
    op.drop_table("email_inbound")
    op.drop_table("email_mailboxes")
