"""A stand-in for Rasa + the action server that asks "Do you mean ...?" the way the real
actions do (a stored offer, bot.core.clarification) and settles picks against it, so the
channel's buttons are tested against the core's real offer checks without Rasa."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from bot.core import clarification
from bot.core.inbound import KbChoice
from bot.core.turns import METADATA_KEY
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.messages import record_handling
from bot.store.models import Message

OFFERED = ["building-permit-needed", "building-permit-application", "building-sheds-fences"]
ASK = "I want to be sure I answer the right question. Do you mean one of these?"
_PAYLOAD = re.compile(r"^/(choose_kb_entry|choose_none)(\{.*\})$")


class ChoiceRasa:
    """Texts get the "Do you mean ...?" question; pick payloads are settled (``answer: <entry>``,
    or the core's outcome, e.g. ``choice: already_answered``)."""

    def __init__(self, settings: Settings, offered: list[str] | None = None) -> None:
        self.settings = settings
        self.sessions = session_factory(settings.database_url)
        self.offered = offered or OFFERED
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        with self._lock:
            self.seen.append(text)
        with self.sessions.begin() as session:
            message = session.get(Message, metadata[METADATA_KEY])
            payload = _PAYLOAD.match(text)
            if payload is None:
                options = clarification.offer_options(self.offered, self.settings.kb_dir)
                clarification.open_offer(session, message, options, self.settings)
                return [{"text": f"{ASK}\n{clarification.options_text(options)}\nReply with the number."}]
            value = json.loads(payload.group(2)).get(clarification.CHOICE_ENTITY)
            choice: KbChoice | None = clarification.parse_choice_entity(value)
            settled = clarification.settle_choice(session, message, choice, self.settings)
            if settled.outcome == "answered":
                record_handling(message, intent=clarification.PICK_INTENT, confidence=1.0, handling="kb_answer",
                                kb_entry_id=settled.entry)
                return [{"text": f"answer: {settled.entry}"}]
            if settled.outcome == "declined":
                record_handling(message, intent=clarification.NONE_INTENT, confidence=1.0, handling="escalated",
                                ticket=settled.ticket)
                return [{"text": f"ticket: {settled.ticket.public_id}"}]
            record_handling(message, intent=clarification.PICK_INTENT, confidence=1.0,
                            handling="choice_" + settled.outcome)
            return [{"text": f"choice: {settled.outcome}"}]

    def close(self) -> None:
        pass


def choices_meta(offer: str = "abcdefgh2345", titles: list[str] | None = None) -> dict[str, Any]:
    titles = titles or ["When is my bin collected?", "How do I book a bulky waste pickup?"]
    return {clarification.CHOICES_KEY: {
        "offer": offer,
        "options": [{"n": n, "entry": f"entry-{n}", "title": t} for n, t in enumerate(titles, start=1)],
        "none": {"n": 0, "title": clarification.none_option_title()},
    }}
