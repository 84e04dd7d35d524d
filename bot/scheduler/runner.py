"""The periodic job runner: every CRM_SCHEDULER_INTERVAL_SECONDS, each job of ``JOBS`` once.

Adding a job is one line in ``JOBS``: a name and a function of a ``JobContext``. A job runs only
while this scheduler holds its lease (``job_leases``), renewed on every run, so a second
scheduler stands by until the first stops renewing; the jobs' own unique constraints make their
effects happen once even if two ever run together. A failing job is logged and tried again on
the next run: the scheduler itself never stops on a job's error.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.job import queue_digests, raise_alerts
from bot.alerts.mail import Mailer, deliver_pending
from bot.feedback.service import expire_surveys
from bot.privacy.jobs import job as privacy_requests_job
from bot.privacy.retention import run_retention
from bot.scheduler.models import JobLease
from bot.store.types import utcnow

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    # None: staff e-mail is not configured (alerts are shown in the console only).
    mailer: Mailer | None
    now: datetime


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[JobContext], object]
    # At most this often (None: on every pass). A job that sweeps whole tables need not run
    # every minute; its last run is on its lease, so a restart does not run it again at once.
    every: timedelta | None = None


def _alerts(ctx: JobContext) -> object:
    with ctx.sessions.begin() as session:
        return raise_alerts(session, ctx.settings, now=ctx.now, mail=ctx.mailer is not None)


def _digests(ctx: JobContext) -> object:
    with ctx.sessions.begin() as session:
        return queue_digests(session, ctx.settings, now=ctx.now, mail=ctx.mailer is not None)


def _staff_mail(ctx: JobContext) -> object:
    if ctx.mailer is None:
        return 0
    return deliver_pending(ctx.sessions, ctx.mailer, ctx.settings, now=ctx.now)


def _retention(ctx: JobContext) -> object:
    return run_retention(ctx.sessions, ctx.settings, ctx.now)


def _feedback_expiry(ctx: JobContext) -> object:
    with ctx.sessions.begin() as session:
        return expire_surveys(session, ctx.settings, now=ctx.now)


def _data_requests(ctx: JobContext) -> object:
    return privacy_requests_job(ctx.sessions, ctx.settings, ctx.now)


JOBS: tuple[Job, ...] = (
    Job("alerts", _alerts),
    Job("digests", _digests),
    Job("staff_mail", _staff_mail),
    Job("retention", _retention, every=timedelta(hours=1)),
    # Erasures held by an open ticket, finished once it closes; expired codes and download links.
    Job("data_requests", _data_requests, every=timedelta(minutes=5)),
    # "Was it solved?" questions past CRM_FEEDBACK_EXPIRY_DAYS count as unanswered.
    Job("feedback_expiry", _feedback_expiry, every=timedelta(hours=1)),
)


def claim_lease(session: Session, job: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take or renew ``job``'s lease for ``holder``; False while another holder's lease runs."""
    renewed = session.execute(
        update(JobLease)
        .where(JobLease.job == job, or_(JobLease.holder == holder, JobLease.until < now))
        .values(holder=holder, until=now + ttl, last_run_at=now)
    ).rowcount
    if renewed:
        return True
    try:
        with session.begin_nested():
            session.add(JobLease(job=job, holder=holder, until=now + ttl, last_run_at=now))
            session.flush()
    except IntegrityError:
        return False  # another scheduler holds it (or inserted it just now)
    return True


def release_leases(session: Session, holder: str, *, now: datetime) -> None:
    """At a clean stop: let a standby scheduler take over at once instead of after the lease."""
    session.execute(update(JobLease).where(JobLease.holder == holder).values(until=now))


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        mailer: Mailer | None,
        *,
        jobs: Sequence[Job] = JOBS,
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._mailer = mailer
        self._jobs = tuple(jobs)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        interval = settings.scheduler_interval_seconds
        # Long enough to survive a slow run, short enough for a standby to take over soon after a crash.
        self._ttl = timedelta(seconds=max(3 * interval, 120.0))

    def run_once(self, now: datetime | None = None) -> dict[str, object]:
        """Run every job whose lease this scheduler holds; returns each job's result (or the error)."""
        results: dict[str, object] = {}
        for job in self._jobs:
            at = now or self._clock()
            try:
                with self._sessions.begin() as session:
                    if job.every is not None:
                        last = session.scalar(select(JobLease.last_run_at).where(JobLease.job == job.name))
                        if last is not None and at < last + job.every:
                            results[job.name] = "not due"
                            continue
                    if not claim_lease(session, job.name, self.holder, now=at, ttl=self._ttl):
                        results[job.name] = "held by another scheduler"
                        continue
                results[job.name] = job.run(JobContext(self._settings, self._sessions, self._mailer, at))
            except Exception as exc:  # a job's failure must not stop the others, nor the scheduler
                logger.exception("scheduler job %s failed; it runs again in %.0f s",
                                 job.name, self._settings.scheduler_interval_seconds)
                results[job.name] = exc
        return results

    def announce(self) -> None:
        """What an operator must know at start-up, said once."""
        if self._mailer is None:
            logger.warning(
                "staff e-mail is not configured (CRM_SMTP_HOST and CRM_ALERT_FROM_ADDRESS or CRM_EMAIL_ADDRESS): "
                "commitment alerts are shown in the console only"
            )
        logger.info("scheduler %s: jobs %s every %.0f s", self.holder, ", ".join(j.name for j in self._jobs),
                    self._settings.scheduler_interval_seconds)

    def run_forever(self, stop: threading.Event) -> None:
        self.announce()
        try:
            while not stop.is_set():
                self.run_once()
                stop.wait(self._settings.scheduler_interval_seconds)
        finally:
            self.release()

    def release(self, now: datetime | None = None) -> None:
        """Give up this scheduler's leases (a clean stop) so a standby need not wait for them to run out."""
        try:
            with self._sessions.begin() as session:
                release_leases(session, self.holder, now=now or self._clock())
        except Exception:
            logger.warning("could not release the scheduler's leases; they run out by themselves")
