"""What the console learns from escalations: proposals to grow the knowledge base.

A proposal is written by an agent from a ticket (or from the KB gaps view) and
judged by a supervisor. Approval writes the KB YAML files, which stay the one
source of truth; this table only remembers who proposed what, who decided, and
which entry the decision produced, so the trail survives the KB being edited
later. Staff are referred to by username (not a foreign key) so that the trail
also survives an account being removed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, utcnow

NEW_ENTRY = "new_entry"
NEW_PHRASING = "new_phrasing"
PROPOSAL_KINDS: tuple[str, ...] = (NEW_ENTRY, NEW_PHRASING)

PROPOSED = "proposed"
APPROVED = "approved"
REJECTED = "rejected"
PROPOSAL_STATUSES: tuple[str, ...] = (PROPOSED, APPROVED, REJECTED)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class KbProposal(Base):
    __tablename__ = "kb_proposals"
    __table_args__ = (
        CheckConstraint(_in_list("kind", PROPOSAL_KINDS), name="kind"),
        CheckConstraint(_in_list("status", PROPOSAL_STATUSES), name="status"),
        # The supervisors' review list: open proposals, oldest first.
        Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The question as citizens ask it; for a phrasing, the new way to ask the target entry.
    question: Mapped[str] = mapped_column(Text)
    # The city's answer (new entries only).
    answer: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    target_entry_id: Mapped[str | None] = mapped_column(String(128))
    # The KB entry the approval wrote (new id for a new entry, the target for a phrasing).
    entry_id: Mapped[str | None] = mapped_column(String(128))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The citizen message that showed the gap (from the gaps view or the ticket).
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    proposed_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=PROPOSED)
    reviewer: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_comment: Mapped[str | None] = mapped_column(Text)
