"""Admin pages: accounts and departments' response commitments; the audit page."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.console.models import StaffSession
from bot.staff.models import AuditLog, DepartmentSetting, StaffUser
from bot.store.db import session_scope
from bot.tickets.models import Ticket
from tests.console.conftest import PASSWORD, login_form_token, sign_in


def _user(db_url: str, username: str) -> StaffUser:
    with session_scope(db_url) as session:
        user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        _ = user.departments
        return user


def test_admin_creates_an_agent_who_can_then_sign_in(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    csrf = sign_in(client, "root")
    response = client.post(
        "/console/admin/staff",
        data={"username": "Wanda", "display_name": "Wanda W.", "password": "bins and more bins",
              "role": "agent", "departments": ["waste", "roads"], "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    wanda = _user(db_url, "wanda")
    assert (wanda.role, wanda.departments, wanda.display_name) == ("agent", ["roads", "waste"], "Wanda W.")
    assert "Wanda W." in client.get("/console/admin/staff").text
    with TestClient(client.app) as other:
        sign_in(other, "wanda", "bins and more bins")
    with session_scope(db_url) as session:
        row = session.scalars(select(AuditLog).where(AuditLog.action == "staff.create",
                                                     AuditLog.target == "staff:wanda")).one()
        assert row.actor == "root" and "password" not in row.detail


def test_weak_password_duplicate_username_and_unknown_department_are_refused(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    csrf = sign_in(client, "root")
    cases = [
        ({"username": "wanda", "password": "short", "role": "agent"}, "at least 12 characters"),
        ({"username": "root", "password": "bins and more bins", "role": "agent"}, "is taken"),
        ({"username": "wanda", "password": "bins and more bins", "role": "agent", "departments": ["moon"]},
         "unknown department"),
        ({"username": "x y", "password": "bins and more bins", "role": "agent"}, "username must be"),
        ({"username": "wanda", "password": "bins and more bins", "role": "king"}, "unknown role"),
    ]
    for data, message in cases:
        response = client.post("/console/admin/staff", data={**data, "csrf_token": csrf})
        assert response.status_code == 400 and message in response.text, message
    with session_scope(db_url) as session:
        assert [u.username for u in session.scalars(select(StaffUser))] == ["root"]


def test_deactivating_an_agent_ends_their_sessions(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    wanda = make_staff("wanda")
    csrf = sign_in(client, "root")
    with TestClient(client.app) as agent:
        sign_in(agent, "wanda")
        assert agent.get("/console/").status_code == 200
        response = client.post(f"/console/admin/staff/{wanda.id}",
                               data={"display_name": "Wanda", "role": "agent", "departments": ["waste"],
                                     "csrf_token": csrf}, follow_redirects=False)
        assert response.status_code == 303
        assert agent.get("/console/", follow_redirects=False).status_code == 303
    with session_scope(db_url) as session:
        assert session.scalars(select(StaffSession).where(StaffSession.staff_id == wanda.id)).all() == []
        assert session.scalars(select(AuditLog.action).where(AuditLog.target == "staff:wanda")).all()[-1] == \
            "staff.deactivate"


def test_role_and_departments_change(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    wanda = make_staff("wanda", departments=("waste",))
    csrf = sign_in(client, "root")
    client.post(f"/console/admin/staff/{wanda.id}",
                data={"display_name": "Wanda", "role": "supervisor", "departments": ["roads", "waste"],
                      "active": "1", "csrf_token": csrf})
    user = _user(db_url, "wanda")
    assert (user.role, user.departments, user.active) == ("supervisor", ["roads", "waste"], True)
    client.post(f"/console/admin/staff/{wanda.id}",
                data={"display_name": "Wanda", "role": "agent", "departments": ["roads"], "active": "1",
                      "csrf_token": csrf})
    assert _user(db_url, "wanda").departments == ["roads"]


def test_the_last_admin_cannot_lock_everyone_out(client, make_staff) -> None:
    root = make_staff("root", role="admin", departments=())
    csrf = sign_in(client, "root")
    response = client.post(f"/console/admin/staff/{root.id}",
                           data={"display_name": "Root", "role": "agent", "active": "1", "csrf_token": csrf})
    assert response.status_code == 400 and "last active admin" in response.text


def test_password_reset_by_an_admin(client, make_staff, db_url) -> None:
    make_staff("root", role="admin", departments=())
    wanda = make_staff("wanda")
    csrf = sign_in(client, "root")
    assert client.post(f"/console/admin/staff/{wanda.id}/password", data={"password": "12345", "csrf_token": csrf}
                       ).status_code == 400
    client.post(f"/console/admin/staff/{wanda.id}/password",
                data={"password": "a fresh passphrase now", "csrf_token": csrf})
    with TestClient(client.app) as agent:
        old = agent.post("/console/login", data={"username": "wanda", "password": PASSWORD,
                                                  "login_token": login_form_token(agent)})
        assert old.status_code == 401
        sign_in(agent, "wanda", "a fresh passphrase now")


def test_department_commitment_sets_the_due_time_of_new_tickets(client, make_staff, make_ticket, db_url) -> None:
    make_staff("root", role="admin", departments=())
    csrf = sign_in(client, "root")
    page = client.get("/console/admin/departments").text
    assert "Waste and Recycling" in page and "Local Taxes and Fees" in page
    assert client.post("/console/admin/departments/waste", data={"hours": "abc", "csrf_token": csrf}
                       ).status_code == 400
    assert client.post("/console/admin/departments/waste", data={"hours": "-3", "csrf_token": csrf}
                       ).status_code == 400
    assert client.post("/console/admin/departments/moon", data={"hours": "3", "csrf_token": csrf}
                       ).status_code == 404
    client.post("/console/admin/departments/waste", data={"hours": "48", "csrf_token": csrf})
    normal = make_ticket("bin not emptied", department="waste")
    urgent = make_ticket("gas leak at the recycling centre", department="waste", priority="urgent")
    other = make_ticket("tax bill", department="taxes")
    with session_scope(db_url) as session:
        due = {t.public_id: t.due_at - t.created_at for t in session.scalars(select(Ticket))}
        assert session.get(DepartmentSetting, "waste").response_commitment_hours == 48
        row = session.scalars(select(AuditLog).where(AuditLog.action == "department.commitment")).one()
        assert row.detail == {"from": None, "to": 48.0}
    assert due == {normal: timedelta(hours=48), urgent: timedelta(hours=4), other: timedelta(hours=24)}
    # Cleared: back to the default.
    client.post("/console/admin/departments/waste", data={"hours": "", "csrf_token": csrf})
    with session_scope(db_url) as session:
        assert session.get(DepartmentSetting, "waste").response_commitment_hours is None


def test_audit_page_lists_and_filters(client, make_staff, make_ticket) -> None:
    make_staff("sue", role="supervisor", departments=())
    csrf = sign_in(client, "sue")
    public_id = make_ticket("bin <b>not</b> emptied")
    client.post(f"/console/tickets/{public_id}/note", data={"text": "call the depot", "csrf_token": csrf})
    page = client.get("/console/audit").text
    assert "ticket.note" in page and "auth.sign_in" in page and f"ticket:{public_id}" in page
    filtered = client.get("/console/audit", params={"action": "ticket."}).text
    assert "ticket.note" in filtered and "auth.sign_in" not in filtered
    assert "ticket.note" not in client.get("/console/audit", params={"actor": "nobody"}).text


def test_the_model_page_shows_the_running_model_and_the_history(client, make_staff, db_url, tmp_path) -> None:
    from bot.modelbuilds import service

    make_staff("root", role="admin", departments=())
    make_staff("sup", role="supervisor", departments=())
    with session_scope(db_url) as session:
        build = service.request_training(session, reason="proposal 7 approved (new_entry waste-x)", requested_by="sup")
        service.record_switch(session, reason="training", by="trainer", model=tmp_path / "model-abc123.tar.gz",
                              processes={"http://127.0.0.1:5005": "model-abc123.tar.gz"}, kb_commit="1a2b3c+dirty",
                              kb_hash="feed", inputs_fingerprint="abc123", build_id=build.id)
    sign_in(client, "root")
    page = client.get("/console/admin/model")
    assert page.status_code == 200
    assert "model-abc123" in page.text and "1a2b3c+dirty" in page.text and "proposal 7 approved" in page.text
    with TestClient(client.app) as other:
        sign_in(other, "sup")
        assert other.get("/console/admin/model", follow_redirects=False).status_code in (403, 303)
