""""Was it solved?" on WhatsApp: the question goes out through the outbox as reply buttons, the
rating as a list, and the citizen's taps come back through the webhook and the real Conversation."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.api.app import create_app
from bot.feedback.models import STEP_COMMENT, FeedbackSurvey
from bot.runtime import Runtime
from bot.store.db import session_factory
from tests.channels.whatsapp.conftest import WebhookClient, make_settings, message, new_wamid, webhook
from tests.channels.whatsapp.graph_standin import limit_problem
from tests.feedback.helpers import resolved_and_asked

WA_ID = "34600000088"


class NoRasa:
    def send(self, **_kw):
        raise AssertionError("a survey answer must not reach Rasa")


def _reply(kind: str, reply_id: str, title: str) -> dict:
    body = {"type": kind, kind: {"id": reply_id, "title": title}}
    return message(WA_ID, "interactive", body, wamid=new_wamid(), context={"from": "15550001111", "id": "wamid.ours"})


def test_yes_and_a_rating_by_buttons(db_url, graph):
    settings = make_settings(db_url, graph.url, privacy_notice_channels="")
    runtime = Runtime(settings, rasa=NoRasa())
    with session_factory(db_url).begin() as session:
        ticket, survey = resolved_and_asked(session, channel="whatsapp", sender=WA_ID)
        public_id, token, question_id = ticket.public_id, survey.token, survey.message_id
    asyncio.run(runtime.delivery_service().deliver(question_id))
    (question,) = graph.wait_for(WA_ID)
    assert question.interactive["type"] == "button" and limit_problem(question.body) is None
    assert question.interactive["body"]["text"].startswith(f"Ticket {public_id} is resolved.")
    buttons = [b["reply"] for b in question.interactive["action"]["buttons"]]
    assert buttons == [{"id": f"kb:{token}:11", "title": "Yes"}, {"id": f"kb:{token}:10", "title": "No"}]
    wa = WebhookClient(TestClient(create_app(runtime)))
    assert wa.post(webhook([_reply("button_reply", f"kb:{token}:11", "Yes")])).status_code == 200
    _question, rating = graph.wait_for(WA_ID, 2)
    assert rating.interactive["type"] == "list" and limit_problem(rating.body) is None
    assert [row_id for row_id, _t, _d in rating.choices] == [f"kb:{token}:{n}" for n in range(1, 6)]
    assert wa.post(webhook([_reply("list_reply", f"kb:{token}:5", "5")])).status_code == 200
    sent = graph.wait_for(WA_ID, 3)
    assert sent[2].text == "Thanks. Anything you want to add? (or \"no\")"
    with session_factory(db_url)() as session:
        survey = session.scalars(select(FeedbackSurvey)).one()
        assert (survey.solved, survey.rating, survey.step) == (True, 5, STEP_COMMENT)
