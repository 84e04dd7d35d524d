from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_scope
from bot.store.messages import record_inbound, record_outbound
from bot.store.models import Message
from bot.store.types import utcnow
from bot.tickets import ids
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.service import (
    add_note,
    add_public_update,
    change_status,
    department_commitment,
    lookup_status_for_identity,
    open_or_join_ticket,
)
from bot.tickets.status import InvalidTransition


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Explicit values: a developer's .env or CRM_* variables must not change test outcomes.
    return Settings(
        _env_file=None,
        api_keys="test-key-0123456789abcdef",
        database_url=db_url,
        response_commitment_hours=24.0,
        urgent_commitment_hours=4.0,
        conversation_window_minutes=30,
    )


def _inbound(session, text: str = "My bin was not collected", address: str = "+15550001", channel: str = "sms"):
    identity = get_or_create_identity(session, channel, address)
    message, _ = record_inbound(session, identity, text)
    return identity, message


def _open(session, inbound, settings, *, reason="complaint", department="waste", **kwargs):
    return open_or_join_ticket(
        session, inbound=inbound, reason=reason, department=department, settings=settings, **kwargs
    )


def _events(session, ticket: Ticket) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.created_at, TicketEvent.id)
        )
    )


def test_a_department_without_its_own_commitment_promises_the_defaults(session, settings: Settings) -> None:
    assert department_commitment(session, "waste", "urgent", settings) == timedelta(hours=4)
    for priority in ("low", "normal", "high"):
        assert department_commitment(session, "waste", priority, settings) == timedelta(hours=24)
    with pytest.raises(ValueError):
        department_commitment(session, "waste", "whenever", settings)


def test_open_creates_ticket_with_deadline_subject_and_transcript(session, settings: Settings) -> None:
    identity = get_or_create_identity(session, "sms", "+15550001")
    earlier, _ = record_inbound(session, identity, "hello")
    bot_reply = record_outbound(session, inbound=earlier, text="Hi! How can I help?")
    inbound, _ = record_inbound(session, identity, "  My   bin\nwas not\tcollected  " + "x" * 300)
    now = utcnow()

    ticket, created = _open(session, inbound, settings, now=now)

    assert created
    assert ids.is_valid(ticket.public_id) and ticket.public_id == ids.normalize(ticket.public_id)
    assert ticket.status == "new" and ticket.priority == "normal"
    assert (ticket.citizen_id, ticket.identity_id) == (identity.citizen_id, identity.id)
    assert ticket.due_at == now + timedelta(hours=24)
    assert ticket.created_at == now and ticket.updated_at == now
    assert ticket.subject.startswith("My bin was not collected xxx") and len(ticket.subject) == 200
    assert [m.ticket_id for m in (earlier, bot_reply, inbound)] == [ticket.id] * 3
    assert inbound.text.startswith("  My   bin\n")  # the message itself is untouched

    [event] = _events(session, ticket)
    assert event.kind == "created" and event.actor == "assistant" and not event.public
    assert event.message_id == inbound.id
    lines = event.body.splitlines()
    assert lines[0].endswith("citizen: hello")
    assert lines[1].endswith("assistant: Hi! How can I help?")
    assert "citizen:   My   bin" in lines[2]


def test_urgent_ticket_gets_the_urgent_commitment(session, settings: Settings) -> None:
    _, inbound = _inbound(session, "gas leak in the stairwell")
    now = utcnow()
    ticket, _ = _open(session, inbound, settings, department="roads", priority="urgent", now=now)
    assert ticket.due_at == now + timedelta(hours=4)


def test_transcript_only_takes_the_recent_unlinked_conversation(session, settings: Settings) -> None:
    identity = get_or_create_identity(session, "web", "cookie")
    old, _ = record_inbound(session, identity, "last week")
    old.created_at = utcnow() - timedelta(days=7)
    other_identity = get_or_create_identity(session, "sms", "+15550002")
    elsewhere, _ = record_inbound(session, other_identity, "other conversation")
    inbound, _ = record_inbound(session, identity, "help")
    session.flush()

    ticket, _ = _open(session, inbound, settings, reason="request_human", department="general")

    assert old.ticket_id is None and elsewhere.ticket_id is None
    linked = session.scalars(select(Message.id).where(Message.ticket_id == ticket.id)).all()
    assert linked == [inbound.id]


def test_second_message_joins_the_open_ticket(session, settings: Settings) -> None:
    identity, first = _inbound(session, "bin not collected")
    ticket, created = _open(session, first, settings)
    second, _ = record_inbound(session, identity, "still not collected!")

    joined, created_again = _open(session, second, settings, reason="out_of_scope", department="roads")

    assert created and not created_again
    assert joined.id == ticket.id
    assert joined.reason == "complaint" and joined.department == "waste"
    assert second.ticket_id == ticket.id
    kinds = [(e.kind, e.actor, e.body, e.message_id) for e in _events(session, ticket)]
    assert kinds[-1] == ("citizen_message", "citizen", "still not collected!", second.id)
    assert session.scalars(select(Ticket.id)).all() == [ticket.id]


def test_join_works_across_channels_of_the_same_citizen(session, settings: Settings) -> None:
    identity, first = _inbound(session)
    ticket, _ = _open(session, first, settings)
    web = get_or_create_identity(session, "web", "cookie")
    web.citizen_id = identity.citizen_id  # linked by an agent
    session.flush()
    message, _ = record_inbound(session, web, "me again, from the website")
    joined, created = _open(session, message, settings)
    assert not created and joined.id == ticket.id


def test_joining_twice_with_the_same_message_is_harmless(session, settings: Settings) -> None:
    _, first = _inbound(session)
    ticket, _ = _open(session, first, settings)
    again, created = _open(session, first, settings)
    assert again.id == ticket.id and not created
    assert [e.kind for e in _events(session, ticket)] == ["created"]


def test_reply_to_pending_citizen_reopens(session, settings: Settings) -> None:
    identity, first = _inbound(session)
    ticket, _ = _open(session, first, settings, reason="personal_case", department="taxes")
    change_status(session, ticket, "pending_citizen", actor="agent:7", note="Please send your tax number.", public=True)
    answer, _ = record_inbound(session, identity, "It is 123456")

    joined, _ = _open(session, answer, settings, reason="personal_case", department="taxes")

    assert joined.status == "open"
    last = _events(session, ticket)[-1]
    assert (last.kind, last.from_status, last.to_status) == ("status_changed", "pending_citizen", "open")
    assert last.actor == "assistant"


def test_join_raises_priority_and_tightens_deadline(session, settings: Settings) -> None:
    identity, first = _inbound(session, "my heating is making noise")
    opened_at = utcnow() - timedelta(hours=10)
    ticket, _ = _open(session, first, settings, reason="report_problem", department="housing", now=opened_at)
    assert ticket.due_at == opened_at + timedelta(hours=24)
    second, _ = record_inbound(session, identity, "now there is a gas leak")
    now = utcnow()

    _open(session, second, settings, reason="report_problem", department="housing", priority="urgent", now=now)

    assert ticket.priority == "urgent"
    assert ticket.due_at == now + timedelta(hours=4)
    assert any(e.kind == "priority_changed" and "normal to urgent" in e.body for e in _events(session, ticket))

    third, _ = record_inbound(session, identity, "thanks")
    _open(session, third, settings, reason="report_problem", department="housing", priority="low")
    assert ticket.priority == "urgent"  # never lowered by a citizen message


def test_resolved_or_closed_ticket_is_not_joined(session, settings: Settings) -> None:
    identity, first = _inbound(session)
    old, _ = _open(session, first, settings)
    change_status(session, old, "resolved", actor="agent:1")
    second, _ = record_inbound(session, identity, "new problem")
    new, created = _open(session, second, settings, reason="report_problem", department="roads")
    assert created and new.id != old.id and new.public_id != old.public_id
    assert second.ticket_id == new.id
    assert first.ticket_id == old.id  # already linked messages stay with their ticket


def test_other_citizens_tickets_are_never_joined(session, settings: Settings) -> None:
    _, mine = _inbound(session, address="+15550001")
    _, theirs = _inbound(session, address="+15550002")
    a, _ = _open(session, mine, settings)
    b, created = _open(session, theirs, settings)
    assert created and a.id != b.id


def test_outbound_reply_after_ticket_shares_it(session, settings: Settings) -> None:
    _, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    reply = record_outbound(session, inbound=inbound, text=f"Your ticket is {ticket.public_id}")
    assert reply.ticket_id == ticket.id


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"reason": "bored"}, "unknown ticket reason"),
        ({"priority": "asap"}, "unknown priority"),
    ],
)
def test_open_validates_vocabulary(session, settings: Settings, kwargs: dict, error: str) -> None:
    _, inbound = _inbound(session)
    arguments = {"reason": "complaint", "department": "waste", "settings": settings} | kwargs
    with pytest.raises(ValueError, match=error):
        open_or_join_ticket(session, inbound=inbound, **arguments)


def test_outbound_message_cannot_open_a_ticket(session, settings: Settings) -> None:
    _, inbound = _inbound(session)
    reply = record_outbound(session, inbound=inbound, text="hi")
    with pytest.raises(ValueError, match="inbound"):
        _open(session, reply, settings)


def test_public_id_collision_is_retried(session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    identity, first = _inbound(session, address="+15550001")
    taken, _ = _open(session, first, settings)
    fresh = ids.new_ticket_id()
    sequence = iter([taken.public_id, fresh])
    monkeypatch.setattr(ids, "new_ticket_id", lambda: next(sequence))
    _, other = _inbound(session, address="+15550002")

    ticket, created = _open(session, other, settings)

    assert created and ticket.public_id == fresh
    assert other.ticket_id == ticket.id
    assert first.ticket_id == taken.id


def test_status_transitions_set_timestamps_and_events(session, settings: Settings) -> None:
    _, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    t0 = utcnow()
    change_status(session, ticket, "open", actor="agent:12", now=t0)
    change_status(
        session, ticket, "resolved", actor="agent:12", note="Collected today.", public=True, now=t0 + timedelta(hours=1)
    )
    assert ticket.resolved_at == t0 + timedelta(hours=1)
    assert ticket.first_response_at == t0 + timedelta(hours=1)
    change_status(session, ticket, "open", actor="citizen", now=t0 + timedelta(hours=2))
    assert ticket.resolved_at is None
    change_status(session, ticket, "closed", actor="agent:12", now=t0 + timedelta(hours=3))
    assert ticket.closed_at == t0 + timedelta(hours=3) and ticket.updated_at == t0 + timedelta(hours=3)

    changes = [
        (e.from_status, e.to_status, e.actor, e.public) for e in _events(session, ticket) if e.kind == "status_changed"
    ]
    assert changes == [
        ("new", "open", "agent:12", False),
        ("open", "resolved", "agent:12", True),
        ("resolved", "open", "citizen", False),
        ("open", "closed", "agent:12", False),
    ]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "new"),
        (["closed"], "open"),
        (["closed"], "resolved"),
        (["open"], "new"),
        (["resolved"], "pending_citizen"),
        ([], "archived"),
    ],
)
def test_refused_transitions_change_nothing(session, settings: Settings, path: list[str], refused: str) -> None:
    _, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    for status in path:
        change_status(session, ticket, status, actor="agent:1")
    before = (ticket.status, len(_events(session, ticket)))
    with pytest.raises(InvalidTransition):
        change_status(session, ticket, refused, actor="agent:1")
    assert (ticket.status, len(_events(session, ticket))) == before


def test_updates_and_notes(session, settings: Settings) -> None:
    _, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    note = add_note(session, ticket, "Driver skipped the street", actor="agent:3")
    assert not note.public and ticket.first_response_at is None
    update = add_public_update(session, ticket, "A truck will come tomorrow.", actor="agent:3")
    assert update.public and update.kind == "public_update"
    assert ticket.first_response_at == update.created_at


def test_first_response_is_a_person_not_the_assistant(session, settings: Settings) -> None:
    _, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    add_public_update(session, ticket, "We received your request.", actor="assistant")
    assert ticket.first_response_at is None


def test_lookup_found_with_last_public_update(session, settings: Settings) -> None:
    identity, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)

    result = lookup_status_for_identity(session, identity, ticket.public_id.lower().replace("-", " "))
    assert result.outcome == "found" and result.ticket.id == ticket.id and result.last_public_update is None

    t0 = utcnow()
    add_public_update(session, ticket, "Scheduled for Monday.", actor="agent:1", now=t0)
    add_note(session, ticket, "internal: driver on leave", actor="agent:1", now=t0 + timedelta(seconds=1))
    add_public_update(session, ticket, "Truck on its way.", actor="agent:1", now=t0 + timedelta(seconds=2))
    add_note(session, ticket, "internal: again", actor="agent:1", now=t0 + timedelta(seconds=3))

    result = lookup_status_for_identity(session, identity, ticket.public_id)
    assert result.outcome == "found"
    assert result.last_public_update == "Truck on its way."
    assert result.canonical_id == ticket.public_id


def test_lookup_mistyped(session, settings: Settings) -> None:
    identity, inbound = _inbound(session)
    ticket, _ = _open(session, inbound, settings)
    compact = ticket.public_id.replace("-", "")
    swapped = next(
        compact[:i] + compact[i + 1] + compact[i] + compact[i + 2 :] for i in range(8) if compact[i] != compact[i + 1]
    )
    for typo in (swapped, "K7M-39Q", "hello", ""):
        result = lookup_status_for_identity(session, identity, typo)
        assert result.outcome == "mistyped" and result.ticket is None, typo


def test_lookup_not_found_reveals_nothing_about_other_citizens_tickets(session, settings: Settings) -> None:
    mine, my_message = _inbound(session, address="+15550001")
    _, their_message = _inbound(session, address="+15550002")
    theirs, _ = _open(session, their_message, settings)
    add_public_update(session, theirs, "Private details about their case", actor="agent:1")
    nonexistent = ids.new_ticket_id()

    someone_elses = lookup_status_for_identity(session, mine, theirs.public_id)
    missing = lookup_status_for_identity(session, mine, nonexistent)

    assert someone_elses.outcome == missing.outcome == "not_found"
    assert someone_elses.ticket is None and someone_elses.last_public_update is None
    assert {k: v for k, v in vars(someone_elses).items() if k != "canonical_id"} == {
        k: v for k, v in vars(missing).items() if k != "canonical_id"
    }


def test_full_unit_of_work_commits(db_url: str, settings: Settings) -> None:
    with session_scope(db_url) as session:
        identity, inbound = _inbound(session)
        ticket, _ = _open(session, inbound, settings)
        record_outbound(session, inbound=inbound, text=f"Ticket {ticket.public_id} opened.")
        public_id = ticket.public_id
    with session_scope(db_url) as session:
        identity = get_or_create_identity(session, "sms", "+15550001")
        result = lookup_status_for_identity(session, identity, public_id)
        assert result.outcome == "found"
        assert len(session.scalars(select(Message).where(Message.ticket_id == result.ticket.id)).all()) == 2


def test_service_functions_never_commit(db_url: str, settings: Settings) -> None:
    from bot.store.db import session_factory

    with session_factory(db_url)() as session:
        identity, inbound = _inbound(session)
        ticket, _ = _open(session, inbound, settings)
        change_status(session, ticket, "open", actor="agent:1")
        add_public_update(session, ticket, "x", actor="agent:1")
        add_note(session, ticket, "y", actor="agent:1")
        lookup_status_for_identity(session, identity, ticket.public_id)
        session.rollback()
    with session_factory(db_url)() as session:
        assert session.scalars(select(Ticket)).all() == []
        assert session.scalars(select(Message)).all() == []


def test_two_turns_of_one_citizen_escalating_at_once_share_one_ticket_without_a_deadlock(db_url, settings) -> None:
    """Two messages in flight (the API lets a client send the next before the first is answered):
    each turn holds its own message and escalates it. Before the citizen's row ordered them, each
    took the other's message into its new ticket's window: two tickets, or a PostgreSQL deadlock
    (a 500 and an unanswered message)."""
    import threading

    from bot.store.db import session_factory

    with session_scope(db_url) as session:
        identity, first = _inbound(session, "The bin was not emptied", address="+15550077")
        second, _ = record_inbound(session, identity, "And the lid is broken")
        ids_ = (first.id, second.id)
    sessions = session_factory(db_url)
    both_locked = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []
    tickets: list[int] = []

    def turn(message_id: int) -> None:
        try:
            with sessions.begin() as session:
                message = session.get(Message, message_id, with_for_update=True)
                both_locked.wait()
                ticket, _created = _open(session, message, settings)
                tickets.append(ticket.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    if sessions.kw["bind"].dialect.name == "sqlite":
        # One writer at a time: the second turn cannot even lock its message meanwhile.
        for message_id in ids_:
            both_locked = threading.Barrier(1)
            turn(message_id)
    else:
        threads = [threading.Thread(target=turn, args=(message_id,)) for message_id in ids_]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(set(tickets)) == 1
    with session_scope(db_url) as session:
        assert session.scalars(select(Message.ticket_id).where(Message.id.in_(ids_))).all() == [tickets[0]] * 2
        assert len(session.scalars(select(Ticket)).all()) == 1
