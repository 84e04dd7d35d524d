"""Updates whose message could not be stored, and how long Telegram is asked for them again.

A confirmed update (a later getUpdates offset, or a 200 to the webhook) is forgotten by
Telegram, so one that failed to be stored (the database is down) is not confirmed: it
comes again. One that can never be stored must not hold the others back for the 24 hours
Telegram keeps updates, so after a window it is confirmed and logged as lost.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

from telegram.ext import Application

logger = logging.getLogger(__name__)

_KEY = "unstored_update_ids"


def mark_unstored(application: Application, update_id: int) -> None:
    application.bot_data.setdefault(_KEY, set()).add(update_id)


def unstored_updates(application: Application, update_ids: Iterable[int]) -> list[int]:
    """Which of these updates could not be handled, in order; each is reported once."""
    failed: set[int] = application.bot_data.setdefault(_KEY, set())
    found = sorted(failed.intersection(update_ids))
    failed.difference_update(found)
    return found


class RetryWindow:
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._first_failure: dict[int, float] = {}

    def keep(self, update_id: int) -> bool:
        """True: ask Telegram for the update again. False: the window is over, give it up."""
        now = time.monotonic()
        since = self._first_failure.setdefault(update_id, now)
        if now - since < self._seconds:
            return True
        del self._first_failure[update_id]
        logger.error("Telegram update %s could not be stored for %.0f s; it is confirmed to Telegram "
                     "and its message is lost", update_id, now - since)
        return False

    def done(self, update_ids: Iterable[int]) -> None:
        for update_id in update_ids:
            self._first_failure.pop(update_id, None)
