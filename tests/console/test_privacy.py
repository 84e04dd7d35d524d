"""Data requests in the console: supervisors only, a reason required, CSRF checked, audit without content."""

from __future__ import annotations

import io
import json
import zipfile

import sqlalchemy as sa

from bot.staff.models import AuditLog
from bot.store.db import session_factory
from bot.tickets.models import Ticket
from bot.tickets.service import change_status
from tests.console.conftest import sign_in

SECRET_TEXT = "Gwendolyn Applethwaite of 9 Marrowbone Street lost her bin"


def test_agents_cannot_reach_data_requests(client, make_staff, make_ticket) -> None:
    make_staff("wanda", departments=("waste",))
    csrf = sign_in(client, "wanda")
    ticket = make_ticket(SECRET_TEXT)
    assert client.get("/console/privacy").status_code == 403
    response = client.post("/console/privacy/export", data={"citizen": ticket, "reason": "x", "csrf_token": csrf})
    assert response.status_code == 403


def test_supervisor_exports_and_erases_with_a_reason(client, make_staff, make_ticket, db_url) -> None:
    make_staff("sue", role="supervisor", departments=())
    csrf = sign_in(client, "sue")
    ticket = make_ticket(SECRET_TEXT, sender="gwen-web-1")
    page = client.get("/console/privacy")
    assert page.status_code == 200 and "Data requests" in page.text
    # Without the CSRF token, or without a reason, nothing happens.
    assert client.post("/console/privacy/export", data={"citizen": ticket, "reason": "r"}).status_code == 403
    assert client.post("/console/privacy/export", data={"citizen": ticket, "reason": " ", "csrf_token": csrf}
                       ).status_code == 400
    missing = client.post("/console/privacy/export", data={"citizen": "web:nobody", "reason": "r", "csrf_token": csrf})
    assert missing.status_code == 404 and "No citizen matches" in missing.text

    export = client.post("/console/privacy/export", data={"citizen": ticket, "reason": "Letter 2026/17",
                                                          "csrf_token": csrf})
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    bundle = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("data.json"))
    assert SECRET_TEXT in [m["text"] for m in bundle["messages"]]

    # The ticket is still open: erasure keeps it (legal hold) and says so.
    held = client.post("/console/privacy/erase", data={"citizen": "web:gwen-web-1", "reason": "Letter 2026/17",
                                                       "confirm": "yes", "csrf_token": csrf})
    assert held.status_code == 200 and ticket in held.text and "legal hold" in held.text
    sessions = session_factory(db_url)
    with sessions.begin() as session:
        row = session.scalars(sa.select(Ticket).where(Ticket.public_id == ticket)).one()
        assert row.subject != "[erased]"
        change_status(session, row, "closed", actor="agent:sue")
    unconfirmed = client.post("/console/privacy/erase", data={"citizen": ticket, "reason": "Letter 2026/17",
                                                              "csrf_token": csrf})
    assert unconfirmed.status_code == 400
    done = client.post("/console/privacy/erase", data={"citizen": ticket, "reason": "Letter 2026/17",
                                                       "confirm": "yes", "csrf_token": csrf})
    assert done.status_code == 200 and "legal hold" not in done.text
    with sessions() as session:
        assert session.scalars(sa.select(Ticket.subject).where(Ticket.public_id == ticket)).one() == "[erased]"
        rows = list(session.scalars(sa.select(AuditLog).where(AuditLog.action.startswith("privacy."))
                                    .order_by(AuditLog.id)))
    assert [r.action for r in rows] == ["privacy.export", "privacy.erase", "privacy.erase"]
    assert all(r.actor == "sue" and r.detail["reason"] == "Letter 2026/17" for r in rows)
    assert all("Marrowbone" not in json.dumps(r.detail) for r in rows)
