"""The shape every action shares: hand the turn to bot/, send what it returns.

The store work is synchronous SQLAlchemy, so it runs in a worker thread to keep
the action server's event loop free for other conversations. The action server's
runtime is built on the first action and shared by all of them (Rasa SDK builds
the action classes itself, so they cannot be handed one); building it also sets up
the process's logging from the same settings.

Each run is timed as the "actions" stage (bot.observability) and logs one event under
the request id the core put in the message's metadata, so the action's records join
the API's.
"""

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from functools import cache

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.core.turn_outcomes import Reply, StoreServices, Turn
from bot.core.turns import METADATA_KEY, REQUEST_ID_KEY, TurnSettled
from bot.observability.logs import accept_request_id, bound_request_id, log_event, setup_logging
from bot.observability.metrics import ACTIONS, observe_stage
from bot.runtime import Runtime, build_runtime

logger = logging.getLogger(__name__)


@cache
def action_server_runtime() -> Runtime:
    runtime = build_runtime()
    setup_logging(runtime.settings.log_format, runtime.settings.log_level)
    return runtime


class OutcomeAction(Action, ABC):
    action_name: str

    @staticmethod
    @abstractmethod
    def outcome(turn: Turn, services: StoreServices) -> list[Reply]: ...

    def name(self) -> str:
        return self.action_name

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        turn = Turn.from_latest_message(tracker.sender_id, tracker.latest_message)
        with bound_request_id(accept_request_id(turn.metadata.get(REQUEST_ID_KEY))):
            replies = await self._timed_outcome(turn)
        for reply in replies:
            if reply.buttons:
                dispatcher.utter_message(response=reply.response, buttons=reply.buttons, **reply.variables)
            else:
                dispatcher.utter_message(response=reply.response, **reply.variables)
        return []

    async def _timed_outcome(self, turn: Turn) -> list[Reply]:
        services = action_server_runtime()  # built (and logging set up) before the clock starts
        start = time.perf_counter()
        outcome = "failed"
        try:
            replies = await asyncio.to_thread(type(self).outcome, turn, services)
            outcome = "done"
            return replies
        except TurnSettled:
            # Rasa got to the message after the core had handed it to a person (bot.core.turns).
            outcome = "settled_before"
            return []
        finally:
            seconds = time.perf_counter() - start
            observe_stage(ACTIONS, seconds)
            message_id = turn.metadata.get(METADATA_KEY)
            log_event(logger, "action_handled", action=self.action_name, outcome=outcome,
                      message_id=message_id if isinstance(message_id, int) else None,
                      duration_ms=round(seconds * 1000, 1))
