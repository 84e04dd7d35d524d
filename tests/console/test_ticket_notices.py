"""Status notices from the ticket page: taking a ticket tells a citizen who asked for notices;
"waiting for the citizen" with a question sends the question to any citizen."""

from __future__ import annotations

import sqlalchemy as sa

from bot.identity.consent import give_consent
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.models import Ticket
from tests.console.conftest import sign_in


def _consent(db_url: str, public_id: str) -> None:
    with session_factory(db_url).begin() as session:
        ticket = session.scalars(sa.select(Ticket).where(Ticket.public_id == public_id)).one()
        give_consent(session, ticket.citizen_id, "notifications", channel="web", source="test")


def _out(db_url: str) -> list[tuple[str, str]]:
    with session_factory(db_url)() as session:
        return [tuple(row) for row in session.execute(
            sa.select(Message.author, Message.text).where(Message.direction == "out").order_by(Message.id))]


def test_taking_a_ticket_tells_a_citizen_who_asked(client, make_staff, make_ticket, db_url) -> None:
    make_staff("ana")
    told, untold = make_ticket("My bin was not emptied"), make_ticket("My bin is broken")
    _consent(db_url, told)
    csrf = sign_in(client, "ana")
    for public_id in (told, untold):
        response = client.post(f"/console/tickets/{public_id}/assign", data={"assignee": "me", "csrf_token": csrf},
                               follow_redirects=False)
        assert response.status_code == 303
    (notice,) = _out(db_url)
    assert notice[0] == "notices" and told in notice[1] and "Waste and Recycling" in notice[1]


def test_waiting_with_a_question_sends_it(client, make_staff, make_ticket, db_url) -> None:
    make_staff("ana")
    public_id = make_ticket("My bin was not emptied")
    csrf = sign_in(client, "ana")
    page = client.get(f"/console/tickets/{public_id}")
    assert 'name="question"' in page.text
    response = client.post(f"/console/tickets/{public_id}/status", follow_redirects=False, data={
        "status": "pending_citizen", "question": "Which street is it?", "csrf_token": csrf})
    assert response.status_code == 303 and "done=status_notified" in response.headers["location"]
    (reply,) = _out(db_url)
    assert reply[0] == "agent:ana" and "Which street is it?" in reply[1] and public_id in reply[1]
    # Without a question, and without consent: nobody is told.
    client.post(f"/console/tickets/{public_id}/status", data={"status": "open", "csrf_token": csrf})
    response = client.post(f"/console/tickets/{public_id}/status", follow_redirects=False,
                           data={"status": "pending_citizen", "csrf_token": csrf})
    assert "done=status" in response.headers["location"] and len(_out(db_url)) == 1


def test_the_ticket_page_shows_what_the_citizen_agreed_to_be_sent(client, make_staff, make_ticket, db_url) -> None:
    make_staff("ana")
    public_id = make_ticket("My bin was not emptied")
    sign_in(client, "ana")
    assert "No consent to notices" in client.get(f"/console/tickets/{public_id}").text
    _consent(db_url, public_id)
    page = client.get(f"/console/tickets/{public_id}").text
    assert "Agreed to be sent" in page and ">notifications</span>" in page and "No consent" not in page
