from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.store.citizens import get_or_create_identity
from bot.store.db import session_scope
from bot.store.messages import citizen_history, inbound_text, recent_conversation, record_inbound, record_outbound
from bot.store.models import Message
from bot.store.types import utcnow

TEXTS = {
    "emoji": "Bin not collected 🗑️😡 — family 👨‍👩‍👧‍👦, flag 🇫🇷, skin tone 👍🏽",
    "rtl": "مرحبا، الحاوية لم تُفرغ منذ أسبوع. שלום עולם",
    "mixed_direction": "Street \u202eteerts\u202c name \u200f(RTL mark) \u200d zero-width joiner",
    "control_chars": "tab\there\r\nCRLF\rCR\x01\x07\x08\x1b[31mansi\x1b[0m\x7f\x85\u2028\u2029end",
    "whitespace_kept": "   leading and trailing spaces and newlines kept   \n\n",
    "sql": "'; DROP TABLE messages; -- \" OR 1=1 /* */ %s %(x)s ? :name \\x00",
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; &lt;",
    "combining": "e\u0301 vs \u00e9, A\u030a, \ufeffBOM",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎 \U0010fffd",
    "empty": "",
    "large": ("Long complaint, line with unicode é 漢字 🙂.\n" * 2500)[:100_000],
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_text_round_trips_exactly(db_url: str, name: str) -> None:
    text = TEXTS[name]
    with session_scope(db_url) as session:
        identity = get_or_create_identity(session, "web", "roundtrip")
        inbound, created = record_inbound(session, identity, text)
        reply = record_outbound(session, inbound=inbound, text=text)
        ids = inbound.id, reply.id
    with session_scope(db_url) as session:
        stored = [session.get(Message, i) for i in ids]
        assert [m.text for m in stored] == [text, text]
        assert stored[0].meta == {}
    assert created
    assert len(TEXTS["large"]) == 100_000


def test_unstorable_characters_are_replaced_and_flagged(db_url: str) -> None:
    """PostgreSQL text cannot hold NUL; JSON can smuggle lone surrogates. Keep the rest of the message."""
    with session_scope(db_url) as session:
        identity = get_or_create_identity(session, "api", "nul")
        inbound, _ = record_inbound(session, identity, "a\x00b\ud800c", meta={"source": "test"})
        message_id = inbound.id
    with session_scope(db_url) as session:
        stored = session.get(Message, message_id)
        assert stored.text == "a\ufffdb\ufffdc"
        assert stored.meta == {"source": "test", "replaced_unstorable_chars": 2}


def test_meta_round_trips(session) -> None:
    identity = get_or_create_identity(session, "web", "meta")
    meta = {"ua": "Mozilla", "nested": {"list": [1, 2.5, None, True], "ünïcode": "✓"}}
    inbound, _ = record_inbound(session, identity, "hi", meta=meta)
    session.expire_all()
    assert session.get(Message, inbound.id).meta == meta


def test_redelivery_with_same_external_id_is_not_stored_twice(session) -> None:
    identity = get_or_create_identity(session, "sms", "+15550100")
    first, created_first = record_inbound(session, identity, "hello", external_id="SM123")
    again, created_again = record_inbound(session, identity, "hello", external_id="SM123")
    assert created_first and not created_again
    assert again.id == first.id
    other, created_other = record_inbound(session, identity, "hello", external_id="SM124")
    assert created_other and other.id != first.id
    no_id_1, c1 = record_inbound(session, identity, "hello")
    no_id_2, c2 = record_inbound(session, identity, "hello")
    assert c1 and c2 and no_id_1.id != no_id_2.id
    assert session.scalar(select(func.count(Message.id))) == 4


def test_external_ids_are_per_channel(session) -> None:
    sms = get_or_create_identity(session, "sms", "+15550100")
    web = get_or_create_identity(session, "web", "cookie-1")
    _, created_sms = record_inbound(session, sms, "x", external_id="42")
    _, created_web = record_inbound(session, web, "x", external_id="42")
    assert created_sms and created_web


def test_external_ids_are_per_sender(session) -> None:
    """Issue 24: sender B reusing A's key got A's message back (and lost its own)."""
    a = get_or_create_identity(session, "web", "A")
    b = get_or_create_identity(session, "web", "B")
    first, created_a = record_inbound(session, a, "The staff were rude, I want to complain", external_id="m1")
    second, created_b = record_inbound(session, b, "hello", external_id="m1")
    assert created_a and created_b and second.id != first.id
    assert (second.identity_id, second.text) == (b.id, "hello")
    again, created_again = record_inbound(session, b, "hello", external_id="m1")
    assert not created_again and again.id == second.id


def test_inbound_text_is_the_stored_inbound_only(session) -> None:
    identity = get_or_create_identity(session, "web", "A")
    inbound, _ = record_inbound(session, identity, "exact  text ", external_id="k")
    reply = record_outbound(session, inbound=inbound, text="answer")
    assert inbound_text(session, inbound.id) == "exact  text "
    assert inbound_text(session, reply.id) is None
    assert inbound_text(session, reply.id + 1000) is None


def test_racing_senders_with_one_key_each_keep_their_own_message(db_url: str) -> None:
    with session_scope(db_url) as session:
        for address in ("A", "B"):
            get_or_create_identity(session, "web", address)
    barrier = threading.Barrier(2)

    def deliver(address: str) -> tuple[bool, str, str]:
        barrier.wait(10)
        with session_scope(db_url) as session:
            identity = get_or_create_identity(session, "web", address)
            message, created = record_inbound(session, identity, f"from {address}", external_id="same")
            return created, message.identity.address, message.text

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(deliver, ["A", "B"]))
    assert results == [(True, "A", "from A"), (True, "B", "from B")]


def test_external_id_unique_in_the_database(session) -> None:
    identity = get_or_create_identity(session, "sms", "+15550100")
    first, _ = record_inbound(session, identity, "x", external_id="dup")
    session.add(
        Message(
            citizen_id=first.citizen_id,
            identity_id=first.identity_id,
            channel="sms",
            direction="in",
            text="y",
            external_id="dup",
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_direction_is_constrained(session) -> None:
    identity = get_or_create_identity(session, "sms", "+15550100")
    session.add(
        Message(citizen_id=identity.citizen_id, identity_id=identity.id, channel="sms", direction="up", text="")
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_concurrent_redeliveries_store_one_message(db_url: str) -> None:
    with session_scope(db_url) as session:
        get_or_create_identity(session, "whatsapp", "+33600000000")
    workers = 6
    barrier = threading.Barrier(workers)

    def deliver() -> tuple[int, bool]:
        barrier.wait(10)
        with session_scope(db_url) as session:
            identity = get_or_create_identity(session, "whatsapp", "+33600000000")
            message, created = record_inbound(session, identity, "bonjour", external_id="wamid.1")
            return message.id, created

    with ThreadPoolExecutor(workers) as pool:
        results = [f.result(timeout=30) for f in [pool.submit(deliver) for _ in range(workers)]]
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_outbound_points_at_inbound_and_shares_its_ticket_and_identity(session) -> None:
    identity = get_or_create_identity(session, "web", "w1")
    inbound, _ = record_inbound(session, identity, "question")
    reply = record_outbound(session, inbound=inbound, text="answer", meta={"kb_entry": "waste-bulky-items"})
    assert reply.direction == "out"
    assert reply.reply_to_id == inbound.id
    assert (reply.identity_id, reply.citizen_id, reply.channel) == (identity.id, identity.citizen_id, "web")
    assert reply.ticket_id is None
    assert reply.external_id is None
    assert reply.meta == {"kb_entry": "waste-bulky-items"}


def test_recent_conversation_is_per_identity_and_windowed(session) -> None:
    identity = get_or_create_identity(session, "web", "w1")
    other = get_or_create_identity(session, "web", "w2")
    old, _ = record_inbound(session, identity, "yesterday")
    old.created_at = utcnow() - timedelta(days=1)
    q, _ = record_inbound(session, identity, "q")
    a = record_outbound(session, inbound=q, text="a")
    record_inbound(session, other, "someone else")
    session.flush()
    found = recent_conversation(session, identity, since=utcnow() - timedelta(minutes=30))
    assert [m.id for m in found] == [q.id, a.id]


def test_citizen_history_spans_identities_in_order(session) -> None:
    identity = get_or_create_identity(session, "web", "w1")
    m1, _ = record_inbound(session, identity, "one")
    m2 = record_outbound(session, inbound=m1, text="two")
    m3, _ = record_inbound(session, identity, "three")
    stranger = get_or_create_identity(session, "web", "w2")
    record_inbound(session, stranger, "not mine")
    assert [m.id for m in citizen_history(session, identity.citizen_id)] == [m1.id, m2.id, m3.id]
    assert citizen_history(session, -1) == []
