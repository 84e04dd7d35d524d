"""Open a ticket (or join the citizen's open one) and tell the citizen its ID."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import escalate_turn


class ActionEscalate(OutcomeAction):
    action_name = "action_escalate"
    outcome = staticmethod(escalate_turn)
