"""The citizen picked one of the offered questions, or "none of these"."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import settle_kb_choice


class ActionSettleKbChoice(OutcomeAction):
    action_name = "action_settle_kb_choice"
    outcome = staticmethod(settle_kb_choice)
