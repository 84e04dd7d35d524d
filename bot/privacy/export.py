"""A citizen's data, all of it, as one download: ``data.json`` plus a readable ``data.html`` in a zip.

What goes in is what the citizen gave us and what we told them: their identities, every
message in and out on every linked channel, their tickets with the updates they may be
told (``TicketEvent.public``; internal notes never), their consents and their answers to
"Was your problem solved?" when those tables exist. Staff names are not theirs to receive: an agent's reply says "staff".
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.privacy import tables
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.texts import DEFAULT_LANGUAGE, resolve_language, text
from bot.tickets.models import Ticket, TicketEvent

FORMAT_VERSION = 1
CONSENTS_TABLE = "consents"


class CitizenNotFound(LookupError):
    """No citizen with that id (or public id)."""


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def find_citizen(session: Session, ref: str | int) -> Citizen:
    """A citizen by row id, public id (what the console shows), or ``channel:address``
    (``email:ana@example.org``, ``telegram:123456789``)."""
    citizen = None
    if isinstance(ref, int) or ref.strip().isdigit():
        citizen = session.get(Citizen, int(ref))
    elif ":" in ref:
        channel, _, address = ref.strip().partition(":")
        identity = session.scalars(select(ChannelIdentity).where(
            ChannelIdentity.channel == channel.lower(), ChannelIdentity.address == address)).one_or_none()
        if identity is None and channel.lower() == "email":
            identity = session.scalars(select(ChannelIdentity).where(
                ChannelIdentity.channel == "email", ChannelIdentity.address == address.lower())).one_or_none()
        citizen = identity.citizen if identity is not None else None
    else:
        citizen = session.scalars(select(Citizen).where(Citizen.public_id == ref.strip().lower())).one_or_none()
    if citizen is None:
        raise CitizenNotFound("no such citizen")
    return citizen


def _author(message: Message) -> str:
    if message.direction == "in":
        return "you"
    return "staff" if (message.author or "").startswith("agent:") else "assistant"


def _consents(session: Session, citizen_id: int) -> list[dict[str, Any]] | None:
    """Rows of the consents table if this installation has one (another feature owns it)."""
    table = tables.installed_table(CONSENTS_TABLE)
    if table is None or "citizen_id" not in table.c:
        return None
    rows = session.execute(select(table).where(table.c.citizen_id == citizen_id)).mappings()
    return [{k: (_when(v) if isinstance(v, datetime) else v) for k, v in row.items()
             if k not in ("id", "citizen_id")} for row in rows]


def _feedback(session: Session, ticket_ids: dict[int, str]) -> list[dict[str, Any]] | None:
    """Their answers to "Was your problem solved?" (bot.feedback), when that table exists."""
    table = tables.installed_table(tables.FEEDBACK_SURVEYS)
    if table is None:
        return None
    if not ticket_ids:
        return []
    rows = session.execute(select(table).where(table.c.ticket_id.in_(list(ticket_ids))).order_by(table.c.id)).mappings()
    return [{"ticket": ticket_ids.get(row["ticket_id"]), "asked_at": _when(row["asked_at"]), "channel": row["channel"],
             "state": row["state"], "solved": row["solved"], "rating": row["rating"], "comment": row["comment"],
             "answered_at": _when(row["answered_at"])} for row in rows]


def export_citizen(session: Session, citizen_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the store holds about one citizen, as plain JSON-ready data."""
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        raise CitizenNotFound(f"no citizen {citizen_id!r}")
    identities = list(session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.citizen_id == citizen_id).order_by(ChannelIdentity.id)))
    tickets = list(session.scalars(select(Ticket).where(Ticket.citizen_id == citizen_id).order_by(Ticket.id)))
    ticket_ids = {t.id: t.public_id for t in tickets}
    messages = session.scalars(
        select(Message).where(Message.citizen_id == citizen_id).order_by(Message.created_at, Message.id))
    channel_of = {i.id: i.channel for i in identities}
    bundle: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "produced_at": _when(now or utcnow()),
        "citizen": {
            "id": citizen.public_id,
            "created_at": _when(citizen.created_at),
            "display_name": citizen.display_name,
            "erased_at": _when(citizen.erased_at),
        },
        "identities": [
            {"channel": i.channel, "address": i.address, "since": _when(i.created_at)} for i in identities
        ],
        "messages": [
            {
                "at": _when(m.created_at),
                "channel": channel_of.get(m.identity_id, m.channel),
                "direction": m.direction,
                "from": _author(m),
                "text": m.text,
                "ticket": ticket_ids.get(m.ticket_id) if m.ticket_id else None,
                "delivery": m.delivery_status,
            }
            for m in messages
        ],
        "tickets": [],
    }
    for ticket in tickets:
        updates = session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.public.is_(True))
            .order_by(TicketEvent.created_at, TicketEvent.id))
        bundle["tickets"].append({
            "id": ticket.public_id,
            "subject": ticket.subject,
            "department": ticket.department,
            "status": ticket.status,
            "priority": ticket.priority,
            "opened_at": _when(ticket.created_at),
            "due_at": _when(ticket.due_at),
            "resolved_at": _when(ticket.resolved_at),
            "closed_at": _when(ticket.closed_at),
            "updates": [
                {"at": _when(e.created_at), "kind": e.kind, "text": e.body,
                 "from_status": e.from_status, "to_status": e.to_status}
                for e in updates
            ],
        })
    consents = _consents(session, citizen_id)
    if consents is not None:
        bundle["consents"] = consents
    feedback = _feedback(session, ticket_ids)
    if feedback is not None:
        bundle["feedback"] = feedback
    return bundle


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=True,  # citizen text is data
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("export.html")


def render_html(bundle: dict[str, Any], language: str | None = None) -> str:
    """The page a person reads, worded in ``language`` (the citizen's; None: the default): it is
    read long after any turn of theirs, so it cannot rely on the active language."""
    language = resolve_language(language) if language is not None else DEFAULT_LANGUAGE

    def t(key: str, **values: object) -> str:
        return text(f"rights.export_page.{key}", language, **values)

    return _template().render(bundle=bundle, t=t, lang=language)


def export_zip(bundle: dict[str, Any], language: str | None = None) -> bytes:
    """The one download: the machine-readable JSON and the page a person reads, side by side."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(bundle, ensure_ascii=False, indent=2))
        archive.writestr("data.html", render_html(bundle, language))
    return buffer.getvalue()


def export_filename(bundle: dict[str, Any]) -> str:
    return f"my-data-{bundle['citizen']['id'][:8]}.zip"
