"""Greetings, thanks and goodbyes: answered, and recorded like every other turn."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import small_talk


class ActionSmallTalk(OutcomeAction):
    action_name = "action_small_talk"
    outcome = staticmethod(small_talk)
