"""Tell a citizen the status of their own ticket, and nothing about anyone else's."""

from actions.outcome_action import OutcomeAction
from bot.core.turn_outcomes import ticket_status


class ActionTicketStatus(OutcomeAction):
    action_name = "action_ticket_status"
    outcome = staticmethod(ticket_status)
