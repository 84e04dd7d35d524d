"""No pick within the time allowed: the question goes to a person."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import expire_kb_offer


class ActionExpireKbOffer(OutcomeAction):
    action_name = "action_expire_kb_offer"
    outcome = staticmethod(expire_kb_offer)
