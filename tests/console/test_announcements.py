"""The announcements page: supervisors only, a preview escaped as citizens' text is, the count of
recipients, confirmation against that count, nothing stored for nobody, and the audit row."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bot.identity.consent import give_consent
from bot.notices.models import Announcement
from bot.staff.models import AuditLog
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.store.models import Message
from tests.console.conftest import build_app, make_settings, sign_in

TEXT = "Waste collection moves by one day after the holiday <script>alert(1)</script>"


@pytest.fixture
def client(db_url: str):
    """The console with Telegram on, so that there is a channel announcements can be pushed on."""
    settings = make_settings(db_url, telegram_bot_token="123456:notices-test-token")
    with TestClient(build_app(settings), base_url="http://testserver") as test_client:
        yield test_client


def _subscriber(db_url: str, address: str, purpose: str = "announcements:waste", channel: str = "telegram") -> None:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, channel, address)
        record_inbound(session, identity, "subscribe waste")
        give_consent(session, identity.citizen_id, purpose, channel=channel, source="test")


def _count(db_url: str, model, *where) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_agents_cannot_announce(client, make_staff, db_url) -> None:
    make_staff("wanda")
    csrf = sign_in(client, "wanda")
    assert client.get("/console/announcements").status_code == 403
    response = client.post("/console/announcements/send", data={"audience": "topic:waste", "text": TEXT,
                                                                 "expected": "0", "csrf_token": csrf})
    assert response.status_code == 403
    assert _count(db_url, Announcement) == 0


def test_preview_count_confirm_and_audit(client, make_staff, db_url) -> None:
    make_staff("sue", role="supervisor", departments=())
    for address in ("3001", "3002"):
        _subscriber(db_url, address)
    _subscriber(db_url, "3003", purpose="announcements:taxes")
    _subscriber(db_url, "browser-1", channel="web")
    csrf = sign_in(client, "sue")
    page = client.get("/console/announcements")
    assert page.status_code == 200 and 'value="topic:waste"' in page.text and 'value="department:waste"' in page.text
    shown = client.post("/console/announcements/preview", data={"audience": "topic:waste", "text": TEXT,
                                                                 "csrf_token": csrf})
    assert shown.status_code == 200
    assert "<script>alert(1)</script>" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert re.search(r"<strong data-recipients>2</strong>", shown.text)
    assert "1 subscriber cannot be reached" in shown.text
    assert _count(db_url, Announcement) == 0  # a preview stores nothing

    unsigned = client.post("/console/announcements/send", data={"audience": "topic:waste", "text": TEXT, "expected": "2"})
    assert unsigned.status_code == 403
    _subscriber(db_url, "3004")  # subscribed meanwhile: the supervisor confirms the new count first
    changed = client.post("/console/announcements/send", data={"audience": "topic:waste", "text": TEXT,
                                                               "expected": "2", "csrf_token": csrf})
    assert changed.status_code == 409 and "changed since the preview" in changed.text
    assert _count(db_url, Announcement) == 0
    sent = client.post("/console/announcements/send", data={"audience": "topic:waste", "text": TEXT,
                                                            "expected": "3", "csrf_token": csrf}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/console/announcements?done=sent"
    assert _count(db_url, Message, Message.author == "announcement", Message.delivery_status == "pending") == 3
    with session_factory(db_url)() as session:
        row = session.scalars(sa.select(Announcement)).one()
        assert (row.created_by, row.audience, row.recipients, row.text) == ("sue", "waste", 3, TEXT)
        entry = session.scalars(sa.select(AuditLog).where(AuditLog.action == "announcement.send")).one()
        assert entry.actor == "sue" and entry.target == f"announcement:{row.id}"
        assert entry.detail["recipients"] == 3 and entry.detail["by_channel"] == {"telegram": 3}
    listed = client.get("/console/announcements?done=sent")
    assert "Announcement queued" in listed.text and "pending: 3" in listed.text


def test_zero_recipients_is_a_clear_error_and_nothing_is_stored(client, make_staff, db_url) -> None:
    make_staff("sue", role="supervisor", departments=())
    _subscriber(db_url, "3001", purpose="announcements:taxes")
    csrf = sign_in(client, "sue")
    shown = client.post("/console/announcements/preview", data={"audience": "topic:roads", "text": "Elm St closed",
                                                                 "csrf_token": csrf})
    assert shown.status_code == 200 and "Nobody would receive this announcement" in shown.text
    assert "Send to" not in shown.text
    forced = client.post("/console/announcements/send", data={"audience": "topic:roads", "text": "Elm St closed",
                                                              "expected": "0", "csrf_token": csrf})
    assert forced.status_code == 400 and "Nothing was sent or stored" in forced.text
    assert _count(db_url, Announcement) == 0 and _count(db_url, Message, Message.author == "announcement") == 0
    assert _count(db_url, AuditLog, AuditLog.action == "announcement.send") == 0


@pytest.mark.parametrize(("audience", "text", "error"), [
    ("topic:nonsense", "Hello", "Choose a topic"),
    ("", "Hello", "Choose a topic"),
    ("topic:waste", "  ", "The announcement is empty."),
])
def test_bad_compositions_are_refused(client, make_staff, audience, text, error) -> None:
    make_staff("sue", role="supervisor", departments=())
    csrf = sign_in(client, "sue")
    shown = client.post("/console/announcements/preview", data={"audience": audience, "text": text, "csrf_token": csrf})
    assert shown.status_code == 400 and error in shown.text
