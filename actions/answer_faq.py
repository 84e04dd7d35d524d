"""Answer from the knowledge base (the entry was chosen by the NLU matcher)."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import answer_faq


class ActionAnswerFaq(OutcomeAction):
    action_name = "action_answer_faq"
    outcome = staticmethod(answer_faq)
