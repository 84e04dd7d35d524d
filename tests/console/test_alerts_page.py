"""Commitment alerts in the console: the banner on the queue pages, the list, and staff e-mail addresses."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.alerts.job import raise_alerts
from bot.staff.models import AuditLog, StaffUser
from bot.store.db import session_scope
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from tests.console.conftest import sign_in


def _raise(db_url: str, settings, public_id: str, assignee_id: int | None = None) -> None:  # noqa: ANN001
    with session_scope(db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        ticket.assignee_id = assignee_id
        session.flush()
        raise_alerts(session, settings, now=utcnow() + timedelta(days=3), mail=False)


def test_alerts_show_to_the_department_and_the_assignee_only(client, make_staff, make_ticket, db_url,
                                                              console_settings) -> None:
    wanda = make_staff("wanda", departments=("waste",))
    rob = make_staff("rob", departments=("roads",))
    late = make_ticket("bin not emptied <b>again</b>", department="waste")
    _raise(db_url, console_settings, late, assignee_id=wanda.id)

    sign_in(client, "wanda")
    overview = client.get("/console/").text
    assert 'data-alerts="1"' in overview and "/console/alerts" in overview
    assert 'data-alerts="1"' in client.get("/console/queue/waste").text
    page = client.get("/console/alerts").text
    assert f'data-ticket="{late}" data-threshold="overdue"' in page
    assert "you" in page and "department" in page
    assert "<b>again</b>" not in page  # citizen text is not on this page, and never unescaped
    assert f'data-ticket="{late}"' in client.get("/console/alerts?mine=1").text

    client.cookies.clear()
    sign_in(client, "rob")
    assert "data-alerts" not in client.get("/console/").text
    assert late not in client.get("/console/alerts").text

    # Reassigned to rob (who does not work waste): wanda's own alert goes, rob sees none (not raised for him yet).
    with session_scope(db_url) as session:
        session.scalars(select(Ticket).where(Ticket.public_id == late)).one().assignee_id = rob.id
    assert late not in client.get("/console/alerts").text
    client.cookies.clear()
    sign_in(client, "wanda")
    assert client.get("/console/alerts").text.count(f'data-ticket="{late}"') == 1  # the department's only

    # Resolving the ticket clears its alerts.
    with session_scope(db_url) as session:
        session.scalars(select(Ticket).where(Ticket.public_id == late)).one().status = "resolved"
    client.cookies.clear()
    sign_in(client, "wanda")
    assert late not in client.get("/console/alerts").text and "data-alerts" not in client.get("/console/").text


def test_admin_sets_and_clears_a_staff_e_mail_address(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    wanda = make_staff("wanda", departments=("waste",))
    csrf = sign_in(client, "root")
    form = {"display_name": "Wanda", "role": "agent", "departments": ["waste"], "active": "1", "csrf_token": csrf}
    assert 'name="email"' in client.get(f"/console/admin/staff/{wanda.id}").text
    bad = client.post(f"/console/admin/staff/{wanda.id}", data={**form, "email": "wanda at city"})
    assert bad.status_code == 400 and "does not look like an e-mail address" in bad.text
    client.post(f"/console/admin/staff/{wanda.id}", data={**form, "email": " wanda@city.example "})
    with session_scope(db_url) as session:
        assert session.get(StaffUser, wanda.id).email == "wanda@city.example"
        changes = session.scalars(select(AuditLog.detail).where(AuditLog.action == "staff.update")).all()
        assert changes[-1] == {"email": [None, "wanda@city.example"]}
    client.post(f"/console/admin/staff/{wanda.id}", data=form)  # a form without the field keeps it
    with session_scope(db_url) as session:
        assert session.get(StaffUser, wanda.id).email == "wanda@city.example"
    client.post(f"/console/admin/staff/{wanda.id}", data={**form, "email": ""})
    with session_scope(db_url) as session:
        assert session.get(StaffUser, wanda.id).email is None
