"""A turn Rasa gets to after the core gave up on it changes nothing.

A Rasa process that times out (overloaded, or waiting on a lock a killed process left) may still
run the message's actions later. By then the core has escalated the message and told the citizen;
the late action must not open a second ticket or record an answer nobody receives.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.core.rasa_client import RasaUnavailable
from bot.core.turn_outcomes import Turn, answer_faq, escalate_turn
from bot.core.turns import TurnSettled
from bot.runtime import Runtime
from bot.settings import Settings, get_settings
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.models import Ticket


class TimingOutRasa:
    """Rasa that takes the message and does not answer in time; the turn is kept for later."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.turns.append(Turn(sender_id=sender, text=text, intent="faq", confidence=0.9, metadata=metadata,
                               kb_match={"entry": "waste-bulky-items", "ranking": []}, entities=[]))
        raise RasaUnavailable("Rasa request failed: ReadTimeout")


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_API_KEYS", "k" * 24)
    get_settings.cache_clear()
    yield Settings(api_keys="k" * 24, database_url=db_url)
    get_settings.cache_clear()


@pytest.mark.parametrize("outcome", [answer_faq, escalate_turn])
def test_a_late_turn_after_the_core_escalated_changes_nothing(settings: Settings, db_url: str, outcome) -> None:
    rasa = TimingOutRasa()
    conversation = Conversation(settings, session_factory(db_url), rasa)
    handled = conversation.handle_inbound(InboundMessage(channel="web", sender="c1", text="old sofa pickup?"))
    assert handled.handling == "escalated" and handled.ticket is not None
    sessions = session_factory(db_url)
    with sessions() as session:
        tickets_before = session.scalar(select(func.count()).select_from(Ticket))
    with pytest.raises(TurnSettled):
        outcome(rasa.turns[0], Runtime(settings))
    with sessions() as session:
        message = session.get(Message, handled.message_id)
        assert message.handling == "escalated" and message.kb_entry_id is None
        assert session.scalar(select(func.count()).select_from(Ticket)) == tickets_before


def test_the_action_server_answers_a_late_turn_with_silence(settings: Settings, db_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    import actions.outcome_action as outcome_action
    from actions.answer_faq import ActionAnswerFaq

    rasa = TimingOutRasa()
    conversation = Conversation(settings, session_factory(db_url), rasa)
    conversation.handle_inbound(InboundMessage(channel="web", sender="c2", text="old sofa pickup?"))
    monkeypatch.setattr(outcome_action, "action_server_runtime", lambda: Runtime(settings))
    turn = rasa.turns[0]

    class Tracker:
        sender_id = turn.sender_id
        latest_message = {"text": turn.text, "intent": {"name": "faq", "confidence": 0.9},
                          "metadata": turn.metadata, "kb_match": turn.kb_match, "entities": []}

    dispatcher = CollectingDispatcher()
    assert asyncio.run(ActionAnswerFaq().run(dispatcher, Tracker(), {})) == []
    assert dispatcher.messages == []
