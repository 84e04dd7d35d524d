"""Privacy notice sent per identity, consents per purpose, retention marks; citizens lose consent_given_at.

Revision ID: 0008_notice
Revises: 0007
Create Date: 2026-12-07

``citizens.consent_given_at`` was never set by any code, and one column cannot say consent to
what: answering a citizen's messages rests on the city's public task, and the consents the law
does need are per purpose (``consents``). Dropping it is plain ``ALTER TABLE ... DROP COLUMN``
on PostgreSQL and on SQLite (3.35 and later), with no table rebuild. The downgrade adds it back
empty, which is what it always was.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_notice"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("given_at", _utc(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("withdrawn_at", _utc(), nullable=True),
        sa.Column("withdrawn_channel", sa.String(length=32), nullable=True),
        sa.Column("withdrawn_source", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_consents_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(
        op.f("ix_consents_citizen_id_purpose_withdrawn_at"), "consents", ["citizen_id", "purpose", "withdrawn_at"]
    )
    op.add_column("channel_identities", sa.Column("notice_sent_at", _utc(), nullable=True))
    op.add_column("messages", sa.Column("anonymised_at", _utc(), nullable=True))
    op.add_column("tickets", sa.Column("anonymised_at", _utc(), nullable=True))
    op.add_column("email_inbound", sa.Column("anonymised_at", _utc(), nullable=True))
    op.drop_column("citizens", "consent_given_at")


def downgrade() -> None:
    op.add_column("citizens", sa.Column("consent_given_at", _utc(), nullable=True))
    op.drop_column("email_inbound", "anonymised_at")
    op.drop_column("tickets", "anonymised_at")
    op.drop_column("messages", "anonymised_at")
    op.drop_column("channel_identities", "notice_sent_at")
    op.drop_index(op.f("ix_consents_citizen_id_purpose_withdrawn_at"), table_name="consents")
    op.drop_table("consents")
