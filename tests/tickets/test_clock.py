"""The ticket clock: business hours, holidays, time zones and pauses, with an explicit ``now``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kb.hours import HoursError, Schedule, merged, parse_hours
from bot.tickets.clock import (
    ALWAYS,
    BusinessCalendar,
    ClockError,
    deadline,
    pauses_from_history,
    running_time,
    thresholds,
)

MADRID = ZoneInfo("Europe/Madrid")
OFFICE = BusinessCalendar(tz=MADRID, week=parse_hours("Mon-Fri 08:00-17:00"),
                          holidays=frozenset({date(2026, 12, 25)}))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


# --- parsing what staff write ------------------------------------------------------------------


def test_parse_hours_weekdays_and_groups() -> None:
    week = parse_hours("Mon-Thu 08:00-12:00 13:00-17:00; Fri 08:00-13:00")
    assert week[0] == ((480, 720), (780, 1020))
    assert week[4] == ((480, 780),)
    assert week[5] == () and week[6] == ()


@pytest.mark.parametrize("text", [None, "24/7", "always", " 24/7 "])
def test_round_the_clock(text: str | None) -> None:
    assert parse_hours(text) is None


def test_midnight_as_24_00_and_day_lists() -> None:
    week = parse_hours("Sat,Sun 20:00-24:00")
    assert week[5] == ((1200, 1440),) and week[6] == ((1200, 1440),) and week[0] == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Mon-Fri", "needs days and a time range"),
        ("Mon-Fri 8-17", "HH:MM-HH:MM"),
        ("Fri-Mon 08:00-17:00", "runs backwards"),
        ("Mon-Fri 17:00-08:00", "ends before it starts"),
        ("Mon-Fri 08:00-25:00", "impossible time"),
        ("Mo-Fr 08:00-17:00", "is not a day"),
        ("Funday 08:00-17:00", "is not a day"),
        ("Mon 08:00-12:00 11:00-13:00", "overlap"),
    ],
)
def test_bad_hours_say_how_to_fix_them(text: str, says: str) -> None:
    with pytest.raises(HoursError, match=says):
        parse_hours(text)


def test_department_over_defaults_adds_holidays() -> None:
    defaults = Schedule(timezone="Europe/Madrid", hours="Mon-Fri 08:00-17:00", holidays=(date(2026, 12, 25),))
    own = Schedule(hours="24/7", holidays=(date(2026, 8, 15),))
    result = merged(defaults, own)
    assert result.timezone == "Europe/Madrid" and result.hours == "24/7"
    assert result.holidays == (date(2026, 8, 15), date(2026, 12, 25))


# --- business time --------------------------------------------------------------------------


def test_round_the_clock_is_wall_time() -> None:
    start = datetime(2026, 12, 5, 10, tzinfo=UTC)
    assert deadline(ALWAYS, start, timedelta(hours=24)) == start + timedelta(hours=24)


def test_across_a_weekend() -> None:
    # Friday 16:00, 4 business hours: 1 on Friday, 3 on Monday from 08:00.
    assert deadline(OFFICE, local(2026, 12, 4, 16), timedelta(hours=4)) == local(2026, 12, 7, 11)


def test_opened_outside_hours_starts_at_opening() -> None:
    assert deadline(OFFICE, local(2026, 12, 5, 22), timedelta(hours=1)) == local(2026, 12, 7, 9)


def test_across_a_holiday_and_a_weekend() -> None:
    # Thursday 24 Dec 15:00 + 4 h: 2 h on Thursday, Friday 25 is a holiday, the weekend, Monday 10:00.
    assert deadline(OFFICE, local(2026, 12, 24, 15), timedelta(hours=4)) == local(2026, 12, 28, 10)


def test_24_business_hours_is_almost_three_working_days() -> None:
    # Monday 08:00 + 24 h of a 9-hour day: Mon 9, Tue 9, Wed 6 -> Wednesday 14:00.
    assert deadline(OFFICE, local(2026, 12, 7, 8), timedelta(hours=24)) == local(2026, 12, 9, 14)


def test_hours_follow_daylight_saving_time() -> None:
    # Madrid moves from UTC+1 to UTC+2 on 29 March 2026: 08:00 local is 07:00 UTC before, 06:00 after.
    calendar = BusinessCalendar(tz=MADRID, week=parse_hours("Mon-Fri 08:00-17:00"))
    due = deadline(calendar, local(2026, 3, 27, 16), timedelta(hours=2))  # Friday before the change
    assert due == local(2026, 3, 30, 9)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_pause_moves_the_deadline_by_the_business_time_paused() -> None:
    start = local(2026, 12, 7, 8)  # Monday
    pauses = [(local(2026, 12, 7, 10), local(2026, 12, 7, 13))]  # 3 business hours waiting for the citizen
    assert deadline(OFFICE, start, timedelta(hours=4), pauses) == local(2026, 12, 7, 15)


def test_pause_outside_hours_changes_nothing() -> None:
    start = local(2026, 12, 4, 16)
    weekend = [(local(2026, 12, 5, 9), local(2026, 12, 6, 18))]
    assert deadline(OFFICE, start, timedelta(hours=4), weekend) == deadline(OFFICE, start, timedelta(hours=4))


def test_pauses_from_history_and_an_open_pause_ending_now() -> None:
    t = local(2026, 12, 7, 8)
    changes = [
        (t + timedelta(hours=1), "new", "open"),
        (t + timedelta(hours=2), "open", "pending_citizen"),
        (t + timedelta(hours=3), "pending_citizen", "open"),
        (t + timedelta(hours=5), "open", "pending_citizen"),
    ]
    now = t + timedelta(hours=6)
    finished = ((t + timedelta(hours=2)).astimezone(UTC), (t + timedelta(hours=3)).astimezone(UTC))
    assert pauses_from_history(changes, now) == [finished, ((t + timedelta(hours=5)).astimezone(UTC), now.astimezone(UTC))]
    assert pauses_from_history(changes, None) == [finished]


def test_thresholds_near_due_at_80_percent() -> None:
    start = datetime(2026, 12, 7, 0, tzinfo=UTC)
    result = thresholds(ALWAYS, start, timedelta(hours=10), near_fraction=0.8)
    assert result.warn_at == start + timedelta(hours=8) and result.due_at == start + timedelta(hours=10)


def test_a_calendar_without_open_days_fails_clearly() -> None:
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(2000))
    calendar = BusinessCalendar(tz=MADRID, week=parse_hours("Mon-Sun 08:00-17:00"), holidays=every_day)
    with pytest.raises(ClockError, match="no open time"):
        deadline(calendar, local(2026, 1, 1, 8), timedelta(hours=1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(OFFICE, datetime(2026, 12, 7, 8), timedelta(hours=1))


# --- properties -------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=20))
calendars = st.sampled_from(
    [
        ALWAYS,
        OFFICE,
        BusinessCalendar(tz=ZoneInfo("America/New_York"), week=parse_hours("Mon-Thu 07:30-12:00 13:00-16:30; Fri 08:00-12:00")),
        BusinessCalendar(tz=ZoneInfo("Pacific/Auckland"), week=parse_hours("Sat,Sun 00:00-24:00")),
    ]
)


def _pauses(draw_list: list[tuple[datetime, timedelta]]) -> list[tuple[datetime, datetime]]:
    return [(begin, begin + length) for begin, length in draw_list]


pause_lists = st.lists(st.tuples(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))), max_size=3)


@settings(max_examples=150, deadline=None)
@given(calendars, instants, durations, pause_lists)
def test_running_time_up_to_the_deadline_is_the_commitment(calendar, start, duration, pauses) -> None:
    pauses = _pauses(pauses)
    due = deadline(calendar, start, duration, pauses)
    assert due >= start + duration  # business time never runs faster than the wall clock
    assert running_time(calendar, start, due, pauses) == duration


@settings(max_examples=150, deadline=None)
@given(calendars, instants, durations, durations)
def test_deadline_is_monotonic_and_additive(calendar, start, first, second) -> None:
    longer = deadline(calendar, start, first + second)
    assert deadline(calendar, start, first) <= longer
    # Counting on from the first deadline gives the same result as counting all at once.
    assert deadline(calendar, deadline(calendar, start, first), second) == longer


@settings(max_examples=100, deadline=None)
@given(calendars, instants, durations, pause_lists)
def test_pauses_never_bring_the_deadline_forward(calendar, start, duration, pauses) -> None:
    assert deadline(calendar, start, duration, _pauses(pauses)) >= deadline(calendar, start, duration)
