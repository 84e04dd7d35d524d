"""Unsure but with plausible KB entries: ask the citizen "Do you mean ...?"."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import offer_kb_choices


class ActionOfferKbChoices(OutcomeAction):
    action_name = "action_offer_kb_choices"
    outcome = staticmethod(offer_kb_choices)
