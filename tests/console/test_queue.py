"""Queues: ordered by due time, filtered, counted, time left or overdue; the JSON the page polls."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from bot.store.db import session_scope
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from tests.console.conftest import sign_in


def _set(db_url: str, public_id: str, **values) -> None:
    with session_scope(db_url) as session:
        session.execute(update(Ticket).where(Ticket.public_id == public_id).values(**values))


def _ids(client, query: str = "") -> list[str]:
    return [t["id"] for t in client.get(f"/console/api/queue/waste{query}").json()["tickets"]]


def test_queue_is_ordered_by_due_time_with_time_left_and_overdue(client, make_staff, make_ticket, db_url) -> None:
    make_staff("ana")
    sign_in(client, "ana")
    later = make_ticket("bin not emptied")
    urgent = make_ticket("gas leak next to the bins", priority="urgent")
    late = make_ticket("bins overflowing for a week")
    _set(db_url, late, due_at=utcnow() - timedelta(hours=2, minutes=5))
    assert _ids(client) == [late, urgent, later]
    data = client.get("/console/api/queue/waste").json()
    first = data["tickets"][0]
    assert first["overdue"] is True and first["time_left"] == "overdue by 2 h 5 min"
    assert data["tickets"][1]["time_left"].endswith("left") and not data["tickets"][1]["overdue"]
    assert data["counts"]["active"] == 3 and data["counts"]["overdue"] == 1 and data["counts"]["unassigned"] == 3
    page = client.get("/console/queue/waste").text
    assert "overdue by 2 h 5 min" in page and page.index(late) < page.index(urgent) < page.index(later)


def test_filters(client, make_staff, make_ticket, db_url) -> None:
    ana = make_staff("ana")
    sign_in(client, "ana")
    web = make_ticket("web ticket")
    mail = make_ticket("mail ticket", channel="email", sender="x@example.org", priority="high")
    mine = make_ticket("assigned to ana")
    done = make_ticket("already resolved")
    _set(db_url, mine, assignee_id=ana.id)
    _set(db_url, done, status="resolved")
    _set(db_url, web, due_at=utcnow() - timedelta(minutes=1))
    assert set(_ids(client)) == {web, mail, mine}
    assert _ids(client, "?status=resolved") == [done]
    assert set(_ids(client, "?status=all")) == {web, mail, mine, done}
    assert _ids(client, "?channel=email") == [mail]
    assert _ids(client, "?priority=high") == [mail]
    assert _ids(client, "?mine=1") == [mine]
    assert set(_ids(client, "?unassigned=1")) == {web, mail}
    assert _ids(client, "?overdue=1") == [web]
    # Nonsense in the query string is ignored, not an error page.
    assert set(_ids(client, "?status=bogus&priority=<x>")) == {web, mail, mine}
    counts = client.get("/console/api/queue/waste").json()["counts"]
    assert (counts["mine"], counts["resolved"], counts["new"]) == (1, 1, 3)


def test_overview_counts_per_department(client, make_staff, make_ticket) -> None:
    make_staff("ana", departments=("waste", "parking"))
    sign_in(client, "ana")
    make_ticket("a", department="waste")
    make_ticket("b", department="waste")
    make_ticket("c", department="parking")
    page = client.get("/console/").text
    opened = dict(re.findall(r'data-department="(\w+)">.*?<b>(\d+)</b>open', page, re.S))
    assert opened == {"waste": "2", "parking": "1"}


def test_queue_json_is_data_not_markup(client, make_staff, make_ticket) -> None:
    make_staff("ana")
    sign_in(client, "ana")
    make_ticket('<img src=x onerror="window.pwned=1">')
    data = client.get("/console/api/queue/waste")
    assert data.headers["content-type"].startswith("application/json")
    assert data.json()["tickets"][0]["subject"] == '<img src=x onerror="window.pwned=1">'
    page = client.get("/console/queue/waste").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;" in page
