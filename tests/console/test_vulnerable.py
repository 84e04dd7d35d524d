"""Vulnerable first in the console: the queue order, the badge (escaped), the agent's override
with a required reason (due time, events, audit), and the citizen's record only with consent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core.escalation import escalate
from bot.identity.vulnerability import on_record
from bot.staff.models import AuditLog
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_scope
from bot.store.messages import record_inbound
from bot.tickets.models import Ticket, TicketEvent
from tests.console.conftest import sign_in


def _ticket(db_url: str, public_id: str) -> Ticket:
    with session_scope(db_url) as session:
        return session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()


def _audit(db_url: str) -> list[tuple[str, str, dict]]:
    with session_scope(db_url) as session:
        return [(a.actor, a.action, a.detail) for a in session.scalars(select(AuditLog).order_by(AuditLog.id))
                if a.action.endswith(".vulnerable")]


def _events(db_url: str, public_id: str) -> list[TicketEvent]:
    with session_scope(db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                              TicketEvent.kind == "vulnerable_changed")))


@pytest.fixture
def agent(client, make_staff):
    make_staff("ana", departments=("waste",), display_name="Ana Agent")
    return sign_in(client, "ana")


def _flag(client, csrf: str, public_id: str, vulnerable: bool, reason: str):
    return client.post(f"/console/tickets/{public_id}/vulnerable",
                       data={"vulnerable": "1" if vulnerable else "0", "reason": reason, "csrf_token": csrf},
                       follow_redirects=False)


def test_an_agent_flags_with_a_reason_and_the_ticket_goes_first(client, agent, make_ticket, db_url) -> None:
    earlier = make_ticket("My bin was not emptied")
    later = make_ticket("The recycling was not collected")
    rows = client.get("/console/api/queue/waste").json()["tickets"]
    assert [r["id"] for r in rows] == [earlier, later]

    refused = _flag(client, agent, later, True, "   ")
    assert refused.status_code == 400 and "Give a reason" in refused.text
    assert not _ticket(db_url, later).vulnerable and _audit(db_url) == [] and _events(db_url, later) == []

    assert _flag(client, agent, later, True, "she is blind").status_code == 303
    ticket = _ticket(db_url, later)
    assert ticket.vulnerable and ticket.vulnerable_reason == "agent ana: she is blind"
    assert ticket.vulnerable_by == "agent:ana" and ticket.vulnerable_at is not None
    assert ticket.due_at - ticket.created_at == timedelta(hours=4)
    rows = client.get("/console/api/queue/waste").json()["tickets"]
    assert [r["id"] for r in rows] == [later, earlier]
    assert rows[0]["vulnerable"] and rows[0]["vulnerable_reason"] == "agent ana: she is blind"
    page = client.get("/console/queue/waste").text
    assert page.index(later) < page.index(earlier) and "vulnerable: agent ana: she is blind" in page
    assert "vulnerable: agent ana: she is blind" in client.get(f"/console/tickets/{later}").text
    [(actor, action, detail)] = _audit(db_url)
    assert (actor, action, detail["to"], detail["reason"]) == ("ana", "ticket.vulnerable", True, "she is blind")
    assert len(_events(db_url, later)) == 1


def test_an_agent_removes_the_flag_of_a_rule_with_a_reason(client, agent, console_settings, db_url) -> None:
    with session_scope(db_url) as session:
        identity = get_or_create_identity(session, "web", "w-wheel")
        inbound, _ = record_inbound(session, identity, "I use a wheelchair and the bin is too high")
        public_id = escalate(session, inbound, reason="complaint", kb_ranking=[],
                             settings=console_settings).ticket.public_id
    ticket = _ticket(db_url, public_id)
    assert ticket.vulnerable and ticket.vulnerable_reason == "mentions a wheelchair"
    assert _flag(client, agent, public_id, False, "").status_code == 400
    assert _ticket(db_url, public_id).vulnerable
    assert _flag(client, agent, public_id, False, "a neighbour's wheelchair, not the citizen's").status_code == 303
    ticket = _ticket(db_url, public_id)
    assert not ticket.vulnerable and ticket.due_at - ticket.created_at == timedelta(hours=24)
    assert ticket.vulnerable_reason == "agent ana: a neighbour's wheelchair, not the citizen's"
    assert [e.actor for e in _events(db_url, public_id)] == ["assistant", "agent:ana"]
    assert [d["to"] for _, _, d in _audit(db_url)] == [False]


def test_the_reason_is_escaped(client, agent, make_ticket, db_url) -> None:
    public_id = make_ticket("My bin was not emptied")
    assert _flag(client, agent, public_id, True, "<script>alert(1)</script>").status_code == 303
    for url in (f"/console/tickets/{public_id}", "/console/queue/waste"):
        page = client.get(url).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_citizen_record_needs_consent(client, agent, make_ticket, db_url) -> None:
    public_id = make_ticket("My bin was not emptied", channel="web", sender="w-rec")
    post = lambda **data: client.post(  # noqa: E731
        f"/console/tickets/{public_id}/citizen-vulnerable", data={"csrf_token": agent, **data}, follow_redirects=False)
    refused = post(action="record", channel="phone")
    assert refused.status_code == 400 and "consent" in refused.text
    ticket = _ticket(db_url, public_id)
    with session_scope(db_url) as session:
        assert not on_record(session, ticket.citizen_id)
    assert post(action="record", consent="1", channel="nowhere").status_code == 400

    assert post(action="record", consent="1", channel="phone").status_code == 303
    ticket = _ticket(db_url, public_id)
    assert ticket.vulnerable and ticket.vulnerable_reason == "citizen record"
    with session_scope(db_url) as session:
        assert on_record(session, ticket.citizen_id)
    assert "on record as vulnerable" in client.get(f"/console/tickets/{public_id}").text

    assert post(action="clear").status_code == 303
    with session_scope(db_url) as session:
        assert not on_record(session, ticket.citizen_id)
    assert [d["to"] for _, a, d in _audit(db_url) if a == "citizen.vulnerable"] == [True, False]
    assert post(action="clear").status_code == 400
