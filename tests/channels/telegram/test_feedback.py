""""Was it solved?" on Telegram: the question goes out through the outbox with Yes / No buttons,
the taps come back through the real handlers, Conversation and store, and the rating has its
1-5 buttons; Rasa never sees an answer."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.channels.telegram.adapter import build_sender
from bot.feedback.models import STEP_COMMENT, FeedbackSurvey
from bot.runtime import Runtime
from bot.store.db import session_factory
from tests.channels.telegram.support import FakeRasa, PollingBot, telegram_settings
from tests.feedback.helpers import resolved_and_asked
from tools.standins.telegram import keyboard_problem


def _deliver(settings, message_id: int) -> None:
    async def main():
        delivery = Runtime(settings).delivery_service({"telegram": build_sender(settings)})
        return await delivery.deliver(message_id)

    asyncio.run(main())


def _wait_no_keyboard(standin, sent) -> None:
    deadline = time.monotonic() + 10
    while standin.keyboard_of(sent) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert standin.keyboard_of(sent) is None


def test_yes_and_a_rating_by_buttons(db_url, standin):
    settings = telegram_settings(db_url, standin, privacy_notice_channels="")
    with session_factory(db_url).begin() as session:
        ticket, survey = resolved_and_asked(session, channel="telegram", sender="4242")
        public_id, token, question_id = ticket.public_id, survey.token, survey.message_id
    _deliver(settings, question_id)
    (question,) = standin.sent_to(4242)
    assert question.text.startswith(f"Ticket {public_id} is resolved. Was your problem solved?")
    assert question.buttons == [("Yes", f"kb:{token}:11"), ("No", f"kb:{token}:10")]
    assert keyboard_problem(question.reply_markup) is None
    rasa = FakeRasa(db_url)
    with PollingBot(settings, rasa, standin):
        standin.push(standin.tap(question, 0))
        _question, rating = standin.wait_for_sent(4242, 2)
        assert rating.text.startswith("Thank you. How would you rate our help from 1 (poor) to 5")
        assert rating.buttons == [(str(n), f"kb:{token}:{n}") for n in range(1, 6)]
        assert len(rating.reply_markup["inline_keyboard"]) == 1  # a scale, in one row
        _wait_no_keyboard(standin, question)
        standin.push(standin.tap(rating, 3))
        sent = standin.wait_for_sent(4242, 3)
        assert sent[2].text == "Thanks. Anything you want to add? (or \"no\")"
        _wait_no_keyboard(standin, rating)
    assert rasa.seen == []
    with session_factory(db_url)() as session:
        survey = session.scalars(select(FeedbackSurvey)).one()
        assert (survey.solved, survey.rating, survey.step) == (True, 4, STEP_COMMENT)
