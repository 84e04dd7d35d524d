"""Ticket statuses and the only moves allowed between them.

Kept as a plain table checked by a plain function (not ORM hooks) so that the
rules can be read in one place and every change goes through code that can
record who made it and why.
"""

from __future__ import annotations

NEW = "new"
OPEN = "open"
PENDING_CITIZEN = "pending_citizen"
RESOLVED = "resolved"
CLOSED = "closed"

STATUSES: tuple[str, ...] = (NEW, OPEN, PENDING_CITIZEN, RESOLVED, CLOSED)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({OPEN, PENDING_CITIZEN, RESOLVED, CLOSED}),
    OPEN: frozenset({PENDING_CITIZEN, RESOLVED, CLOSED}),
    PENDING_CITIZEN: frozenset({OPEN, RESOLVED, CLOSED}),
    # A resolved ticket can be reopened when the citizen says the problem is back.
    RESOLVED: frozenset({OPEN, CLOSED}),
    # Closed is final: a new message opens a new ticket instead.
    CLOSED: frozenset(),
}

# Statuses in which a new message from the citizen joins the ticket instead of opening another.
OPEN_STATUSES: frozenset[str] = frozenset({NEW, OPEN, PENDING_CITIZEN})


class InvalidTransition(ValueError):
    """A status change that the workflow does not allow."""

    def __init__(self, from_status: str, to_status: str) -> None:
        self.from_status = from_status
        self.to_status = to_status
        if from_status not in ALLOWED_TRANSITIONS:
            message = f"unknown ticket status {from_status!r}"
        elif to_status not in ALLOWED_TRANSITIONS:
            message = f"unknown ticket status {to_status!r}; known: {', '.join(STATUSES)}"
        else:
            allowed = sorted(ALLOWED_TRANSITIONS[from_status])
            message = (
                f"a ticket cannot go from {from_status!r} to {to_status!r}; "
                f"allowed from {from_status!r}: {', '.join(allowed) if allowed else 'nothing (final status)'}"
            )
        super().__init__(message)


def check_transition(from_status: str, to_status: str) -> None:
    """Raise InvalidTransition unless the table allows ``from_status -> to_status``."""
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        raise InvalidTransition(from_status, to_status)
