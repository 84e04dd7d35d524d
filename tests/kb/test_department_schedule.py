"""departments.yml's clock and alert settings: read, validated with file and line, written back."""

from __future__ import annotations

from datetime import date

from bot.kb.loader import load_departments, load_kb
from bot.kb.validate import check_kb
from bot.kb.writer import render_departments

SCHEDULED = """\
default_language: en
defaults:
  timezone: Europe/Madrid
  hours: "Mon-Fri 08:00-17:00"
  holidays: [2026-12-25]
departments:
  - id: waste
    name: Waste collection
    email: waste@city.example
    alerts: digest
    holidays: [2026-08-15]
  - id: parking
    name: Parking
    hours: "24/7"
"""


def test_defaults_and_overrides_are_read(make_kb) -> None:
    kb_dir = make_kb({}, departments=SCHEDULED)
    kb = load_departments(kb_dir)
    waste = kb.schedule_of("waste")
    assert waste.timezone == "Europe/Madrid" and waste.hours == "Mon-Fri 08:00-17:00" and waste.alerts == "digest"
    assert waste.holidays == (date(2026, 8, 15), date(2026, 12, 25))
    assert kb.schedule_of("parking").hours == "24/7"
    assert kb.schedule_of("unknown").hours == "Mon-Fri 08:00-17:00"
    _kb, problems = check_kb(kb_dir)
    assert [p for p in problems if p.code.startswith("bad-")] == []


def test_bad_settings_are_errors_with_their_line(make_kb) -> None:
    kb_dir = make_kb(
        {},
        departments="""\
default_language: en
defaults:
  timezone: Mars/Olympus
departments:
  - id: waste
    name: Waste collection
    hours: "Mon-Fri 8-17"
    holidays: [25/12/2026]
  - id: parking
    name: Parking
    alerts: weekly
""",
    )
    _kb, problems = check_kb(kb_dir)
    found = {(p.code, p.line) for p in problems if p.is_error}
    assert {("bad-timezone", 3), ("bad-hours", 5), ("bad-holiday", 8), ("bad-alerts", 9)} <= found
    messages = " ".join(p.message for p in problems)
    assert "HH:MM-HH:MM" in messages and "IANA" in messages and "`each`" in messages


def test_the_writer_keeps_the_settings(make_kb, tmp_path) -> None:
    kb, _ = load_kb(make_kb({}, departments=SCHEDULED))
    again = tmp_path / "again"
    again.mkdir()
    (again / "departments.yml").write_text(render_departments(kb), encoding="utf-8")
    reread = load_departments(again)
    assert reread.defaults == kb.defaults
    assert reread.departments == kb.departments


def test_a_digest_without_an_address_is_a_warning(make_kb) -> None:
    kb_dir = make_kb({}, departments="default_language: en\ndepartments:\n  - id: waste\n    name: Waste\n    alerts: digest\n")
    _kb, problems = check_kb(kb_dir)
    assert [(p.code, p.severity, p.line) for p in problems if p.code == "digest-without-email"] == [
        ("digest-without-email", "warning", 3)
    ]


def test_holidays_without_hours_are_a_warning(make_kb) -> None:
    kb_dir = make_kb({}, departments="default_language: en\ndefaults:\n  holidays: [2026-12-25]\n"
                                      "departments:\n  - id: waste\n    name: Waste\n")
    _kb, problems = check_kb(kb_dir)
    assert [p.code for p in problems if p.severity == "warning"] == ["holidays-without-hours"]
