"""A citizen built through the real paths (the generic API with Rasa down, an agent's reply, a
link between two identities), and a scan of every text column of every table for their data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.feedback.service import ask_on_resolution
from bot.identity.linking import request_code
from bot.identity.merge import merge_citizens
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import make_engine, session_factory
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.tickets.models import Ticket
from bot.tickets.service import add_note, change_status
from bot.tickets.status import CLOSED, RESOLVED
from tests.api.api_client import AUTH, post

NAME = "Zorana Quillfeather"
TYPED_ADDRESS = "zq.other@example.net"
WEB_SENDER = "web-visitor-7f3e9a2b"
EMAIL = "zorana.quill@example.org"
WHATSAPP = "4915123456789"
TEXTS = (
    f"My name is {NAME} and the streetlight at 12 Willowmere Lane has been out for weeks",
    "Also my neighbour's hedge at Willowmere blocks the pavement near the school",
)
AGENT_REPLY = f"Dear {NAME}, our crew will fix the Willowmere light on Tuesday"
NOTE = "Internal: caller sounded upset about Willowmere"
BYSTANDER_TEXT = "Bystander Oswin Pettigrew asks about the Brackenfield library hours"

# What must be gone after erasure; the words are chosen to occur nowhere else.
NEEDLES = (NAME, "Quillfeather", WEB_SENDER, EMAIL, WHATSAPP, TYPED_ADDRESS, "Willowmere", "hedge at")


@dataclass
class Built:
    citizen_id: int
    bystander_id: int
    ticket_ids: list[str]
    senders: list[str]


def build_citizen(client, db_url: str) -> Built:
    """Messages in through the API (each escalated, Rasa being down), an agent's reply and a
    note, a second identity linked to the first, and a bystander who must keep everything."""
    tickets = []
    for text in TEXTS:
        response = post(client, {"channel": "web", "sender": WEB_SENDER, "text": text})
        assert response.status_code == 200, response.text
        tickets.append(response.json()["handling"]["ticket"]["id"])
    bystander = post(client, {"channel": "web", "sender": "bystander-1", "text": BYSTANDER_TEXT})
    assert bystander.status_code == 200
    reply = client.post(f"/api/v1/tickets/{tickets[0]}/replies", json={"text": AGENT_REPLY, "author": "agent:ines"},
                        headers=AUTH)
    assert 200 <= reply.status_code < 300, reply.text
    sessions = session_factory(db_url)
    with sessions.begin() as session:
        web = session.scalars(sa.select(ChannelIdentity).where(ChannelIdentity.address == WEB_SENDER)).one()
        citizen = session.get(Citizen, web.citizen_id)
        citizen.display_name = NAME
        email = get_or_create_identity(session, "email", EMAIL)
        wa = get_or_create_identity(session, "whatsapp", WHATSAPP)
        session.flush()
        # The e-mail's own record had the name; merging leaves that record behind.
        session.get(Citizen, email.citizen_id).display_name = NAME
        # A /link code to an address that never wrote to us (through the real linking flow).
        outcome = request_code(session, web, "email", TYPED_ADDRESS, settings=_email_on())
        assert outcome.kind == "code_sent", outcome
        merge_citizens(session, web.citizen_id, email.citizen_id, actor="citizen")
        merge_citizens(session, web.citizen_id, wa.citizen_id, actor="citizen")
        ticket = session.scalars(sa.select(Ticket).where(Ticket.public_id == tickets[0])).one()
        add_note(session, ticket, NOTE, actor="agent:ines")
        change_status(session, ticket, RESOLVED, actor="agent:ines", public=True)
        # "Was it solved?" answered with a comment in the citizen's words (bot.feedback).
        survey = ask_on_resolution(session, ticket)
        survey.state, survey.step, survey.solved, survey.rating = "answered", "done", True, 4
        survey.comment = f"Thanks from {NAME}, the Willowmere light works"
        change_status(session, ticket, CLOSED, actor="agent:ines")
        # An e-mail as the e-mail worker keeps it.
        _raw_email(session, EMAIL, TEXTS[1])
        citizen_id = web.citizen_id
        senders = [i.public_id for i in session.scalars(
            sa.select(ChannelIdentity).where(ChannelIdentity.citizen_id == citizen_id))]
        bystander_id = session.scalars(
            sa.select(ChannelIdentity.citizen_id).where(ChannelIdentity.address == "bystander-1")).one()
    return Built(citizen_id, bystander_id, tickets, senders)


def _email_on() -> Settings:
    return Settings(_env_file=None, api_keys="test-key-0123456789abcdef", imap_host="127.0.0.1",
                    email_address="info@city.example", imap_user="info", imap_password="secret-password-x",
                    smtp_host="127.0.0.1")


def _raw_email(session, sender: str, body: str) -> None:
    from bot.channels.email.models import EmailInbound, EmailMailbox

    mailbox = EmailMailbox(account="info@city.example", name="INBOX", uidvalidity=1, last_uid=1)
    session.add(mailbox)
    session.flush()
    session.add(EmailInbound(
        message_key=f"<abc.{sender}>", mailbox_id=mailbox.id, uidvalidity=1, uid=1, sender=sender,
        subject="Willowmere light", headers=[["From", f"{NAME} <{sender}>"]], body=body,
        attachments=[{"name": "Willowmere.jpg", "type": "image/jpeg", "size": 10, "sha256": "0" * 64}],
        details={}, raw_size=100, raw_sha256="1" * 64, status="handled",
    ))


def create_tracker(tracker_url: str, senders: list[str], texts: list[str]) -> None:
    """Rasa's SQL tracker store's ``events`` table (rasa/core/tracker_store.py), with rows for the senders."""
    engine = make_engine(tracker_url)
    metadata = sa.MetaData()
    events = sa.Table(
        "events", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Float),
        sa.Column("intent_name", sa.String(255)),
        sa.Column("action_name", sa.String(255)),
        sa.Column("data", sa.Text),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        for sender in senders:
            for text in texts:
                connection.execute(events.insert().values(
                    sender_id=sender, type_name="user", timestamp=1.0, intent_name="report_problem",
                    data=json.dumps({"event": "user", "text": text, "parse_data": {"text": text}})))
        connection.execute(events.insert().values(sender_id="someone-else", type_name="user", timestamp=1.0,
                                                  data=json.dumps({"text": BYSTANDER_TEXT})))
    engine.dispose()


def find_in_database(url: str, needles: tuple[str, ...]) -> list[str]:
    """Every (table.column, needle) where a text or JSON column holds a needle, by SQL."""
    engine = make_engine(url)
    found = []
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            for table in inspector.get_table_names():
                for column in inspector.get_columns(table):
                    kind = column["type"]
                    if not isinstance(kind, (sa.String, sa.Text, sa.JSON)) and "JSON" not in str(kind).upper():
                        continue
                    name = column["name"]
                    for needle in needles:
                        hits = connection.execute(sa.text(
                            f'SELECT count(*) FROM "{table}" WHERE CAST("{name}" AS TEXT) LIKE :n'),
                            {"n": f"%{needle}%"}).scalar()
                        if hits:
                            found.append(f"{table}.{name}: {needle!r} x{hits}")
    finally:
        engine.dispose()
    return found


def find_in_files(directory: Path, needles: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n!r}" for n in needles if n.encode() in data]
    return found


def sqlite_dir(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database).parent if parsed.get_backend_name() == "sqlite" else None


def message_count(db_url: str, citizen_id: int) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.citizen_id == citizen_id))
