"""Join the branches of the channels and console work into one history.

Revision ID: 0004
Revises: 0003_console, 0003_core, 0003_email, 0003_insights, 0003_whatsapp
Create Date: 2026-11-23

The five 0003 revisions touch different tables and were written in parallel;
from here on there is one head again.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | tuple[str, ...] | None = (
    "0003_console",
    "0003_core",
    "0003_email",
    "0003_insights",
    "0003_whatsapp",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
