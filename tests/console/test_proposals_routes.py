"""Proposing from a ticket or a gap, reviewing, approving into the KB files: through the console."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.console.insights_models import KbProposal
from bot.kb.loader import load_kb
from bot.settings import PROJECT_ROOT
from bot.staff.models import AuditLog
from bot.store.db import session_scope
from bot.store.models import Message
from bot.tickets.models import Ticket
from tests.console.conftest import build_app, make_settings, sign_in, ticket_factory
from tests.console.kb_snapshot import kb_snapshot

QUESTION = "When is the compost fair this year?"


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge_base"
    shutil.copytree(PROJECT_ROOT / "knowledge_base", target)
    return target


@pytest.fixture
def app_client(db_url: str, kb_dir: Path):
    settings = make_settings(db_url, kb_dir=kb_dir)
    with TestClient(build_app(settings), base_url="http://testserver") as test_client:
        test_client.settings = settings
        yield test_client


@pytest.fixture
def make_ticket2(db_url: str, app_client):
    return ticket_factory(db_url, app_client.settings)


def _gap_ticket(db_url: str, make_ticket, text: str = QUESTION, department: str = "waste") -> tuple[str, int]:
    """A ticket opened because the KB had no answer; returns (public id, message id)."""
    public_id = make_ticket(text, department=department, reason="low_confidence")
    with session_scope(db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        message = session.scalars(select(Message).where(Message.ticket_id == ticket.id)).one()
        message.intent, message.handling = "faq", "escalated"
        return public_id, message.id


def _audit(db_url: str, action: str) -> list[AuditLog]:
    with session_scope(db_url) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _proposal(db_url: str) -> KbProposal:
    with session_scope(db_url) as session:
        return session.scalars(select(KbProposal).order_by(KbProposal.id.desc())).first()


def _propose(client: TestClient, csrf: str, **fields) -> object:
    data = {"csrf_token": csrf, "kind": "new_entry", "question": QUESTION,
            "answer": "The compost fair is on the first Saturday of May.", "department": "waste"}
    data.update(fields)
    return client.post("/console/proposals", data=data, follow_redirects=False)


def test_agent_proposes_from_a_ticket_with_the_form_prefilled(app_client, make_staff, make_ticket2, db_url) -> None:
    public_id, message_id = _gap_ticket(db_url, make_ticket2)
    make_staff("ana", departments=("waste",))
    csrf = sign_in(app_client, "ana")

    ticket_page = app_client.get(f"/console/tickets/{public_id}")
    assert 'action="/console/proposals/new"' in ticket_page.text  # the panel on the ticket page

    form = app_client.get(f"/console/proposals/new?ticket={public_id}&kind=new_entry")
    assert form.status_code == 200
    assert QUESTION in form.text
    assert f'name="message" value="{message_id}"' in form.text
    assert '<option value="waste" selected>' in form.text

    response = _propose(app_client, csrf, ticket=public_id, message=str(message_id))
    assert response.status_code == 303, response.text
    proposal = _proposal(db_url)
    assert (proposal.proposed_by, proposal.status, proposal.source_message_id) == ("ana", "proposed", message_id)
    [row] = _audit(db_url, "kb.proposal.create")
    assert row.actor == "ana" and row.target == f"proposal:{proposal.id}" and row.detail["ticket"] == public_id

    mine = app_client.get("/console/proposals")
    assert mine.status_code == 200 and QUESTION in mine.text
    assert "Approve and write to KB" not in mine.text  # agents do not review


def test_agent_cannot_use_another_departments_ticket_or_message(app_client, make_staff, make_ticket2, db_url) -> None:
    public_id, message_id = _gap_ticket(db_url, make_ticket2, department="parking")
    make_staff("ana", departments=("waste",))
    csrf = sign_in(app_client, "ana")
    assert app_client.get(f"/console/proposals/new?ticket={public_id}").status_code == 404
    assert app_client.get(f"/console/proposals/new?message={message_id}").status_code == 404
    assert _propose(app_client, csrf, ticket=public_id).status_code == 404
    assert _propose(app_client, csrf, message=str(message_id)).status_code == 404
    assert _proposal(db_url) is None


def test_agents_cannot_review_and_forms_need_csrf(app_client, make_staff, db_url) -> None:
    make_staff("ana")
    csrf = sign_in(app_client, "ana")
    assert _propose(app_client, "wrong-token").status_code == 403
    assert _propose(app_client, csrf).status_code == 303
    proposal = _proposal(db_url)
    response = app_client.post(f"/console/proposals/{proposal.id}", data={"csrf_token": csrf, "action": "approve"})
    assert response.status_code == 403
    assert _proposal(db_url).status == "proposed"


def test_bad_proposals_get_the_form_back_with_the_reason(app_client, make_staff) -> None:
    make_staff("ana")
    csrf = sign_in(app_client, "ana")
    response = _propose(app_client, csrf, answer="  ")
    assert response.status_code == 400 and "answer is empty" in response.text and QUESTION in response.text
    response = _propose(app_client, csrf, department="spaceport")
    assert response.status_code == 400 and "unknown department" in response.text


def test_supervisor_edits_and_approves_into_the_kb_files(app_client, make_staff, db_url, kb_dir) -> None:
    make_staff("ana")
    make_staff("sam", role="supervisor", departments=())
    _propose(app_client, sign_in(app_client, "ana"))
    proposal = _proposal(db_url)
    app_client.cookies.clear()
    csrf = sign_in(app_client, "sam")

    page = app_client.get("/console/proposals")
    assert f'id="proposal-{proposal.id}"' in page.text and "waste-compost-fair-this-year" in page.text

    response = app_client.post(f"/console/proposals/{proposal.id}", data={
        "csrf_token": csrf, "action": "approve", "kind": "new_entry", "question": QUESTION,
        "answer": "The compost fair is on the first Saturday of May, 10:00-16:00, at the depot.",
        "department": "waste", "target_entry_id": "", "entry_id": "waste-compost-fair", "comment": "thanks",
    }, follow_redirects=False)
    assert response.status_code == 303, response.text
    stored = _proposal(db_url)
    assert (stored.status, stored.reviewer, stored.entry_id) == ("approved", "sam", "waste-compost-fair")

    kb, problems = load_kb(kb_dir)
    entry = kb.entry("waste-compost-fair")
    assert entry.questions == {"en": [QUESTION]} and "10:00-16:00" in entry.answer["en"]
    assert "waste-compost-fair" in (kb_dir / "waste.yml").read_text()
    [edit] = _audit(db_url, "kb.proposal.edit")
    assert edit.actor == "sam" and "answer" in edit.detail["changes"]
    [approve] = _audit(db_url, "kb.proposal.approve")
    assert approve.detail == {"kind": "new_entry", "entry_id": "waste-compost-fair", "file": "waste.yml",
                              "comment": "thanks"}

    # The console's canned answers see the new entry at once.
    kb_api = app_client.get("/console/api/kb?q=compost")
    assert kb_api.status_code == 200 and "waste-compost-fair" in kb_api.text


def test_an_invalid_approval_shows_the_validator_message_and_changes_nothing(
        app_client, make_staff, db_url, kb_dir) -> None:
    kb, _ = load_kb(kb_dir)
    taken = kb.entry("waste-bulky-items").questions["en"][0]
    make_staff("sam", role="supervisor", departments=())
    csrf = sign_in(app_client, "sam")
    _propose(app_client, csrf, question=taken)
    proposal = _proposal(db_url)
    before = kb_snapshot(kb_dir)
    response = app_client.post(f"/console/proposals/{proposal.id}", data={
        "csrf_token": csrf, "action": "approve", "question": taken, "answer": "Edited answer", "entry_id": "",
    })
    assert response.status_code == 422
    assert "is also in entry" in response.text and "waste-bulky-items" in response.text
    assert "Edited answer" in response.text  # the supervisor's edits are kept in the form
    assert kb_snapshot(kb_dir) == before
    assert _proposal(db_url).status == "proposed" and _proposal(db_url).answer != "Edited answer"
    assert _audit(db_url, "kb.proposal.approve") == []


def test_phrasing_and_rejection(app_client, make_staff, db_url, kb_dir) -> None:
    make_staff("sam", role="supervisor", departments=())
    csrf = sign_in(app_client, "sam")
    _propose(app_client, csrf, kind="new_phrasing", question="who takes my old sofa away",
             target_entry_id="waste-bulky-items", answer="")
    first = _proposal(db_url)
    assert first.kind == "new_phrasing" and first.target_entry_id == "waste-bulky-items"
    assert app_client.post(f"/console/proposals/{first.id}", data={"csrf_token": csrf, "action": "approve"},
                           follow_redirects=False).status_code == 303
    kb, _ = load_kb(kb_dir)
    assert "who takes my old sofa away" in kb.entry("waste-bulky-items").questions["en"]

    _propose(app_client, csrf, question="Can I keep chickens?")
    second = _proposal(db_url)
    response = app_client.post(f"/console/proposals/{second.id}",
                               data={"csrf_token": csrf, "action": "reject", "comment": "not a city service"},
                               follow_redirects=False)
    assert response.status_code == 303
    assert _proposal(db_url).status == "rejected"
    [row] = _audit(db_url, "kb.proposal.reject")
    assert row.detail == {"comment": "not a city service"}
    again = app_client.post(f"/console/proposals/{second.id}", data={"csrf_token": csrf, "action": "approve"})
    assert again.status_code == 422 and "already rejected" in again.text
    assert app_client.post("/console/proposals/99999", data={"csrf_token": csrf, "action": "reject"}).status_code == 404


def test_gaps_page_lists_missing_answers_for_the_agents_departments(app_client, make_staff, make_ticket2,
                                                                    db_url) -> None:
    _gap_ticket(db_url, make_ticket2, text='<img src=x onerror="alert(1)">')
    _gap_ticket(db_url, make_ticket2, text="compost fair: when??")
    _, message_id = _gap_ticket(db_url, make_ticket2, text="When is the compost fair?")
    _gap_ticket(db_url, make_ticket2, text="Can I park a boat on my street?", department="parking")
    make_ticket2("The bin was not emptied", reason="complaint")  # a complaint is not a gap
    make_staff("ana", departments=("waste",))
    sign_in(app_client, "ana")
    page = app_client.get("/console/gaps")
    assert page.status_code == 200
    html = page.text
    assert "compost fair" in html and "boat" not in html and "not emptied" not in html
    assert '<img src=x onerror' not in html and "&lt;img src=x onerror=" in html
    assert f'href="/console/proposals/new?message={message_id}"' in html
    assert re.search(r'<td class="count">2</td>', html)

    form = app_client.get(f"/console/proposals/new?message={message_id}")
    assert form.status_code == 200 and "When is the compost fair?" in form.text
