"""Satisfaction from the "Was it solved?" surveys, per department and per channel.

Counted over the surveys asked in a period (``since`` included, ``until`` excluded): asked,
answered (solved or not said), solved, and the ratings given. Shares and averages are left to
the reader of ``Satisfaction`` so that a group with no answers shows "n/a", not 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.feedback.models import ANSWERED, FeedbackSurvey


@dataclass(frozen=True)
class Satisfaction:
    group: str  # a department's key or a channel
    asked: int
    answered: int
    solved: int
    ratings: int
    rating_sum: int

    @property
    def solved_share(self) -> float | None:
        return self.solved / self.answered if self.answered else None

    @property
    def answered_share(self) -> float | None:
        return self.answered / self.asked if self.asked else None

    @property
    def average_rating(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None


def satisfaction(session: Session, since: datetime, until: datetime, *, by: str) -> list[Satisfaction]:
    """``by`` is "department" or "channel"; groups with most surveys first."""
    if by not in ("department", "channel"):
        raise ValueError("satisfaction is grouped by department or channel")
    group = getattr(FeedbackSurvey, by)
    rows = session.execute(
        select(
            group,
            func.count(),
            func.sum(case((FeedbackSurvey.state == ANSWERED, 1), else_=0)),
            func.sum(case((FeedbackSurvey.solved.is_(True), 1), else_=0)),
            func.count(FeedbackSurvey.rating),
            func.coalesce(func.sum(FeedbackSurvey.rating), 0),
        )
        .where(FeedbackSurvey.asked_at >= since, FeedbackSurvey.asked_at < until)
        .group_by(group)
    ).all()
    found = [Satisfaction(name, int(asked), int(answered or 0), int(solved or 0), int(rated or 0), int(total or 0))
             for name, asked, answered, solved, rated, total in rows]
    return sorted(found, key=lambda s: (-s.asked, s.group))
