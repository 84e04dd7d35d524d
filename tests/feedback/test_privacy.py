"""A survey's comment is citizen text: exported, erased with the citizen, anonymised by retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.feedback.models import FeedbackSurvey
from bot.privacy.erase import ERASED, erase_citizen
from bot.privacy.export import export_citizen, render_html
from bot.privacy.retention import run_retention
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.types import utcnow
from bot.tickets.service import change_status
from tests.feedback.helpers import resolved_and_asked

COMMENT = "Ask Ottoline Brisbane at number 9, she saw it too"


def _answered(session, **kw):
    ticket, survey = resolved_and_asked(session, **kw)
    survey.state, survey.step, survey.solved, survey.rating, survey.comment = "answered", "done", True, 5, COMMENT
    session.flush()
    return ticket, survey


def test_the_export_holds_the_answers(db_url: str) -> None:
    with session_factory(db_url).begin() as session:
        ticket, survey = _answered(session)
        bundle = export_citizen(session, survey.citizen_id)
        assert bundle["feedback"] == [{
            "ticket": ticket.public_id, "asked_at": survey.asked_at.isoformat(), "channel": "telegram",
            "state": "answered", "solved": True, "rating": 5, "comment": COMMENT, "answered_at": None}]
        assert "Ottoline Brisbane" in render_html(bundle)


def test_erasure_blanks_the_comment_and_keeps_the_counts(db_url: str) -> None:
    with session_factory(db_url).begin() as session:
        ticket, survey = _answered(session)
        change_status(session, ticket, "closed", actor="agent:wanda")
        erase_citizen(session, survey.citizen_id, actor="system", reason="test")
        session.refresh(survey)
        assert survey.comment == ERASED and survey.solved is True and survey.rating == 5
        # Once more: nothing left to erase, nothing counted.
        assert erase_citizen(session, survey.citizen_id, actor="system", reason="test").other_rows == 0


def test_retention_anonymises_the_comment_with_the_ticket(db_url: str, tmp_path) -> None:
    settings = Settings(api_keys="k" * 20, database_url=db_url, tracker_url=f"sqlite:///{tmp_path / 'none.db'}")
    long_ago = utcnow() - timedelta(days=800)
    with session_factory(db_url).begin() as session:
        ticket, survey = _answered(session, now=long_ago)
        ticket.updated_at = long_ago
        survey_id = survey.id
    run_retention(session_factory(db_url), settings, utcnow())
    with session_factory(db_url)() as session:
        survey = session.get(FeedbackSurvey, survey_id)
        assert survey.comment == "" and survey.rating == 5
        assert session.scalars(select(FeedbackSurvey.solved)).all() == [True]
