from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bot.kb.loader import load_kb
from bot.kb.schema import Department, Entry, KnowledgeBase
from bot.kb.validate import check_kb, is_valid_url, normalize_phrasing, validate

from .conftest import FIXTURES

TODAY = date(2026, 11, 23)


def check(kb_dir):
    kb, load_problems = load_kb(kb_dir)
    assert [p for p in load_problems if p.is_error] == []
    return validate(kb, today=TODAY)


def found(problems):
    return [(p.code, p.severity, p.line) for p in problems]


def one_entry(body: str, file: str = "waste.yml") -> dict[str, str]:
    return {file: "department: waste\nentries:\n" + body}


def test_valid_fixture_has_no_problems():
    kb, _ = load_kb(FIXTURES / "kb_valid")
    assert validate(kb, today=TODAY) == []


def test_duplicate_ids_are_reported_in_both_places(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": "department: waste\nentries:\n  - id: same-id\n    questions: {en: [One]}\n    answer: {en: A}\n",
            "parking.yml": "department: parking\nentries:\n  - id: other\n    questions: {en: [Two]}\n    answer: {en: B}\n"
            "  - id: same-id\n    questions: {en: [Three]}\n    answer: {en: C}\n",
        }
    )
    problems = [p for p in check(kb_dir) if p.code == "duplicate-id"]
    assert [(p.file.rsplit("/", 1)[1], p.line) for p in problems] == [("parking.yml", 6), ("waste.yml", 3)]
    assert "waste.yml:3" in problems[0].message
    assert "parking.yml:6" in problems[1].message
    assert all(p.severity == "error" for p in problems)


def test_missing_and_empty_answers(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: no-answer
    questions: {en: [Question one]}
  - id: empty-answer
    questions: {en: [Question two]}
    answer:
      en: "   "
  - id: only-german
    questions: {de: [Frage drei]}
    answer: {de: Antwort}
"""
        )
    )
    assert found(check(kb_dir)) == [
        ("missing-answer", "error", 3),
        ("empty-answer", "error", 8),
        ("missing-answer", "error", 11),
    ]


def test_language_with_phrasings_but_no_answer(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: waste-a
    questions:
      en: ['Where do I put glass?']
      fr: ['Où jeter le verre ?']
    answer:
      en: In the green container.
"""
        )
    )
    problems = check(kb_dir)
    assert found(problems) == [("missing-answer", "error", 6)]
    assert "`fr`" in problems[0].message


def test_language_with_an_answer_but_no_phrasings(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: waste-a
    questions:
      en: ['Where do I put glass?']
      fr: ['  ?  ']
    answer:
      en: In the green container.
      es: En el contenedor verde.
      fr: Dans le conteneur vert.
"""
        )
    )
    problems = check(kb_dir)
    assert found(problems) == [("empty-phrasing", "error", 6), ("missing-questions", "warning", 9),
                               ("missing-questions", "warning", 10)]
    assert "answer in `es` but no question in `es`" in problems[1].message
    assert "`fr`" in problems[2].message


def test_default_language_answer_needs_no_default_language_questions(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: waste-a
    questions:
      es: ['¿Dónde tiro el vidrio?']
    answer:
      en: In the green container.
      es: En el contenedor verde.
"""
        )
    )
    assert found(check(kb_dir)) == []


def test_entry_without_phrasing(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: waste-a
    answer: {en: A}
  - id: waste-b
    questions:
      en: []
    answer: {en: B}
  - id: waste-c
    questions:
      en:
        - ""
        - "?!"
    answer: {en: C}
"""
        )
    )
    assert found(check(kb_dir)) == [
        ("no-phrasing", "error", 3),
        ("no-phrasing", "error", 6),
        ("no-phrasing", "error", 10),
        ("empty-phrasing", "error", 12),
        ("empty-phrasing", "error", 13),
    ]


def test_same_phrasing_in_two_entries_after_normalisation(make_kb):
    kb_dir = make_kb(
        one_entry(
            """\
  - id: waste-a
    questions:
      en:
        - When is   my bin emptied?
    answer: {en: A}
  - id: waste-b
    questions:
      en:
        - "when is my BIN emptied ?!"
        - Something else
        - something else.
    answer: {en: B}
"""
        )
    )
    problems = check(kb_dir)
    assert found(problems) == [
        ("duplicate-phrasing", "error", 6),
        ("duplicate-phrasing", "error", 11),
        ("repeated-phrasing", "warning", 13),
    ]
    assert "`waste-b` (line 11)" in problems[0].message
    assert "`waste-a` (line 6)" in problems[1].message


def test_unknown_department(make_kb):
    kb_dir = make_kb(
        {
            "roads.yml": "department: roads\nentries:\n  - id: roads-a\n    questions: {en: [Q]}\n    answer: {en: A}\n",
            "waste.yml": "department: waste\nentries:\n  - id: waste-a\n    department: wastes\n"
            "    questions: {en: [R]}\n    answer: {en: B}\n",
        }
    )
    problems = check(kb_dir)
    assert [(p.code, p.file.rsplit("/", 1)[1], p.line) for p in problems] == [
        ("unknown-department", "roads.yml", 3),
        ("unknown-department", "waste.yml", 4),
    ]
    assert "known: parking, waste" in problems[0].message


@pytest.mark.parametrize(
    ("entry_id", "ok"),
    [
        ("waste-bulky-items", True),
        ("faq_2024", True),
        ("a1", True),
        ("9-lives", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("a", False),
        ("Waste-Bulky", False),
        ("-waste", False),
        ("_waste", False),
        ("waste bulky", False),
        ("waste/bulky", False),
        ("déchets", False),
    ],
)
def test_id_format(make_kb, entry_id, ok):
    kb_dir = make_kb(one_entry(f"  - id: '{entry_id}'\n    questions: {{en: [Q]}}\n    answer: {{en: A}}\n"))
    assert found(check(kb_dir)) == ([] if ok else [("bad-id", "error", 3)])


def test_missing_id(make_kb):
    kb_dir = make_kb(one_entry("  - questions: {en: [Q]}\n    answer: {en: A}\n"))
    assert found(check(kb_dir)) == [("missing-id", "error", 3)]


@pytest.mark.parametrize("lang", ["eng", "EN", "e1", "e", "en-GB", "en_gb"])
def test_unknown_language_codes(make_kb, lang):
    kb_dir = make_kb(
        one_entry(f"  - id: waste-a\n    questions:\n      en: [Q]\n      '{lang}': [R]\n    answer:\n      en: A\n      '{lang}': B\n")
    )
    assert found(check(kb_dir)) == [("bad-language", "error", 6)]


def test_any_two_letter_language_is_accepted(make_kb):
    kb_dir = make_kb(
        one_entry(
            "  - id: waste-a\n    questions:\n      en: [Q]\n      uk: [Питання]\n      sw: [Swali]\n"
            "    answer:\n      en: A\n      uk: Відповідь\n      sw: Jibu\n"
        )
    )
    assert check(kb_dir) == []


def test_default_language_must_be_a_code(make_kb):
    kb_dir = make_kb({}, departments="default_language: english\ndepartments:\n  - id: waste\n    name: Waste\n")
    assert found(check(kb_dir)) == [("bad-language", "error", None)]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example-city.gov/waste", True),
        ("http://example-city.gov", True),
        ("ftp://example-city.gov/file", False),
        ("javascript:alert(1)", False),
        ("www.example-city.gov", False),
        ("https://", False),
        ("https://example city.gov", False),
        ("", False),
    ],
)
def test_link_urls(make_kb, url, ok):
    kb_dir = make_kb(
        one_entry(
            "  - id: waste-a\n    questions: {en: [Q]}\n    answer: {en: A}\n"
            f"    links:\n      - title: More\n        url: '{url}'\n"
        )
    )
    assert found(check(kb_dir)) == ([] if ok else [("bad-url", "error", 8)])


def test_link_without_title(make_kb):
    kb_dir = make_kb(
        one_entry(
            "  - id: waste-a\n    questions: {en: [Q]}\n    answer: {en: A}\n"
            "    links:\n      - url: https://example-city.gov\n"
        )
    )
    assert found(check(kb_dir)) == [("bad-link", "error", 7)]


def test_last_reviewed_in_the_future_is_a_warning(make_kb):
    kb_dir = make_kb(
        one_entry(
            "  - id: waste-a\n    questions: {en: [Q]}\n    answer: {en: A}\n    last_reviewed: 2026-11-24\n"
            "  - id: waste-b\n    questions: {en: [R]}\n    answer: {en: B}\n    last_reviewed: 2026-11-23\n"
        )
    )
    assert found(check(kb_dir)) == [("future-last-reviewed", "warning", 6)]


def test_last_reviewed_that_is_not_a_date_is_a_warning():
    entry = Entry("waste-a", "waste", {"en": ["Q"]}, {"en": "A"}, line=3, source_file="waste.yml")
    kb = KnowledgeBase({"waste": Department("waste", "Waste")}, [replace(entry, last_reviewed="soon")])  # type: ignore[arg-type]
    assert found(validate(kb, today=TODAY)) == [("bad-last-reviewed", "warning", 3)]


def test_long_answer_is_a_warning(make_kb):
    kb_dir = make_kb(
        one_entry(
            "  - id: waste-a\n    questions: {en: [Q], de: [F]}\n    answer:\n"
            f"      en: {'x' * 1500}\n      de: {'y' * 1501}\n"
        )
    )
    problems = check(kb_dir)
    assert found(problems) == [("long-answer", "warning", 7)]
    assert "1501 characters" in problems[0].message


def test_braces_in_answers_are_errors(make_kb):
    kb_dir = make_kb(one_entry("  - id: waste-a\n    questions: {en: [Q]}\n    answer:\n      en: 'Use {name}'\n"))
    assert found(check(kb_dir)) == [("brace-in-answer", "error", 6)]


def test_department_rules(make_kb):
    kb_dir = make_kb(
        {},
        departments="""\
departments:
  - id: Waste Dept
    name: Waste
  - id: roads
    email: not-an-email
""",
    )
    assert found(check(kb_dir)) == [
        ("bad-id", "error", 2),
        ("bad-email", "warning", 4),
        ("missing-name", "error", 4),
    ]


def test_errors_and_warnings_are_sorted_by_file_and_line(make_kb):
    kb_dir = make_kb(
        {
            "b.yml": "department: waste\nentries:\n  - id: B\n    questions: {en: [Q]}\n    answer: {en: A}\n",
            "a.yml": "department: waste\nentries:\n  - id: ok-id\n    questions: {en: [R]}\n\n  - id: A\n    questions: {en: [S]}\n    answer: {en: A}\n",
        }
    )
    problems = check(kb_dir)
    assert [(p.file.rsplit("/", 1)[1], p.line) for p in problems] == [("a.yml", 3), ("a.yml", 6), ("b.yml", 3)]


def test_normalize_phrasing():
    assert normalize_phrasing("  When is\tmy  BIN emptied?!  ") == "when is my bin emptied"
    assert normalize_phrasing("Straße?") == normalize_phrasing("STRASSE")
    assert normalize_phrasing("Is it [free]?") == normalize_phrasing("is it (free)")
    assert normalize_phrasing("What's up...") == "what's up"
    assert normalize_phrasing("¿Qué?") == "¿qué"
    assert normalize_phrasing("?!") == ""


def test_is_valid_url():
    assert is_valid_url("https://example-city.gov/a?b=c#d")
    assert not is_valid_url("mailto:info@example-city.gov")
    assert not is_valid_url("http://[::1")


def test_check_kb_reports_an_unreadable_line_once(make_kb):
    kb_dir = make_kb(one_entry("  - id: waste-a\n    questions:\n      en:\n        - {nested: x}\n    answer: {en: A}\n"))
    _, problems = check_kb(kb_dir, today=TODAY)
    assert found(problems) == [("no-phrasing", "error", 4), ("wrong-type", "error", 6)]
