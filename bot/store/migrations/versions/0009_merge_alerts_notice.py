"""Join the commitment alerts and the privacy notice, written in parallel, into one history.

Revision ID: 0009
Revises: 0008_alerts, 0008_notice
Create Date: 2026-12-07

The two 0008 revisions touch different tables; from here on there is one head again.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | tuple[str, ...] | None = ("0008_alerts", "0008_notice")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
