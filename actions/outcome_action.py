"""The shape every action shares: hand the turn to bot/, send what it returns.

The store work is synchronous SQLAlchemy, so it runs in a worker thread to keep
the action server's event loop free for other conversations. The action server's
runtime is built on the first action and shared by all of them (Rasa SDK builds
the action classes itself, so they cannot be handed one).
"""

import asyncio
from abc import ABC, abstractmethod
from functools import cache

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.core.turn_outcomes import Reply, StoreServices, Turn
from bot.runtime import Runtime, build_runtime


@cache
def action_server_runtime() -> Runtime:
    return build_runtime()


class OutcomeAction(Action, ABC):
    action_name: str

    @staticmethod
    @abstractmethod
    def outcome(turn: Turn, services: StoreServices) -> list[Reply]: ...

    def name(self) -> str:
        return self.action_name

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        turn = Turn.from_latest_message(tracker.sender_id, tracker.latest_message)
        for reply in await asyncio.to_thread(type(self).outcome, turn, action_server_runtime()):
            if reply.buttons:
                dispatcher.utter_message(response=reply.response, buttons=reply.buttons, **reply.variables)
            else:
                dispatcher.utter_message(response=reply.response, **reply.variables)
        return []
