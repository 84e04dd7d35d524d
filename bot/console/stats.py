"""Statistics for supervisors: what citizens ask, how much the assistant answers, how fast
the city responds.

Every function takes a session and a ``Period`` (whole UTC days, both ends included) and
only reads. Grouping by day happens in SQL with one small per-dialect expression; medians
are computed in Python over the durations because SQLite has no percentile function and
the two backends must give the same numbers.

"Messages" are what citizens wrote (inbound). Ticket figures count the tickets opened in
the period; the open/overdue load per department is a snapshot at ``now``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from bot.feedback.stats import Satisfaction, satisfaction
from bot.store.models import Message
from bot.store.types import utcnow
from bot.texts import DEFAULT_LANGUAGE
from bot.tickets.models import Ticket
from bot.tickets.status import OPEN_STATUSES

# How the assistant's handling of a message counts in the automatic/escalated split.
AUTOMATIC_HANDLINGS: tuple[str, ...] = ("kb_answer", "small_talk", "status")
ESCALATED_HANDLINGS: tuple[str, ...] = ("escalated", "ticket_joined")

# A longer range would make the per-day chart unreadable and the queries slow.
MAX_PERIOD_DAYS = 366


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError("the end date is before the start date")
        if self.length > MAX_PERIOD_DAYS:
            raise PeriodError(f"choose at most {MAX_PERIOD_DAYS} days")

    @classmethod
    def last_days(cls, days: int, today: date | None = None) -> Period:
        today = today or utcnow().date()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """Exclusive upper bound: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.length)]


def _day_of(session: Session, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """``YYYY-MM-DD`` of a UTC timestamp column, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite keeps UTCDateTime as "YYYY-MM-DD HH:MM:SS[.ffffff]" text (bot.store.types).
    return func.substr(column, 1, 10)


def _in_period(column: ColumnElement[datetime], period: Period) -> ColumnElement[bool]:
    return (column >= period.since) & (column < period.until)


# --- Messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
    by_channel: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_channel.values())


def messages_per_day(session: Session, period: Period) -> list[DayCount]:
    """Citizen messages per UTC day and channel; every day of the period, zeros included."""
    day = _day_of(session, Message.created_at).label("day")
    rows = session.execute(
        select(day, Message.channel, func.count())
        .where(Message.direction == "in", _in_period(Message.created_at, period))
        .group_by(day, Message.channel)
    ).all()
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    for day_text, channel, count in rows:
        counts[date.fromisoformat(day_text)][channel] = count
    return [DayCount(d, dict(sorted(counts.get(d, {}).items()))) for d in period.days()]


def messages_per_channel(session: Session, period: Period) -> list[tuple[str, int]]:
    """Citizen messages per channel, busiest first."""
    rows = session.execute(
        select(Message.channel, func.count())
        .where(Message.direction == "in", _in_period(Message.created_at, period))
        .group_by(Message.channel)
    ).all()
    return sorted(((channel, count) for channel, count in rows), key=lambda r: (-r[1], r[0]))


@dataclass(frozen=True)
class HandlingSplit:
    automatic: int
    escalated: int
    other: int  # attachments, errors, not yet handled

    @property
    def total(self) -> int:
        return self.automatic + self.escalated + self.other

    def share(self, part: int) -> float | None:
        return part / self.total if self.total else None

    @property
    def automatic_share(self) -> float | None:
        return self.share(self.automatic)

    @property
    def escalated_share(self) -> float | None:
        return self.share(self.escalated)


def handling_split(session: Session, period: Period) -> HandlingSplit:
    """How the citizen messages of the period were handled: by the assistant or by people."""
    rows = session.execute(
        select(Message.handling, func.count())
        .where(Message.direction == "in", _in_period(Message.created_at, period))
        .group_by(Message.handling)
    ).all()
    automatic = escalated = other = 0
    for handling, count in rows:
        if handling in AUTOMATIC_HANDLINGS:
            automatic += count
        elif handling in ESCALATED_HANDLINGS:
            escalated += count
        else:
            other += count
    return HandlingSplit(automatic, escalated, other)


def top_kb_entries(session: Session, period: Period, *, limit: int = 10) -> list[tuple[str, int]]:
    """The KB entries the assistant answered with most often."""
    count = func.count().label("n")
    rows = session.execute(
        select(Message.kb_entry_id, count)
        .where(
            Message.direction == "in",
            Message.handling == "kb_answer",
            Message.kb_entry_id.is_not(None),
            _in_period(Message.created_at, period),
        )
        .group_by(Message.kb_entry_id)
        .order_by(count.desc(), Message.kb_entry_id)
        .limit(limit)
    ).all()
    return [(entry_id, n) for entry_id, n in rows]


# --- Tickets ----------------------------------------------------------------------------


def escalation_reasons(session: Session, period: Period) -> list[tuple[str, int]]:
    """Why the tickets opened in the period were escalated, most frequent first."""
    rows = session.execute(
        select(Ticket.reason, func.count())
        .where(_in_period(Ticket.created_at, period))
        .group_by(Ticket.reason)
    ).all()
    return sorted(((reason, n) for reason, n in rows), key=lambda r: (-r[1], r[0]))


def ticket_languages(session: Session, period: Period, *,
                     default_language: str = DEFAULT_LANGUAGE) -> list[tuple[str, int]]:
    """The languages the tickets opened in the period were opened in, most frequent first; a
    ticket without one (opened before languages were recorded) counts as ``default_language``."""
    counts: dict[str, int] = defaultdict(int)
    for language, n in session.execute(
        select(Ticket.language, func.count()).where(_in_period(Ticket.created_at, period)).group_by(Ticket.language)
    ):
        counts[language or default_language] += int(n)
    return sorted(counts.items(), key=lambda r: (-r[1], r[0]))


@dataclass(frozen=True)
class DepartmentLoad:
    department: str
    open: int
    overdue: int


def department_load(session: Session, *, now: datetime | None = None) -> list[DepartmentLoad]:
    """Tickets still being worked on, and how many of them are past their deadline, right now."""
    now = now or utcnow()
    overdue = func.sum(case((Ticket.due_at < now, 1), else_=0))
    rows = session.execute(
        select(Ticket.department, func.count(), overdue)
        .where(Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.department)
    ).all()
    loads = [DepartmentLoad(dep, n, int(late or 0)) for dep, n, late in rows]
    return sorted(loads, key=lambda d: (-d.overdue, -d.open, d.department))


@dataclass(frozen=True)
class ResponseTimes:
    median_first_response: timedelta | None
    first_responses: int  # tickets the median is over
    median_resolution: timedelta | None
    resolutions: int


def _median(durations: list[timedelta]) -> timedelta | None:
    if not durations:
        return None
    return timedelta(seconds=statistics.median(d.total_seconds() for d in durations))


def response_times(session: Session, period: Period) -> ResponseTimes:
    """Median time to the first response from a person, and to resolution, for tickets
    opened in the period. A ticket closed without being resolved counts from its closing."""
    rows = session.execute(
        select(Ticket.created_at, Ticket.first_response_at, Ticket.resolved_at, Ticket.closed_at).where(
            _in_period(Ticket.created_at, period)
        )
    ).all()
    first = [responded - created for created, responded, _, _ in rows if responded is not None]
    resolved = [
        (resolved_at or closed_at) - created
        for created, _, resolved_at, closed_at in rows
        if (resolved_at or closed_at) is not None
    ]
    return ResponseTimes(_median(first), len(first), _median(resolved), len(resolved))


@dataclass(frozen=True)
class Compliance:
    """The response commitment: a person answers before the ticket's ``due_at``.

    ``pending`` tickets are not due yet and have no response: neither met nor missed.
    ``closed_unanswered`` were resolved or closed with no public reply (spam, duplicates):
    there was nothing to answer, so they are left out of the share too.
    """

    met: int
    missed: int
    pending: int
    closed_unanswered: int

    @property
    def judged(self) -> int:
        return self.met + self.missed

    @property
    def share(self) -> float | None:
        return self.met / self.judged if self.judged else None


def commitment_compliance(session: Session, period: Period, *, now: datetime | None = None) -> Compliance:
    now = now or utcnow()
    rows = session.execute(
        select(Ticket.status, Ticket.due_at, Ticket.first_response_at).where(_in_period(Ticket.created_at, period))
    ).all()
    met = missed = pending = closed_unanswered = 0
    for status, due_at, responded in rows:
        if responded is not None:
            if responded <= due_at:
                met += 1
            else:
                missed += 1
        elif status not in OPEN_STATUSES:
            closed_unanswered += 1
        elif due_at < now:
            missed += 1
        else:
            pending += 1
    return Compliance(met, missed, pending, closed_unanswered)


# --- Everything for the page and the CSV --------------------------------------------------


@dataclass(frozen=True)
class StatsReport:
    period: Period
    generated_at: datetime
    per_day: list[DayCount]
    per_channel: list[tuple[str, int]]
    handling: HandlingSplit
    top_entries: list[tuple[str, int]]
    reasons: list[tuple[str, int]]
    departments: list[DepartmentLoad]
    times: ResponseTimes
    compliance: Compliance
    channels: list[str] = field(default_factory=list)
    # "Was it solved?" (bot.feedback), over the surveys asked in the period.
    satisfaction_departments: list[Satisfaction] = field(default_factory=list)
    satisfaction_channels: list[Satisfaction] = field(default_factory=list)
    # (language, tickets opened in the period), most frequent first.
    languages: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total_messages(self) -> int:
        return sum(n for _, n in self.per_channel)

    @property
    def tickets_opened(self) -> int:
        return sum(n for _, n in self.reasons)


def build_report(session: Session, period: Period, *, now: datetime | None = None,
                 default_language: str = DEFAULT_LANGUAGE) -> StatsReport:
    """``default_language``: the KB's main language, what a ticket without a language is in."""
    now = now or utcnow()
    per_channel = messages_per_channel(session, period)
    return StatsReport(
        period=period,
        generated_at=now,
        per_day=messages_per_day(session, period),
        per_channel=per_channel,
        handling=handling_split(session, period),
        top_entries=top_kb_entries(session, period),
        reasons=escalation_reasons(session, period),
        departments=department_load(session, now=now),
        times=response_times(session, period),
        compliance=commitment_compliance(session, period, now=now),
        channels=[channel for channel, _ in per_channel],
        satisfaction_departments=satisfaction(session, period.since, period.until, by="department"),
        satisfaction_channels=satisfaction(session, period.since, period.until, by="channel"),
        languages=ticket_languages(session, period, default_language=default_language),
    )


def format_duration(value: timedelta | None) -> str:
    """``2 h 05 min``, ``3 d 4 h``, ``45 s``: what a supervisor reads at a glance."""
    if value is None:
        return "n/a"
    seconds = int(round(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


# --- CSV export -------------------------------------------------------------------------

CSV_HEADER = ("section", "item", "detail", "value")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """Numbers pass unchanged; text that a spreadsheet would run as a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _hours(value: timedelta | None) -> float | str:
    return "" if value is None else round(value.total_seconds() / 3600, 2)


def _share(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)


def report_rows(report: StatsReport) -> list[tuple[object, ...]]:
    """The report as long-format rows (section, item, detail, value): easy to pivot."""
    rows: list[tuple[object, ...]] = [
        ("period", "start", "", report.period.start.isoformat()),
        ("period", "end", "", report.period.end.isoformat()),
        ("period", "generated_at", "", report.generated_at.isoformat(timespec="seconds")),
    ]
    for day in report.per_day:
        for channel in report.channels:
            rows.append(("messages_per_day", day.day.isoformat(), channel, day.by_channel.get(channel, 0)))
        rows.append(("messages_per_day", day.day.isoformat(), "total", day.total))
    rows += [("messages_per_channel", channel, "", n) for channel, n in report.per_channel]
    split = report.handling
    for name, count in (("automatic", split.automatic), ("escalated", split.escalated), ("other", split.other)):
        rows.append(("handling", name, "count", count))
        rows.append(("handling", name, "share", _share(split.share(count))))
    rows += [("top_kb_entries", entry, "", n) for entry, n in report.top_entries]
    rows += [("escalation_reasons", reason, "", n) for reason, n in report.reasons]
    rows += [("tickets_by_language", language, "", n) for language, n in report.languages]
    for load in report.departments:
        rows.append(("department_load", load.department, "open", load.open))
        rows.append(("department_load", load.department, "overdue", load.overdue))
    times = report.times
    rows += [
        ("response_times", "median_first_response_hours", "", _hours(times.median_first_response)),
        ("response_times", "first_responses", "tickets", times.first_responses),
        ("response_times", "median_resolution_hours", "", _hours(times.median_resolution)),
        ("response_times", "resolutions", "tickets", times.resolutions),
    ]
    c = report.compliance
    rows += [
        ("commitment", "met", "tickets", c.met),
        ("commitment", "missed", "tickets", c.missed),
        ("commitment", "pending", "tickets", c.pending),
        ("commitment", "closed_unanswered", "tickets", c.closed_unanswered),
        ("commitment", "share_met", "", _share(c.share)),
    ]
    for section, groups in (("satisfaction_department", report.satisfaction_departments),
                            ("satisfaction_channel", report.satisfaction_channels)):
        for g in groups:
            average = "" if g.average_rating is None else round(g.average_rating, 2)
            rows += [
                (section, g.group, "asked", g.asked),
                (section, g.group, "answered", g.answered),
                (section, g.group, "solved", g.solved),
                (section, g.group, "solved_share", _share(g.solved_share)),
                (section, g.group, "ratings", g.ratings),
                (section, g.group, "average_rating", average),
            ]
    return rows


def report_csv(report: StatsReport) -> str:
    """RFC 4180 CSV (quoted where needed, CRLF line ends), safe to open in a spreadsheet."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in report_rows(report):
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue()
