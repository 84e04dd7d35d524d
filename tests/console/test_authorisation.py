"""Roles and departments are checked on the server for every route.

An agent who edits an ID in a URL or a form gets 404 for another
department's ticket (the same answer as for a ticket that does not exist), and
nothing changes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.staff.models import AuditLog
from bot.store.db import session_scope
from bot.store.models import Message
from bot.tickets.models import Ticket, TicketEvent
from tests.console.conftest import sign_in


def _snapshot(db_url: str, public_id: str) -> tuple:
    with session_scope(db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        return (
            ticket.status, ticket.priority, ticket.assignee_id, ticket.due_at, ticket.updated_at,
            session.scalar(select(func.count()).select_from(TicketEvent)),
            session.scalar(select(func.count()).select_from(Message)),
            session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action.startswith("ticket."))),
        )


@pytest.fixture
def waste_agent(client, make_staff):
    make_staff("wanda", departments=("waste",))
    return sign_in(client, "wanda")


def test_agent_sees_only_their_departments(client, waste_agent, make_ticket) -> None:
    waste = make_ticket("My bin was not emptied", department="waste")
    taxes = make_ticket("My tax bill is wrong", department="taxes")
    overview = client.get("/console/")
    assert "/console/queue/waste" in overview.text and "/console/queue/taxes" not in overview.text
    assert client.get(f"/console/tickets/{waste}").status_code == 200
    for url in (f"/console/tickets/{taxes}", "/console/queue/taxes", "/console/api/queue/taxes",
                f"/console/api/tickets/{taxes}/deliveries"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert taxes not in response.text and "My tax bill" not in response.text


def test_another_departments_ticket_looks_exactly_like_a_missing_one(client, waste_agent, make_ticket) -> None:
    taxes = make_ticket("My tax bill is wrong", department="taxes")
    other = client.get(f"/console/tickets/{taxes}")
    missing = client.get("/console/tickets/AAA-AAA-AAA")
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text


@pytest.mark.parametrize(
    "action, data",
    [
        ("reply", {"text": "Hello from waste"}),
        ("note", {"text": "a note"}),
        ("status", {"status": "resolved", "notify": "1", "message": "done"}),
        ("assign", {"assignee": "me"}),
        ("priority", {"priority": "urgent"}),
    ],
)
def test_posting_a_form_for_another_departments_ticket_changes_nothing(
    client, waste_agent, make_ticket, db_url, action: str, data: dict
) -> None:
    taxes = make_ticket("My tax bill is wrong", department="taxes")
    before = _snapshot(db_url, taxes)
    response = client.post(f"/console/tickets/{taxes}/{action}", data={**data, "csrf_token": waste_agent},
                           follow_redirects=False)
    assert response.status_code == 404
    assert _snapshot(db_url, taxes) == before


def test_agent_cannot_assign_a_ticket_to_someone_of_another_department(
    client, waste_agent, make_staff, make_ticket, db_url
) -> None:
    """Agents may only take tickets themselves; the form's assignee id is checked, not trusted."""
    other = make_staff("terry", departments=("taxes",))
    waste = make_ticket("bin", department="waste")
    response = client.post(f"/console/tickets/{waste}/assign", data={"assignee": str(other.id),
                                                                      "csrf_token": waste_agent})
    assert response.status_code == 409
    with session_scope(db_url) as session:
        assert session.scalars(select(Ticket.assignee_id)).one() is None


def test_supervisor_sees_every_department(client, make_staff, make_ticket) -> None:
    make_staff("sue", role="supervisor", departments=())
    sign_in(client, "sue")
    taxes = make_ticket("My tax bill is wrong", department="taxes")
    assert client.get(f"/console/tickets/{taxes}").status_code == 200
    assert client.get("/console/queue/taxes").status_code == 200
    assert client.get("/console/audit").status_code == 200
    assert client.get("/console/admin/staff").status_code == 403


@pytest.mark.parametrize("url", ["/console/admin/staff", "/console/admin/departments", "/console/audit"])
def test_agents_cannot_open_supervisor_or_admin_pages(client, waste_agent, url: str) -> None:
    assert client.get(url).status_code == 403


def test_agents_cannot_post_to_admin_routes(client, waste_agent, db_url) -> None:
    response = client.post(
        "/console/admin/staff",
        data={"username": "mallory", "password": "a long enough password", "role": "admin",
              "csrf_token": waste_agent},
    )
    assert response.status_code == 403
    response = client.post("/console/admin/departments/waste", data={"hours": "1000", "csrf_token": waste_agent})
    assert response.status_code == 403
    from bot.staff.models import DepartmentSetting, StaffUser

    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(StaffUser)) == 1
        assert session.scalars(select(DepartmentSetting)).all() == []


def test_unknown_queue_is_404(client, waste_agent) -> None:
    assert client.get("/console/queue/no-such-department").status_code == 404
