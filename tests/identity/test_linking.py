"""Linking identities by one-time code, on SQLite and PostgreSQL: proven, never guessed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.identity.linking import (
    CODE_TTL,
    confirm_code,
    handle_link_message,
    hash_code,
    request_code,
)
from bot.identity.models import CitizenMerge, LinkCode
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.messages import citizen_history, record_inbound
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.service import open_or_join_ticket

CHANNELS_ON = dict(
    imap_host="127.0.0.1", email_address="city@example.org", imap_user="city", imap_password="imap-pass",
    smtp_host="127.0.0.1", telegram_bot_token="123456:test-token",
)


@pytest.fixture
def settings() -> Settings:
    return Settings(api_keys="test-key-0123456789abcdef", **CHANNELS_ON)


def _code_sent_to(session, channel: str, address: str) -> str:
    identity = session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
    ).one()
    text = session.scalars(
        select(Message.text).where(Message.identity_id == identity.id, Message.direction == "out").order_by(Message.id.desc())
    ).first()
    return re.search(r"Your code is (\d{6})", text).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _ticket(session, identity, text: str, settings: Settings) -> Ticket:
    inbound, _ = record_inbound(session, identity, text)
    ticket, _ = open_or_join_ticket(session, inbound=inbound, reason="report_problem", department="roads", settings=settings)
    return ticket


def test_request_queues_a_code_to_a_new_unlinked_identity(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    outcome = request_code(session, telegram, "email", " Ana@Example.ORG ", settings=settings)
    assert outcome.kind == "code_sent" and "ana@example.org" in outcome.reply
    target = session.scalars(select(ChannelIdentity).where(ChannelIdentity.channel == "email")).one()
    assert target.address == "ana@example.org" and target.citizen_id != telegram.citizen_id
    (queued,) = session.scalars(select(Message).where(Message.identity_id == target.id)).all()
    assert (queued.direction, queued.delivery_status, queued.meta["kind"]) == ("out", "pending", "link_code")
    code = re.search(r"Your code is (\d{6})", queued.text).group(1)
    stored = session.scalars(select(LinkCode)).one()
    assert code not in stored.code_hash and stored.code_hash == hash_code(settings, telegram.id, code)
    assert stored.expires_at - stored.created_at == CODE_TTL and stored.message_id == queued.id
    # The requester's conversation is not linked yet.
    assert len(citizen_history(session, telegram.citizen_id)) == 0


def test_reply_does_not_reveal_whether_an_address_is_known(session, settings: Settings) -> None:
    known = get_or_create_identity(session, "email", "known@example.org")
    record_inbound(session, known, "I wrote before")
    asker = get_or_create_identity(session, "telegram", "1")
    first = request_code(session, asker, "email", "known@example.org", settings=settings).reply
    other = get_or_create_identity(session, "telegram", "2")
    second = request_code(session, other, "email", "new@example.org", settings=settings).reply
    assert first.replace("known@", "new@") == second


def test_right_code_merges_into_the_older_citizen(session, settings: Settings) -> None:
    email = get_or_create_identity(session, "email", "ana@example.org")  # older
    old_ticket = _ticket(session, email, "Broken bench in the park", settings)
    session.flush()
    telegram = get_or_create_identity(session, "telegram", "4242")
    new_ticket = _ticket(session, telegram, "Streetlight out on Elm Street", settings)
    older, newer = email.citizen_id, telegram.citizen_id

    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    outcome = confirm_code(session, telegram, _code_sent_to(session, "email", "ana@example.org"), settings=settings)
    assert outcome.kind == "linked" and "now linked" in outcome.reply
    assert telegram.citizen_id == email.citizen_id == older
    assert {t.citizen_id for t in session.scalars(select(Ticket))} == {older}
    history = citizen_history(session, older)
    assert [m.text for m in history if m.direction == "in"] == ["Broken bench in the park", "Streetlight out on Elm Street"]
    assert session.scalar(select(func.count()).select_from(Message).where(Message.citizen_id == newer)) == 0

    merge = session.scalars(select(CitizenMerge)).one()
    assert (merge.kept_citizen_id, merge.merged_citizen_id, merge.actor) == (older, newer, "citizen")
    assert merge.moved_identity_ids == [telegram.id] and merge.tickets_moved == 1 and merge.messages_moved == 1
    assert merge.link_code_id == outcome.link_code.id
    linked_events = session.scalars(select(TicketEvent).where(TicketEvent.kind == "citizen_linked")).all()
    assert {e.ticket_id for e in linked_events} == {old_ticket.id, new_ticket.id}
    assert not any(e.public for e in linked_events)
    assert outcome.link_code.status == "used" and outcome.link_code.used_at is not None


def test_older_citizen_is_kept_whichever_side_asks(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")  # older, and asks
    session.flush()
    email = get_or_create_identity(session, "email", "ana@example.org")
    kept = telegram.citizen_id
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    confirm_code(session, telegram, _code_sent_to(session, "email", "ana@example.org"), settings=settings)
    assert email.citizen_id == kept


def test_wrong_codes_are_counted_and_the_fifth_kills_the_code(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    code = _code_sent_to(session, "email", "ana@example.org")
    kinds = [confirm_code(session, telegram, _wrong(code), settings=settings) for _ in range(5)]
    assert [o.kind for o in kinds] == ["wrong_code"] * 4 + ["code_dead"]
    assert "4 tries left" in kinds[0].reply and "1 try left" in kinds[3].reply
    assert session.scalars(select(LinkCode)).one().status == "exhausted"
    assert confirm_code(session, telegram, code, settings=settings).kind == "no_code"
    assert get_or_create_identity(session, "email", "ana@example.org").citizen_id != telegram.citizen_id


def test_expired_code_is_refused(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    now = utcnow()
    request_code(session, telegram, "email", "ana@example.org", settings=settings, now=now)
    code = _code_sent_to(session, "email", "ana@example.org")
    outcome = confirm_code(session, telegram, code, settings=settings, now=now + CODE_TTL + timedelta(seconds=1))
    assert outcome.kind == "expired" and "/link email ana@example.org" in outcome.reply
    assert confirm_code(session, telegram, code, settings=settings, now=now + timedelta(minutes=1)).kind == "no_code"


def test_code_is_single_use(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    code = _code_sent_to(session, "email", "ana@example.org")
    assert confirm_code(session, telegram, code, settings=settings).kind == "linked"
    assert confirm_code(session, telegram, code, settings=settings).kind == "no_code"
    assert session.scalar(select(func.count()).select_from(CitizenMerge)) == 1


def test_code_works_only_where_it_was_asked(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    code = _code_sent_to(session, "email", "ana@example.org")
    email = get_or_create_identity(session, "email", "ana@example.org")
    stranger = get_or_create_identity(session, "telegram", "6666")
    assert confirm_code(session, email, code, settings=settings).kind == "no_code"
    assert confirm_code(session, stranger, code, settings=settings).kind == "no_code"
    # Someone else's pending code of the same digits does not help either: the hash covers the identity.
    request_code(session, stranger, "email", "eve@example.org", settings=settings)
    if _code_sent_to(session, "email", "eve@example.org") != code:
        assert confirm_code(session, stranger, code, settings=settings).kind == "wrong_code"
    assert confirm_code(session, telegram, code, settings=settings).kind == "linked"


def test_a_new_request_voids_the_older_code(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    first = _code_sent_to(session, "email", "ana@example.org")
    request_code(session, telegram, "email", "ana.work@example.org", settings=settings)
    second = _code_sent_to(session, "email", "ana.work@example.org")
    statuses = list(session.scalars(select(LinkCode.status).order_by(LinkCode.id)))
    assert statuses == ["superseded", "pending"]
    if first != second:
        assert confirm_code(session, telegram, first, settings=settings).kind == "wrong_code"
    assert confirm_code(session, telegram, second, settings=settings).kind == "linked"
    assert get_or_create_identity(session, "email", "ana.work@example.org").citizen_id == telegram.citizen_id
    assert get_or_create_identity(session, "email", "ana@example.org").citizen_id != telegram.citizen_id


def test_code_requests_are_rate_limited(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    now = utcnow()
    kinds = [
        request_code(session, telegram, "email", f"a{i}@example.org", settings=settings, now=now + timedelta(minutes=i)).kind
        for i in range(4)
    ]
    assert kinds == ["code_sent"] * 3 + ["rate_limited"]
    later = now + timedelta(minutes=61)
    assert request_code(session, telegram, "email", "a9@example.org", settings=settings, now=later).kind == "code_sent"


def test_an_address_cannot_be_flooded_with_codes(session, settings: Settings) -> None:
    now = utcnow()
    kinds = []
    for i in range(6):
        asker = get_or_create_identity(session, "telegram", f"10{i}")
        kinds.append(request_code(session, asker, "email", "victim@example.org", settings=settings, now=now).kind)
    assert kinds == ["code_sent"] * 5 + ["target_busy"]
    target = get_or_create_identity(session, "email", "victim@example.org")
    assert session.scalar(select(func.count()).select_from(Message).where(Message.identity_id == target.id)) == 5


def test_requests_that_need_no_code(session, settings: Settings) -> None:
    email = get_or_create_identity(session, "email", "ana@example.org")
    assert request_code(session, email, "email", "ANA@example.org", settings=settings).kind == "same_address"
    assert request_code(session, email, "email", "not-an-address", settings=settings).kind == "bad_address"
    assert request_code(session, email, "whatsapp", "+34 600", settings=settings).kind == "channel_off"
    assert request_code(session, email, "telegram", "@ana", settings=settings).kind == "bad_address"
    assert request_code(session, email, "sms", "+34600123456", settings=settings).kind == "usage"
    telegram = get_or_create_identity(session, "telegram", "4242")
    telegram.citizen_id = email.citizen_id
    session.flush()
    assert request_code(session, email, "telegram", "4242", settings=settings).kind == "already_linked"
    assert session.scalar(select(func.count()).select_from(LinkCode)) == 0


def test_whatsapp_numbers_are_stored_as_the_cloud_api_spells_them(session) -> None:
    settings = Settings(
        api_keys="test-key-0123456789abcdef", whatsapp_access_token="token", whatsapp_app_secret="app-secret",
        whatsapp_verify_token="verify-token", whatsapp_phone_number_id="1055",
    )
    email = get_or_create_identity(session, "email", "ana@example.org")
    assert request_code(session, email, "whatsapp", "+34 600-123 456", settings=settings).kind == "code_sent"
    assert session.scalars(select(ChannelIdentity.address).where(ChannelIdentity.channel == "whatsapp")).one() == "34600123456"


def test_six_digits_are_a_code_only_while_one_is_pending(session, settings: Settings) -> None:
    telegram = get_or_create_identity(session, "telegram", "4242")
    plain, _ = record_inbound(session, telegram, "123456")
    assert handle_link_message(session, plain, settings=settings) is None
    assert plain.handling is None
    request_code(session, telegram, "email", "ana@example.org", settings=settings)
    code = _code_sent_to(session, "email", "ana@example.org")
    typed, _ = record_inbound(session, telegram, f" {code[:3]} {code[3:]} ")
    outcome = handle_link_message(session, typed, settings=settings)
    assert outcome.kind == "linked" and typed.handling == "identity_link"
    assert typed.text == f" {code[:3]} {code[3:]} "  # stored exactly as typed
