"""Erasure against the real assistant: Rasa writes its own tracker, the API answers "erase my data";
afterwards neither database, nor any file of the stack (logs included), holds the citizen's words."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.privacy.jobs import job
from bot.settings import Settings
from bot.tickets.models import Ticket
from bot.tickets.service import change_status
from tests.privacy.helpers import find_in_database, find_in_files

pytestmark = pytest.mark.e2e

WORDS = ("Thaddeus Quorndon", "Pumpernickel Row", "thaddeus-e2e-visitor")


def test_erase_my_data_leaves_nothing_in_either_database_or_any_file(assistant) -> None:
    sender = WORDS[2]
    assistant.say(sender, "When is my bin collected?")
    assistant.say(sender, f"My name is {WORDS[0]}, the streetlight on {WORDS[1]} has been broken for a week")
    tracker_url = f"sqlite:///{assistant.config.tracker_db}"
    assert find_in_database(tracker_url, WORDS), "Rasa's tracker should hold the conversation before"
    asked = assistant.say(sender, "erase my data")
    code = re.search(r"\b(\d{6})\b", asked["replies"][0]["text"])[1]
    done = assistant.say(sender, code)
    reply = done["replies"][0]["text"]
    assert reply.startswith("Done: your data has been erased")
    assert find_in_database(tracker_url, WORDS) == []
    left = find_in_database(assistant.database_url, WORDS)
    assert all(f.split(".")[0] in ("messages", "tickets", "ticket_events", "channel_identities") for f in left)
    # The ticket opened for the streetlight is still open: kept under legal hold, and said so.
    held = re.findall(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", reply)
    assert held and "still being worked on" in reply
    # Once it is closed, the periodic job erases the rest, and the SQLite files are rewritten.
    settings = Settings(_env_file=None, api_keys=assistant.config.api_key, database_url=assistant.database_url,
                        tracker_database_url=tracker_url)
    with assistant.sessions().begin() as session:
        for ticket in session.scalars(select(Ticket).where(Ticket.public_id.in_(held))):
            change_status(session, ticket, "closed", actor="agent:test")
    assert job(assistant.sessions(), settings).citizens_finished == 1
    assert find_in_database(assistant.database_url, WORDS) == []
    # Logs, the tracker file and the store's files: no word of the citizen anywhere.
    assert find_in_files(assistant.config.tracker_db.parent, WORDS) == []
