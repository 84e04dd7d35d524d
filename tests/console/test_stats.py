"""Statistics on seeded data with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.console import stats
from bot.console.stats import Period, PeriodError
from tests.console.insights_seed import NOW, PERIOD, seed_known


@pytest.fixture
def seeded(session):
    seed_known(session)
    session.commit()
    return session


def test_messages_per_day_counts_citizen_messages_by_utc_day_and_channel(seeded) -> None:
    days = stats.messages_per_day(seeded, PERIOD)
    assert [d.day for d in days] == PERIOD.days()
    by_day = {d.day.day: d.by_channel for d in days}
    assert by_day == {
        1: {"telegram": 1, "web": 2},
        2: {"email": 1, "web": 1},
        3: {},
        4: {},
        5: {"telegram": 3},
        6: {},
        7: {"web": 1},  # 23:59:59 is still the 7th; midnight after is not in the period
    }
    assert sum(d.total for d in days) == 9


def test_messages_per_channel_busiest_first(seeded) -> None:
    assert stats.messages_per_channel(seeded, PERIOD) == [("telegram", 4), ("web", 4), ("email", 1)]


def test_handling_split(seeded) -> None:
    split = stats.handling_split(seeded, PERIOD)
    assert (split.automatic, split.escalated, split.other, split.total) == (6, 2, 1, 9)
    assert split.automatic_share == pytest.approx(6 / 9)
    assert split.escalated_share == pytest.approx(2 / 9)


def test_top_kb_entries(seeded) -> None:
    assert stats.top_kb_entries(seeded, PERIOD) == [("waste-bulky-items", 3), ("parking-resident-permit", 1)]
    assert stats.top_kb_entries(seeded, PERIOD, limit=1) == [("waste-bulky-items", 3)]


def test_escalation_reasons(seeded) -> None:
    assert stats.escalation_reasons(seeded, PERIOD) == [
        ("complaint", 2), ("low_confidence", 2), ("out_of_scope", 1), ("request_human", 1),
    ]


def test_department_load_is_a_snapshot_at_now(seeded) -> None:
    loads = stats.department_load(seeded, now=NOW)
    assert [(d.department, d.open, d.overdue) for d in loads] == [
        ("waste", 2, 2), ("parking", 1, 1), ("taxes", 1, 0),
    ]
    # Before T2 and T3 were due nothing but T7 is overdue.
    early = stats.department_load(seeded, now=NOW.replace(day=2, hour=0))
    assert {d.department: d.overdue for d in early} == {"waste": 1, "parking": 0, "taxes": 0}


def test_median_response_and_resolution_times(seeded) -> None:
    times = stats.response_times(seeded, PERIOD)
    assert times.median_first_response == timedelta(hours=4)  # 2 h, 4 h, 26 h
    assert times.first_responses == 3
    assert times.median_resolution == timedelta(hours=24)  # 1 h, 24 h, 48 h
    assert times.resolutions == 3


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(seeded) -> None:
    times = stats.response_times(seeded, Period(date(2026, 3, 1), date(2026, 3, 3)))  # T1, T2, T3
    assert times.median_first_response == timedelta(hours=14)  # (2 h + 26 h) / 2
    assert times.median_resolution == timedelta(hours=24)


def test_commitment_compliance(seeded) -> None:
    compliance = stats.commitment_compliance(seeded, PERIOD, now=NOW)
    assert (compliance.met, compliance.missed, compliance.pending, compliance.closed_unanswered) == (2, 2, 1, 1)
    assert compliance.share == pytest.approx(0.5)


def test_empty_period_gives_zeros_not_errors(seeded) -> None:
    empty = Period(date(2025, 1, 1), date(2025, 1, 3))
    report = stats.build_report(seeded, empty, now=NOW)
    assert [d.total for d in report.per_day] == [0, 0, 0]
    assert report.handling.automatic_share is None
    assert report.times.median_first_response is None
    assert report.compliance.share is None
    assert report.total_messages == 0


def test_build_report_collects_everything(seeded) -> None:
    report = stats.build_report(seeded, PERIOD, now=NOW)
    assert report.total_messages == 9
    assert report.tickets_opened == 6
    assert report.channels == ["telegram", "web", "email"]


def test_period_rules() -> None:
    with pytest.raises(PeriodError):
        Period(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(PeriodError):
        Period(date(2024, 1, 1), date(2026, 1, 1))
    assert Period.last_days(7, today=date(2026, 3, 7)) == PERIOD


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "n/a"), (42, "42 s"), (600, "10 min"), (7500, "2 h 05 min"), (3 * 86400 + 4 * 3600, "3 d 4 h")],
)
def test_format_duration(seconds, text) -> None:
    value = None if seconds is None else timedelta(seconds=seconds)
    assert stats.format_duration(value) == text


def test_csv_export_has_every_figure_and_parses_back(seeded) -> None:
    import csv
    import io

    text = stats.report_csv(stats.build_report(seeded, PERIOD, now=NOW))
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "item", "detail", "value"]
    found = {(s, i, d): v for s, i, d, v in rows[1:]}
    assert found[("messages_per_day", "2026-03-01", "web")] == "2"
    assert found[("messages_per_day", "2026-03-01", "total")] == "3"
    assert found[("messages_per_channel", "telegram", "")] == "4"
    assert found[("handling", "automatic", "share")] == "0.6667"
    assert found[("top_kb_entries", "waste-bulky-items", "")] == "3"
    assert found[("escalation_reasons", "low_confidence", "")] == "2"
    assert found[("department_load", "waste", "overdue")] == "2"
    assert found[("response_times", "median_first_response_hours", "")] == "4.0"
    assert found[("response_times", "median_resolution_hours", "")] == "24.0"
    assert found[("commitment", "share_met", "")] == "0.5"


@pytest.mark.parametrize("dangerous", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_csv_cells_never_start_a_formula(dangerous) -> None:
    assert stats.csv_cell(dangerous) == "'" + dangerous
    assert stats.csv_cell("waste, \"bins\"") == "waste, \"bins\""
    assert stats.csv_cell(-3) == -3  # numbers are numbers


def test_csv_quotes_and_guards_values_from_the_store(session) -> None:
    """Department and entry ids come from data: a crafted one must not become a formula."""
    import csv
    import io

    from bot.store.citizens import get_or_create_identity
    from tests.console.insights_seed import at, message, ticket

    web = get_or_create_identity(session, "web", "mallory")
    message(session, web, at(2, 9), "kb_answer", kb_entry_id="=cmd|' /C calc'!A0")
    ticket(session, web, "TX", department='-x,"y"\nz', reason="complaint", created=at(2, 9), status="new",
           due=NOW + timedelta(days=1))
    session.commit()
    rows = list(csv.reader(io.StringIO(stats.report_csv(stats.build_report(session, PERIOD, now=NOW)))))
    cells = [cell for row in rows for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells
    assert "'-x,\"y\"\nz" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


def test_tickets_by_language_count_a_ticket_without_one_as_the_main_language(seeded) -> None:
    from sqlalchemy import update

    from bot.tickets.models import Ticket

    seeded.execute(update(Ticket).where(Ticket.public_id.in_(["T2", "T3"])).values(language="es"))
    seeded.execute(update(Ticket).where(Ticket.public_id == "T5").values(language="en"))
    seeded.commit()
    # Six tickets opened in the period (T7 is before it): two in Spanish, the rest in the main language.
    assert stats.ticket_languages(seeded, PERIOD) == [("en", 4), ("es", 2)]
    assert stats.ticket_languages(seeded, PERIOD, default_language="fr") == [("fr", 3), ("es", 2), ("en", 1)]
    report = stats.build_report(seeded, PERIOD, now=NOW)
    found = {(s, i, d): v for s, i, d, v in stats.report_rows(report)}
    assert found[("tickets_by_language", "es", "")] == 2 and found[("tickets_by_language", "en", "")] == 4
