from __future__ import annotations

from datetime import date
from pathlib import Path

from bot.kb.loader import kb_files, load_kb
from bot.kb.schema import Link

from .conftest import FIXTURES

VALID = FIXTURES / "kb_valid"


def codes(problems):
    return [p.code for p in problems]


def test_valid_fixture_loads_without_problems():
    kb, problems = load_kb(VALID)
    assert problems == []
    assert kb.default_language == "en"
    assert list(kb.departments) == ["waste", "parking"]
    assert kb.departments["waste"].email == "waste@example-city.gov"
    # departments.yml first, then files sorted by name, entries in file order.
    assert [e.id for e in kb.entries] == [
        "parking-resident-permit",
        "waste-bulky-items",
        "waste-bin-day",
        "parking-bin-blocking",
    ]


def test_entry_content():
    kb, _ = load_kb(VALID)
    entry = kb.entry("waste-bulky-items")
    assert entry.department == "waste"
    assert entry.questions["en"] == [
        "How do I get rid of an old sofa or other bulky items?",
        "Is there a bulky waste pickup?",
    ]
    assert entry.answer["en"] == "Book a free bulky-waste pickup online.\n\nUp to three items per household and month."
    assert entry.answer["de"].startswith("Buchen Sie")
    assert entry.links == (Link("Book a pickup", "https://example-city.gov/waste/bulky"),)
    assert entry.last_reviewed == date(2026, 9, 15)
    assert entry.source_file == str(VALID / "waste.yml")


def test_line_numbers_of_entries_phrasings_and_answers():
    kb, _ = load_kb(VALID)
    entry = kb.entry("waste-bulky-items")
    assert entry.line == 3
    assert entry.line_of("id") == 3
    assert entry.line_of("questions.en.0") == 6
    assert entry.line_of("questions.en.1") == 7
    assert entry.line_of("questions.de.0") == 9
    assert entry.line_of("answer.en") == 11
    assert entry.line_of("answer.de") == 15
    assert entry.line_of("links.0.url") == 19
    assert entry.line_of("last_reviewed") == 20
    assert kb.entry("waste-bin-day").line == 22
    assert kb.departments["parking"].line == 8
    # Flow-style list items keep their own line too.
    assert kb.entry("parking-resident-permit").line_of("questions.en.1") == 7


def test_unknown_path_falls_back_to_entry_line():
    kb, _ = load_kb(VALID)
    entry = kb.entry("waste-bin-day")
    assert entry.line_of("last_reviewed") == entry.line


def test_entry_department_overrides_file_department():
    kb, _ = load_kb(VALID)
    assert kb.entry("parking-bin-blocking").department == "parking"
    assert kb.entry("parking-bin-blocking").source_file.endswith("waste.yml")
    assert kb.file_departments[str(VALID / "waste.yml")] == "waste"


def test_missing_file_department_defaults_to_file_name(make_kb):
    kb_dir = make_kb({"waste.yml": "entries:\n  - id: a-b\n    questions: {en: [Q]}\n    answer: {en: A}\n"})
    kb, problems = load_kb(kb_dir)
    assert problems == []
    assert kb.entry("a-b").department == "waste"


def test_loading_is_deterministic(tmp_path):
    first, _ = load_kb(VALID)
    second, _ = load_kb(VALID)
    assert first == second
    assert [p.name for p in kb_files(VALID)] == ["departments.yml", "parking.yml", "waste.yml"]


def test_hidden_and_underscore_files_are_ignored(make_kb):
    kb_dir = make_kb({"_draft.yml": "department: waste\nentries: [oops", ".waste.yml.swp.yml": "x: ["})
    kb, problems = load_kb(kb_dir)
    assert problems == []
    assert kb.entries == []


def test_the_languages_folder_is_not_a_department_file(make_kb):
    """knowledge_base/languages/<code>.yml holds intent examples, not FAQ entries: no loader reads it as one."""
    from bot.kb.compile import kb_fingerprint
    from bot.kb.validate import check_kb

    kb_dir = make_kb({"waste.yml": "department: waste\nentries:\n  - id: waste-a\n    questions: {en: [Q]}\n"
                                   "    answer: {en: A}\n"})
    before = kb_fingerprint(kb_dir)
    (kb_dir / "languages").mkdir()
    (kb_dir / "languages" / "es.yml").write_text("language: es\nintents:\n  greet: [hola]\n", encoding="utf-8")
    assert [p.name for p in kb_files(kb_dir)] == ["departments.yml", "waste.yml"]
    kb, problems = check_kb(kb_dir)
    assert problems == []
    assert [e.id for e in kb.entries] == ["waste-a"]
    assert kb_fingerprint(kb_dir) == before


def test_the_project_kb_reads_its_spanish_examples_as_no_entries():
    from bot.settings import PROJECT_ROOT

    kb_dir = PROJECT_ROOT / "knowledge_base"
    assert (kb_dir / "languages" / "es.yml").is_file()
    assert all(path.parent == kb_dir for path in kb_files(kb_dir))
    kb, problems = load_kb(kb_dir)
    assert problems == []
    assert not any("languages" in Path(e.source_file).parts for e in kb.entries)


def test_broken_yaml_is_a_problem_with_its_line(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: waste-a
                    questions:
                      en:
                        - "unterminated
                    answer:
                      en: A
                """,
            "parking.yml": "department: parking\nentries:\n  - id: parking-a\n    questions: {en: [Q]}\n    answer: {en: A}\n",
        }
    )
    kb, problems = load_kb(kb_dir)
    assert codes(problems) == ["yaml-syntax"]
    assert problems[0].file == str(kb_dir / "waste.yml")
    assert problems[0].line is not None and 6 <= problems[0].line <= 9
    assert problems[0].severity == "error"
    # The other files still load.
    assert [e.id for e in kb.entries] == ["parking-a"]


def test_tab_indentation_reports_the_line(make_kb):
    kb_dir = make_kb({"waste.yml": "department: waste\nentries:\n\t- id: x\n"})
    _, problems = load_kb(kb_dir)
    assert [(p.code, p.line) for p in problems] == [("yaml-syntax", 3)]


def test_not_utf8_is_a_problem(make_kb):
    kb_dir = make_kb({})
    (kb_dir / "waste.yml").write_bytes(b"department: waste\nentries:\n  - id: caf\xe9\n")
    _, problems = load_kb(kb_dir)
    assert [(p.code, p.line) for p in problems] == [("encoding", 3)]


def test_utf8_bom_is_accepted(make_kb):
    kb_dir = make_kb({})
    (kb_dir / "waste.yml").write_bytes(
        "\ufeffdepartment: waste\nentries:\n  - id: waste-a\n    questions: {en: ['Où ?']}\n    answer: {en: Là}\n".encode()
    )
    kb, problems = load_kb(kb_dir)
    assert problems == []
    assert kb.entry("waste-a").questions == {"en": ["Où ?"]}


def test_scalars_are_read_as_typed_text(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: 2024-fees
                    questions:
                      en:
                        - yes
                        - 12
                      no:
                        - Hva koster det?
                    answer:
                      en: 'on'
                      no: Det koster 12 kr.
                """
        }
    )
    kb, problems = load_kb(kb_dir)
    assert problems == []
    entry = kb.entry("2024-fees")
    assert entry.questions == {"en": ["yes", "12"], "no": ["Hva koster det?"]}
    assert entry.answer == {"en": "on", "no": "Det koster 12 kr."}


def test_duplicate_and_unknown_keys(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: waste-a
                    question:
                      en: [Q]
                    answer:
                      en: First
                    answer:
                      en: Second
                """
        }
    )
    kb, problems = load_kb(kb_dir)
    by_code = {p.code: p for p in problems}
    assert by_code["unknown-key"].line == 4
    assert "did you mean `questions`" in by_code["unknown-key"].message
    assert by_code["unknown-key"].severity == "warning"
    assert by_code["duplicate-key"].line == 8
    assert by_code["duplicate-key"].severity == "error"
    assert kb.entry("waste-a").answer == {"en": "First"}


def test_wrong_shapes_become_problems(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - just a string
                  - id: waste-a
                    questions:
                      en:
                        - {nested: mapping}
                    answer:
                      en: [a, list]
                    links: https://example-city.gov
                """
        }
    )
    kb, problems = load_kb(kb_dir)
    assert [(p.code, p.line) for p in problems] == [
        ("wrong-type", 3),
        ("wrong-type", 7),
        ("wrong-type", 9),
        ("wrong-type", 10),
    ]
    entry = kb.entry("waste-a")
    assert entry.questions == {"en": [""]}
    assert entry.answer == {"en": ""}


def test_values_without_language_are_read_as_default_language(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: waste-a
                    questions:
                      - Where is the recycling centre?
                    answer: At the harbour.
                """
        }
    )
    kb, problems = load_kb(kb_dir)
    assert [(p.code, p.severity, p.line) for p in problems] == [
        ("no-language", "warning", 5),
        ("no-language", "warning", 6),
    ]
    entry = kb.entry("waste-a")
    assert entry.questions == {"en": ["Where is the recycling centre?"]}
    assert entry.answer == {"en": "At the harbour."}


def test_bad_last_reviewed_is_a_warning(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: waste-a
                    questions: {en: [Q]}
                    answer: {en: A}
                    last_reviewed: 2026-13-45
                  - id: waste-b
                    questions: {en: [R]}
                    answer: {en: B}
                    last_reviewed: last spring
                """
        }
    )
    kb, problems = load_kb(kb_dir)
    assert [(p.code, p.severity, p.line) for p in problems] == [
        ("bad-last-reviewed", "warning", 6),
        ("bad-last-reviewed", "warning", 10),
    ]
    assert kb.entry("waste-a").last_reviewed is None


def test_missing_departments_file_and_folder(tmp_path: Path, make_kb):
    kb_dir = make_kb({}, departments=None)
    kb, problems = load_kb(kb_dir)
    assert codes(problems) == ["missing-departments"]
    assert problems[0].line is None

    kb, problems = load_kb(tmp_path / "nowhere")
    assert codes(problems) == ["missing-kb"]
    assert kb.entries == []


def test_departments_problems(make_kb):
    kb_dir = make_kb(
        {},
        departments="""\
default_language: de
departments:
  - id: waste
    name: Abfall
  - id: waste
    name: Again
  - id: roads
    name: Straßen
    colour: blue
""",
    )
    kb, problems = load_kb(kb_dir)
    assert [(p.code, p.line) for p in problems] == [("duplicate-department", 5), ("unknown-key", 9)]
    assert kb.default_language == "de"
    assert list(kb.departments) == ["waste", "roads"]
    assert kb.departments["waste"].name == "Abfall"


def test_empty_file_is_a_warning(make_kb):
    kb_dir = make_kb({"waste.yml": "# nothing yet\n"})
    _, problems = load_kb(kb_dir)
    assert [(p.code, p.severity) for p in problems] == [("empty-file", "warning")]


def test_aliases_are_refused(make_kb):
    kb_dir = make_kb(
        {
            "waste.yml": """\
                department: waste
                entries:
                  - id: waste-a
                    questions: {en: [Q]}
                    answer: &shared {en: A}
                  - id: waste-b
                    questions: {en: [R]}
                    answer: *shared
                """
        }
    )
    _, problems = load_kb(kb_dir)
    assert [(p.code, p.line) for p in problems] == [("yaml-syntax", 8)]
    assert "aliases" in problems[0].message
