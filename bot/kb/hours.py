"""Business hours as city staff write them in ``departments.yml`` (``"Mon-Fri 08:00-17:00"``).

Parsed here, below the tickets, because the KB validator must judge the text with the same
rules the ticket clock uses (``bot.tickets.clock``): a spelling that validates is a spelling
the clock understands. Parsing never guesses: anything unclear is a ``HoursError`` whose
message says how to write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Spellings that mean "no business hours": the clock runs day and night.
ROUND_THE_CLOCK = frozenset({"24/7", "always"})
ALERT_MODES = ("each", "digest")

_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
HOURS_EXAMPLE = '"Mon-Fri 08:00-17:00", "Mon-Thu 08:00-16:00; Fri 08:00-13:00" or "24/7"'

# Per weekday (Monday first), the open intervals as (start, end) minutes after local midnight.
Week = tuple[tuple[tuple[int, int], ...], ...]


class HoursError(ValueError):
    """Business hours that cannot be read; the message is for the member of staff editing them."""


@dataclass(frozen=True)
class Schedule:
    """What ``departments.yml`` says about a department's clock and alerts (``None``: not given here)."""

    timezone: str | None = None
    hours: str | None = None
    holidays: tuple[date, ...] = ()
    alerts: str | None = None
    line: int = field(default=0, compare=False)


def _day(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in DAYS or len(text.strip()) < 3:
        raise HoursError(f"`{text.strip()}` is not a day; use Mon, Tue, Wed, Thu, Fri, Sat or Sun")
    return DAYS.index(key)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            if last < first:
                raise HoursError(f"the day range `{part.strip()}` runs backwards; write it Monday-first, e.g. Mon-Fri")
            days.extend(range(first, last + 1))
        else:
            days.append(_day(part))
    return days


def _range(text: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    if not match:
        raise HoursError(f"`{text}` is not a time range; write it as HH:MM-HH:MM, e.g. 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise HoursError(f"`{text}` has an impossible time (hours 00-23, or 24:00 for midnight)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise HoursError(f"`{text}` ends before it starts; a range cannot cross midnight (split it in two days)")
    return start, end


def parse_hours(text: str | None) -> Week | None:
    """The weekly open intervals of ``text``; ``None`` (round the clock) for no text or ``24/7``.

    Groups are separated by ``;``, each is days then one or more ranges:
    ``"Mon-Thu 08:00-12:00 13:00-17:00; Fri 08:00-13:00"``.
    """
    if text is None or text.strip().lower() in ROUND_THE_CLOCK:
        return None
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for group in text.split(";"):
        words = group.split()
        if not words:
            continue
        if len(words) < 2:
            raise HoursError(f"`{group.strip()}` needs days and a time range, e.g. {HOURS_EXAMPLE}")
        days = _days(words[0])
        ranges = [_range(word) for word in words[1:]]
        for day in days:
            week[day].extend(ranges)
    result = []
    for day, ranges in zip(DAYS, week):
        ranges.sort()
        for (_s1, e1), (s2, _e2) in zip(ranges, ranges[1:]):
            if s2 < e1:
                raise HoursError(f"the hours of {day.capitalize()} overlap; give each time once")
        result.append(tuple(ranges))
    if not any(result):
        raise HoursError(f"`{text}` opens on no day at all; e.g. {HOURS_EXAMPLE}")
    return tuple(result)


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HoursError(f"`{name}` is not a time zone; use an IANA name such as Europe/Madrid or UTC") from exc


def merged(defaults: Schedule, own: Schedule) -> Schedule:
    """A department's settings over the defaults; its holidays are added to the defaults' holidays."""
    return Schedule(
        timezone=own.timezone or defaults.timezone,
        hours=own.hours if own.hours is not None else defaults.hours,
        holidays=tuple(sorted(set(defaults.holidays) | set(own.holidays))),
        alerts=own.alerts or defaults.alerts,
        line=own.line or defaults.line,
    )
