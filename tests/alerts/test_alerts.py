"""Commitment alerts end to end on the store (SQLite and PostgreSQL), with a controlled clock.

The scheduler's jobs are run with an explicit ``now``; e-mail goes to a recording mailer, or to
a real SMTP server (aiosmtpd on loopback) for the "SMTP down, then up" case.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.alerts.job import IN_DIGEST, NO_ADDRESS, NO_SMTP, queue_digests, raise_alerts
from bot.alerts.mail import SmtpMailer, deliver_pending
from bot.alerts.models import NEAR_DUE, OVERDUE, PENDING, SENT, SKIPPED, StaffNotification, TicketAlert
from bot.scheduler.runner import JOBS, Job, Scheduler
from bot.settings import Settings
from bot.staff.models import StaffUser
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_inbound
from bot.tickets.models import Ticket
from bot.tickets.service import change_status, open_or_join_ticket
from tests.alerts.conftest import make_alert_settings

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday

class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        self.sent.append({"to": to, "subject": subject, "body": body, "message_id": message_id})


@pytest.fixture
def settings(db_url: str, kb_dir: Path) -> Settings:
    return make_alert_settings(db_url, kb_dir)


@pytest.fixture
def sessions(db_url: str):
    return session_factory(db_url)


def _ticket(sessions, settings: Settings, *, department: str = "waste", at: datetime = T0,
            assignee_email: str | None | bool = False, sender: str = "+15550001") -> int:
    with sessions.begin() as session:
        identity = get_or_create_identity(session, "sms", sender)
        message, _ = record_inbound(session, identity, "The bin was not collected")
        ticket, _ = open_or_join_ticket(session, inbound=message, reason="complaint", department=department,
                                        now=at, settings=settings)
        if assignee_email is not False:
            user = StaffUser(username=f"agent{sender[-4:]}", display_name="Agent", password_hash="x",
                             role="agent", email=assignee_email)
            session.add(user)
            session.flush()
            ticket.assignee_id = user.id
        return ticket.id


def _alerts(session: Session) -> list[tuple[int, str, str, str]]:
    return [(a.ticket_id, a.threshold, a.recipient, a.delivery)
            for a in session.scalars(select(TicketAlert).order_by(TicketAlert.id))]


def _run(sessions, settings: Settings, now: datetime, mailer=None) -> None:  # noqa: ANN001
    mail = mailer is not None
    with sessions.begin() as session:
        raise_alerts(session, settings, now=now, mail=mail)
        queue_digests(session, settings, now=now, mail=mail)
    if mailer is not None:
        deliver_pending(sessions, mailer, settings, now=now)


def test_near_due_at_80_percent_then_overdue_each_once(sessions, settings: Settings) -> None:
    ticket_id = _ticket(sessions, settings, assignee_email="ana@city.example")
    mailer = RecordingMailer()

    _run(sessions, settings, T0 + timedelta(hours=19, minutes=11), mailer)  # 79.9 %
    assert mailer.sent == []

    _run(sessions, settings, T0 + timedelta(hours=19, minutes=12), mailer)  # 80 %
    with sessions() as session:
        assert {(a[1], a[2]) for a in _alerts(session)} == {(NEAR_DUE, "department:waste"), (NEAR_DUE, "staff:1")}
    assert sorted(m["to"] for m in mailer.sent) == ["ana@city.example", "waste@city.example"]
    assert all("near its due time" in m["subject"] for m in mailer.sent)

    for _ in range(2):  # the job again, later: nothing new until the next threshold
        _run(sessions, settings, T0 + timedelta(hours=23), mailer)
    assert len(mailer.sent) == 2

    for _ in range(2):
        _run(sessions, settings, T0 + timedelta(hours=24), mailer)
    with sessions() as session:
        alerts = _alerts(session)
        assert len(alerts) == 4 and {a[1] for a in alerts[2:]} == {OVERDUE}
        assert all(a[0] == ticket_id for a in alerts)
        assert session.scalar(select(func.count()).select_from(StaffNotification)) == 4
    overdue = [m for m in mailer.sent if "past its due time" in m["subject"]]
    assert sorted(m["to"] for m in overdue) == ["ana@city.example", "waste@city.example"]
    assert "The bin was not collected" not in " ".join(m["body"] for m in mailer.sent)  # citizen text stays inside


def test_pending_citizen_pauses_the_clock(sessions, settings: Settings) -> None:
    ticket_id = _ticket(sessions, settings)
    with sessions.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        change_status(session, ticket, "pending_citizen", actor="agent", now=T0 + timedelta(hours=10),
                      settings=settings)
    _run(sessions, settings, T0 + timedelta(hours=30), RecordingMailer())
    with sessions() as session:
        assert _alerts(session) == []  # paused: neither near due nor overdue while waiting

    with sessions.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        change_status(session, ticket, "open", actor="citizen", now=T0 + timedelta(hours=30), settings=settings)
        # 20 hours waiting: the due time moves on by 20 hours, and so does the near-due time.
        assert ticket.due_at == T0 + timedelta(hours=44)
        assert ticket.warn_at == T0 + timedelta(hours=39, minutes=12)

    _run(sessions, settings, T0 + timedelta(hours=39, minutes=12), RecordingMailer())
    with sessions() as session:
        assert [a[1] for a in _alerts(session)] == [NEAR_DUE]


def test_business_hours_across_a_holiday_and_a_weekend(sessions, db_url: str, kb_dir: Path) -> None:
    settings = make_alert_settings(db_url, kb_dir, response_commitment_hours=4.0)
    opened = datetime(2026, 12, 24, 14, 0, tzinfo=UTC)  # Thursday 15:00 in Madrid
    ticket_id = _ticket(sessions, settings, department="culture", at=opened)
    with sessions() as session:
        due = session.get(Ticket, ticket_id).due_at
    # 2 h on Thursday, Friday 25 is a holiday, then the weekend: Monday 28 at 10:00 Madrid (09:00 UTC).
    assert due == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)
    mailer = RecordingMailer()
    _run(sessions, settings, datetime(2026, 12, 26, 12, 0, tzinfo=UTC), mailer)  # Saturday: 2 h of 4 have run
    with sessions() as session:
        assert _alerts(session) == []
    # 80 % (3.2 h): 2 h on Thursday and 1.2 h on Monday from 08:00 -> 09:12 Madrid.
    _run(sessions, settings, datetime(2026, 12, 28, 8, 11, tzinfo=UTC), mailer)
    with sessions() as session:
        assert _alerts(session) == []
    _run(sessions, settings, datetime(2026, 12, 28, 8, 12, tzinfo=UTC), mailer)
    with sessions() as session:
        assert [a[1] for a in _alerts(session)] == [NEAR_DUE]
    _run(sessions, settings, due, mailer)
    with sessions() as session:
        assert [a[1] for a in _alerts(session)] == [NEAR_DUE, OVERDUE]
    assert "2026-12-28 10:00 (Europe/Madrid)" in mailer.sent[-1]["body"]


def test_digest_department_gets_one_mail_a_day(sessions, settings: Settings) -> None:
    _ticket(sessions, settings, department="parking", sender="+15550001")
    _ticket(sessions, settings, department="parking", sender="+15550002", at=T0 + timedelta(hours=6))
    mailer = RecordingMailer()
    day2 = T0 + timedelta(days=1)  # Tuesday 06:00 UTC: both past 80 %, one overdue
    _run(sessions, settings, day2, mailer)
    with sessions() as session:
        assert {a[3] for a in _alerts(session)} == {IN_DIGEST}
    assert mailer.sent == []  # before CRM_ALERT_DIGEST_TIME (08:00 UTC, the department's zone)

    for _ in range(2):
        _run(sessions, settings, day2.replace(hour=8), mailer)
    assert len(mailer.sent) == 1
    digest = mailer.sent[0]
    assert digest["to"] == "parking@city.example" and digest["subject"] == "Parking: 1 overdue, 1 near due ticket(s)"

    _run(sessions, settings, day2.replace(hour=23), mailer)
    assert len(mailer.sent) == 1
    _run(sessions, settings, day2 + timedelta(days=1, hours=3), mailer)  # the next day, 09:00
    assert len(mailer.sent) == 2 and "2 overdue" in mailer.sent[1]["subject"]


def test_a_day_without_tickets_sends_no_digest(sessions, settings: Settings) -> None:
    mailer = RecordingMailer()
    _run(sessions, settings, T0.replace(hour=9), mailer)
    with sessions() as session:
        assert session.scalar(select(StaffNotification.status)) == SKIPPED
    assert mailer.sent == []


def test_assignee_without_email_and_department_without_address(sessions, settings: Settings) -> None:
    _ticket(sessions, settings, department="roads", assignee_email=None)
    mailer = RecordingMailer()
    _run(sessions, settings, T0 + timedelta(hours=25), mailer)
    with sessions() as session:
        assert {(a[2], a[3]) for a in _alerts(session)} == {("department:roads", NO_ADDRESS), ("staff:1", NO_ADDRESS)}
    assert mailer.sent == []


def test_without_smtp_alerts_are_console_only_and_said_once(sessions, db_url, kb_dir, caplog) -> None:
    settings = make_alert_settings(db_url, kb_dir, smtp_host=None)
    assert settings.alert_sender is None
    _ticket(sessions, settings)
    scheduler = Scheduler(settings, sessions, None)
    with caplog.at_level(logging.WARNING):
        scheduler.announce()
        for _ in range(2):
            results = scheduler.run_once(T0 + timedelta(hours=25))
    assert [r.message for r in caplog.records if "not configured" in r.message] != []
    assert len([r for r in caplog.records if "not configured" in r.message]) == 1
    assert not any(isinstance(r, Exception) for r in results.values())
    with sessions() as session:
        assert {a[3] for a in _alerts(session)} == {NO_SMTP}
        assert session.scalar(select(func.count()).select_from(StaffNotification)) == 0


def test_a_second_scheduler_stands_by_while_the_first_holds_the_lease(sessions, settings: Settings) -> None:
    first = Scheduler(settings, sessions, RecordingMailer(), holder="one")
    second = Scheduler(settings, sessions, RecordingMailer(), holder="two")
    assert first.run_once(T0)["alerts"] != "held by another scheduler"
    assert second.run_once(T0 + timedelta(seconds=60))["alerts"] == "held by another scheduler"
    # The first stops renewing (a crash): after its lease runs out the second takes over.
    assert second.run_once(T0 + timedelta(minutes=10))["alerts"] != "held by another scheduler"
    # A clean stop hands over at once.
    second.release(T0 + timedelta(minutes=10))
    assert first.run_once(T0 + timedelta(minutes=10, seconds=1))["alerts"] != "held by another scheduler"


def test_a_failing_job_does_not_stop_the_others(sessions, settings: Settings) -> None:
    def broken(_ctx) -> None:  # noqa: ANN001
        raise RuntimeError("boom")

    ran = []
    scheduler = Scheduler(settings, sessions, None, jobs=(Job("broken", broken), Job("next", ran.append)))
    results = scheduler.run_once(T0)
    assert isinstance(results["broken"], RuntimeError) and len(ran) == 1
    assert [job.name for job in JOBS] == ["alerts", "digests", "staff_mail", "retention", "data_requests",
                                          "feedback_expiry"]


def test_a_job_with_a_period_runs_at_most_that_often(sessions, settings: Settings) -> None:
    ran = []
    scheduler = Scheduler(settings, sessions, None, jobs=(Job("hourly", ran.append, every=timedelta(hours=1)),))
    assert scheduler.run_once(T0)["hourly"] is None
    assert scheduler.run_once(T0 + timedelta(minutes=59))["hourly"] == "not due"
    # Another scheduler (a restart) does not run it again before its time either.
    other = Scheduler(settings, sessions, None, jobs=(Job("hourly", ran.append, every=timedelta(hours=1)),))
    assert other.run_once(T0 + timedelta(minutes=30))["hourly"] == "not due"
    scheduler.run_once(T0 + timedelta(hours=1, seconds=1))
    assert len(ran) == 2


def test_two_schedulers_at_once_alert_once(sessions, settings: Settings, backend: str) -> None:
    """Both ignore the lease (the worst case): the unique constraint alone keeps alerts single."""
    if backend != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL matter; SQLite serialises them")
    for n in range(5):
        _ticket(sessions, settings, sender=f"+1555000{n}")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            barrier.wait()
            with sessions.begin() as session:
                raise_alerts(session, settings, now=T0 + timedelta(hours=25), mail=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with sessions() as session:
        assert len(_alerts(session)) == 5
        assert session.scalar(select(func.count()).select_from(StaffNotification)) == 5


# --- real SMTP --------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's hook
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_smtp_down_then_up_sends_later_once(sessions, db_url: str, kb_dir: Path) -> None:
    port = _free_port()
    settings = make_alert_settings(db_url, kb_dir, smtp_port=port)
    mailer = SmtpMailer(settings)
    _ticket(sessions, settings)
    now = T0 + timedelta(hours=25)
    _run(sessions, settings, now, mailer)  # nothing listens on the port yet
    with sessions() as session:
        row = session.scalars(select(StaffNotification)).one()
        assert row.status == PENDING and row.attempts == 1 and "SMTP unavailable" in row.last_error
        assert row.next_attempt_at == now + timedelta(seconds=60)

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _run(sessions, settings, now + timedelta(seconds=30), mailer)  # not yet due again
        assert inbox.messages == []
        for _ in range(2):
            _run(sessions, settings, now + timedelta(seconds=61), mailer)
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(inbox.messages) == 1
        assert b"Subject: [" in inbox.messages[0] and b"Auto-Submitted: auto-generated" in inbox.messages[0]
    finally:
        controller.stop()
    with sessions() as session:
        row = session.scalars(select(StaffNotification)).one()
        assert row.status == SENT and row.attempts == 2


def test_starttls_and_auth_as_configured_for_the_e_mail_channel(sessions, db_url: str, kb_dir: Path,
                                                                tmp_path: Path) -> None:
    """The same CRM_SMTP_* settings and CA file as the e-mail channel: STARTTLS, then AUTH."""
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tools.standins.email import make_certificate

    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(_server, _session, _envelope, _mechanism, auth_data):  # noqa: ANN001, ANN202
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"city", b"s3cret")
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

    port = _free_port()
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            auth_require_tls=True, authenticator=authenticate, auth_required=True)
    controller.start()
    try:
        wrong = make_alert_settings(db_url, kb_dir, smtp_port=port, smtp_security="starttls", smtp_user="city",
                                    smtp_password="wrong-password", email_tls_ca_file=cert)
        _ticket(sessions, wrong)
        now = T0 + timedelta(hours=25)
        _run(sessions, wrong, now, SmtpMailer(wrong))
        with sessions() as session:
            row = session.scalars(select(StaffNotification)).one()
            assert row.status == PENDING and "login refused" in row.last_error  # kept until the settings are fixed
        right = make_alert_settings(db_url, kb_dir, smtp_port=port, smtp_security="starttls", smtp_user="city",
                                    smtp_password="s3cret", email_tls_ca_file=cert)
        _run(sessions, right, now + timedelta(hours=1), SmtpMailer(right))
        assert len(inbox.messages) == 1
    finally:
        controller.stop()
