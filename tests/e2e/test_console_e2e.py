"""The console is served by the running assistant: a citizen's complaint, escalated by the
real Rasa stack, shows up in its department's queue, and the agent's reply is queued for
the citizen and recorded."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from bot.console.staff import create_staff
from bot.store.db import session_scope
from bot.store.models import Message
from bot.tickets.models import Ticket

pytestmark = pytest.mark.e2e

PASSWORD = "end to end agent passphrase"


def test_an_escalation_reaches_the_console_and_the_agent_replies(assistant, sender) -> None:
    handled = assistant.say(sender, "The staff at the counter were rude to me, I want to complain")
    ticket = handled["handling"]["ticket"]
    assert handled["handling"]["kind"] == "escalated"
    with session_scope(assistant.database_url) as session:
        create_staff(session, "test", username=f"agent-{sender}", display_name="E2E Agent", password=PASSWORD,
                     role="agent", departments=[ticket["department"]], known_departments=[ticket["department"]])

    with httpx.Client(base_url=assistant.config.api_url, timeout=30.0) as browser:
        form = browser.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
        signed_in = browser.post("/console/login", data={"username": f"agent-{sender}", "password": PASSWORD,
                                                         "login_token": token})
        assert signed_in.status_code == 303
        queue = browser.get(f"/console/queue/{ticket['department']}")
        assert queue.status_code == 200 and ticket["id"] in queue.text
        page = browser.get(f"/console/tickets/{ticket['id']}")
        assert "rude to me" in page.text and "led to this ticket" in page.text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
        replied = browser.post(f"/console/tickets/{ticket['id']}/reply",
                               data={"text": "We are sorry. The manager will call you today.", "csrf_token": csrf})
        assert replied.status_code == 303

    with session_scope(assistant.database_url) as session:
        row = session.scalars(select(Ticket).where(Ticket.public_id == ticket["id"])).one()
        reply = session.scalars(select(Message).where(Message.ticket_id == row.id,
                                                      Message.author == f"agent:agent-{sender}")).one()
        assert row.status == "open" and row.first_response_at is not None
        assert (reply.channel, reply.delivery_status) == ("web", "pending")
