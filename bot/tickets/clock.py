"""The ticket clock: commitment time counted in a department's business time, paused while the
city waits for the citizen.

Pure functions of their arguments (``now`` is always passed in), so every rule can be tested
with a made-up calendar and a made-up history, and the due time stored on a ticket is always
what these functions say: ``due_at`` is the instant at which the ticket has been *running* (open
for business, not waiting for the citizen) for its whole commitment. Open time is taken from the
department's weekly hours in its own time zone (daylight-saving changes included), minus its
holidays; a department without hours runs round the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.kb.hours import Schedule, Week, check_timezone, parse_hours
from bot.tickets.status import PENDING_CITIZEN

# A calendar whose open time never adds up to the commitment (every day a holiday) is a mistake;
# stop looking after this many days rather than loop for ever.
MAX_DAYS = 3 * 366
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)

Interval = tuple[datetime, datetime]


class ClockError(ValueError):
    """The calendar has no open time within ``MAX_DAYS``: the commitment can never be met."""


@dataclass(frozen=True)
class BusinessCalendar:
    """When a department is open: weekly hours (``None``: always) in ``tz``, minus ``holidays``."""

    tz: ZoneInfo = ZoneInfo("UTC")
    week: Week | None = None
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> BusinessCalendar:
        """The calendar of a department's settings; raises ``HoursError`` on what the validator reports."""
        tz = check_timezone(schedule.timezone) if schedule.timezone else ZoneInfo("UTC")
        return cls(tz=tz, week=parse_hours(schedule.hours), holidays=frozenset(schedule.holidays))

    @property
    def round_the_clock(self) -> bool:
        return self.week is None


ALWAYS = BusinessCalendar()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the ticket clock needs timezone-aware datetimes")
    return value.astimezone(UTC)


def open_intervals(calendar: BusinessCalendar, start: datetime) -> Iterator[Interval]:
    """The calendar's open intervals from ``start`` on, in UTC, in order, the first cut at ``start``."""
    start = _utc(start)
    if calendar.week is None:
        yield start, _END_OF_TIME
        return
    first_day = start.astimezone(calendar.tz).date()
    for offset in range(MAX_DAYS):
        day = first_day + timedelta(days=offset)
        if day in calendar.holidays:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=calendar.tz)
        for begin, end in calendar.week[day.weekday()]:
            # Wall-clock arithmetic on an aware datetime, then to UTC: 08:00 stays 08:00 across DST.
            opens = (midnight + timedelta(minutes=begin)).astimezone(UTC)
            closes = (midnight + timedelta(minutes=end)).astimezone(UTC)
            if closes <= start:
                continue
            yield max(opens, start), closes
    raise ClockError(f"the calendar has no open time in {MAX_DAYS} days after {start:%Y-%m-%d}")


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for begin, end in sorted((_utc(b), _utc(e)) for b, e in intervals):
        if end <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def running_intervals(calendar: BusinessCalendar, start: datetime, pauses: Sequence[Interval]) -> Iterator[Interval]:
    """Open intervals from ``start`` on with the pauses cut out: the time that counts."""
    cuts = _merge(pauses)
    for begin, end in open_intervals(calendar, start):
        for pause_begin, pause_end in cuts:
            if pause_end <= begin or pause_begin >= end:
                continue
            if pause_begin > begin:
                yield begin, pause_begin
            begin = max(begin, pause_end)
            if begin >= end:
                break
        if begin < end:
            yield begin, end


def deadline(calendar: BusinessCalendar, start: datetime, duration: timedelta, pauses: Sequence[Interval] = ()) -> datetime:
    """The instant at which ``duration`` of running time has passed since ``start``."""
    remaining = duration
    if remaining <= timedelta(0):
        return _utc(start)
    for begin, end in running_intervals(calendar, start, pauses):
        if end - begin >= remaining:
            return begin + remaining
        remaining -= end - begin
    raise ClockError("the commitment can never be met: no running time left")  # pragma: no cover (MAX_DAYS)


def running_time(calendar: BusinessCalendar, start: datetime, end: datetime, pauses: Sequence[Interval] = ()) -> timedelta:
    """How much of ``[start, end)`` counts towards the commitment."""
    end = _utc(end)
    total = timedelta(0)
    if end <= _utc(start):
        return total
    for begin, stop in running_intervals(calendar, start, pauses):
        if begin >= end:
            break
        total += min(stop, end) - begin
    return total


def pauses_from_history(
    changes: Iterable[tuple[datetime, str | None, str | None]], now: datetime | None
) -> list[Interval]:
    """The intervals spent waiting for the citizen, from ``(at, from_status, to_status)`` changes in order.

    A pause still going on ends at ``now``; with ``now=None`` it is left out, which is how a
    stored due time reads while the ticket waits: the due time as it stood when the pause began,
    moved on by ``bot.tickets.schedule.resume`` when the clock runs again.
    """
    pauses: list[Interval] = []
    paused_since: datetime | None = None
    for at, from_status, to_status in changes:
        if to_status == PENDING_CITIZEN and paused_since is None:
            paused_since = _utc(at)
        elif from_status == PENDING_CITIZEN and to_status != PENDING_CITIZEN and paused_since is not None:
            pauses.append((paused_since, _utc(at)))
            paused_since = None
    if paused_since is not None and now is not None and _utc(now) > paused_since:
        pauses.append((paused_since, _utc(now)))
    return pauses


@dataclass(frozen=True)
class Thresholds:
    """When a ticket is near due (``warn_at``: a share of its commitment has run) and due."""

    warn_at: datetime
    due_at: datetime


def thresholds(
    calendar: BusinessCalendar,
    start: datetime,
    commitment: timedelta,
    pauses: Sequence[Interval] = (),
    *,
    near_fraction: float,
) -> Thresholds:
    """Both alert instants of a ticket opened at ``start``; ``near_fraction`` is in (0, 1)."""
    if not 0 < near_fraction < 1:
        raise ValueError(f"near_fraction must be between 0 and 1, not {near_fraction}")
    return Thresholds(
        warn_at=deadline(calendar, start, commitment * near_fraction, pauses),
        due_at=deadline(calendar, start, commitment, pauses),
    )
