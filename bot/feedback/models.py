"""One survey per resolution of a ticket: asked on the citizen's channel, answered in steps.

``state`` is what statistics count (asked, answered, expired); ``step`` is what the next message
of the citizen is read as (the solved question, the rating, the comment, what is still wrong),
``done`` when nothing more is expected. ``comment`` is citizen text: erased with the citizen
(bot.privacy.erase) and anonymised by retention with the ticket's other texts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

ASKED, ANSWERED, EXPIRED = "asked", "answered", "expired"
STATES: tuple[str, ...] = (ASKED, ANSWERED, EXPIRED)
# What the citizen's next message answers.
STEP_SOLVED, STEP_RATING, STEP_COMMENT, STEP_REASON, STEP_DONE = "solved", "rating", "comment", "reason", "done"
STEPS: tuple[str, ...] = (STEP_SOLVED, STEP_RATING, STEP_COMMENT, STEP_REASON, STEP_DONE)


class FeedbackSurvey(Base):
    __tablename__ = "feedback_surveys"
    __table_args__ = (
        CheckConstraint(in_list("state", STATES), name="state"),
        CheckConstraint(in_list("step", STEPS), name="step"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating"),
        # One survey per resolution: the resolving status event names it, so asking twice is a no-op.
        Index(None, "resolution_event_id", unique=True),
        # The identity's open survey, looked up on each of its messages.
        Index(None, "identity_id", "step"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # What a button carries back (``KbChoice(token, n)``): checked against the citizen, so a
    # tampered or another chat's button settles nothing.
    token: Mapped[str] = mapped_column(String(16), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    # The identity (and so the channel) the question went to.
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str] = mapped_column(String(32))
    # The department the ticket was in when resolved: statistics group by it.
    department: Mapped[str] = mapped_column(String(64))
    resolution_event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"))
    # The outbound question.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=ASKED)
    step: Mapped[str] = mapped_column(String(16), default=STEP_SOLVED)
    # When the current step was asked: follow-up steps wait less long than the first question.
    step_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The ticket was reopened on this survey's "no".
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
