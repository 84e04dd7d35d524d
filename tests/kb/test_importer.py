from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.kb.importer import import_file, import_rows, merge_kb, read_rows
from bot.kb.loader import load_kb
from bot.kb.schema import Link
from bot.kb.validate import validate
from bot.kb.writer import write_kb

from .conftest import FIXTURES

IMPORTS = FIXTURES / "import"


def found(problems):
    return [(p.code, p.severity, p.line) for p in problems]


def test_csv_with_bom_crlf_multiline_and_blank_lines():
    kb, problems = import_rows(IMPORTS / "faq.csv")
    assert problems == []
    assert [e.id for e in kb.entries] == ["waste-bulky-items", "parking-permit"]
    bulky = kb.entry("waste-bulky-items")
    assert bulky.department == "waste"
    assert bulky.questions == {
        "en": ["How do I get rid of an old sofa?", "Is there a bulky waste pickup?"],
        "de": ["Wie werde ich ein altes Sofa los?"],
    }
    assert bulky.answer == {"en": "Book a free pickup online.\n\nUp to three items.", "de": "Buchen Sie eine kostenlose Abholung."}
    assert bulky.links == (Link("Book a pickup", "https://example-city.gov/waste/bulky"),)
    assert bulky.last_reviewed == date(2026, 9, 15)
    # Rows point at the line they start on, counting the lines inside the quoted answer.
    assert bulky.line == 2
    assert bulky.line_of("questions.en.1") == 5
    assert bulky.line_of("questions.de.0") == 7
    permit = kb.entry("parking-permit")
    assert permit.questions["en"][0] == "How do I get a permit, as a resident?"
    assert permit.last_reviewed == date(2026, 1, 10)
    assert list(kb.departments) == ["waste", "parking"]
    assert kb.departments["waste"].name == "Waste"


def test_csv_and_jsonl_give_the_same_kb():
    from_csv, _ = import_rows(IMPORTS / "faq.csv")
    from_jsonl, problems = import_rows(IMPORTS / "faq.jsonl")
    assert problems == []
    assert from_jsonl == from_csv
    assert from_jsonl.entry("waste-bulky-items").line_of("questions.de.0") == 4


def test_rows_with_missing_fields_and_conflicts_are_reported_with_lines():
    kb, problems = import_rows(IMPORTS / "broken.csv")
    assert found(problems) == [
        ("missing-field", "error", 3),
        ("missing-field", "error", 4),
        ("missing-field", "error", 7),
        ("conflicting-answer", "error", 8),
        ("missing-answer", "error", 9),
    ]
    assert "no id" in problems[0].message
    assert "no question" in problems[1].message
    assert "no department" in problems[2].message
    assert "line 2" in problems[3].message
    # The multi-line question (lines 5-6) became one line; the first answer was kept.
    assert kb.entry("b-entry").questions == {"en": ["A multi line question?"]}
    assert kb.entry("a-entry").answer == {"en": "First answer"}
    assert kb.entry("a-entry").questions == {"en": ["First question", "Second question"]}


def test_answer_only_on_first_row_or_repeated(tmp_path: Path):
    source = tmp_path / "faq.csv"
    source.write_text(
        "id,department,language,question,answer\n"
        "a-one,waste,en,Q1,The answer.\n"
        "a-one,waste,en,Q2,\n"
        "a-one,waste,en,Q3,  The   answer. \n",
        encoding="utf-8",
    )
    kb, problems = import_rows(source)
    assert problems == []
    assert kb.entry("a-one").answer == {"en": "The answer."}


def test_department_may_be_left_out_after_the_first_row(tmp_path: Path):
    source = tmp_path / "faq.csv"
    source.write_text(
        "id,department,language,question,answer\na-one,waste,en,Q1,A\na-one,,en,Q2,\na-one,parking,en,Q3,\n",
        encoding="utf-8",
    )
    kb, problems = import_rows(source)
    assert found(problems) == [("conflicting-department", "error", 4)]
    assert kb.entry("a-one").questions == {"en": ["Q1", "Q2"]}


def test_semicolon_separated_excel_export_and_header_case(tmp_path: Path):
    source = tmp_path / "faq.csv"
    source.write_bytes(
        "\ufeffID;Department;Language;Question;Answer;Link URL\r\n"
        "a-one;waste;EN;Wo ist das Amt?;Am Markt, Zimmer 3.;https://example-city.gov\r\n".encode()
    )
    kb, problems = import_rows(source)
    assert found(problems) == []
    entry = kb.entry("a-one")
    assert entry.questions == {"en": ["Wo ist das Amt?"]}
    assert entry.answer == {"en": "Am Markt, Zimmer 3."}
    assert entry.links == (Link("", "https://example-city.gov"),)
    # A link without a title is caught by validation, pointing at the row.
    assert found(validate(kb)) == [("bad-link", "error", 2)]


def test_csv_problems(tmp_path: Path):
    source = tmp_path / "faq.csv"
    source.write_text("id,department,question\n", encoding="utf-8")
    _, problems = import_rows(source)
    assert found(problems) == [("missing-column", "error", 1)]
    assert "language, answer" in problems[0].message

    source.write_text(
        "id,department,language,question,answer,notes\na-one,waste,en,Q,A, B,extra\na-two,waste,en,R,B,x\n",
        encoding="utf-8",
    )
    kb, problems = import_rows(source)
    assert found(problems) == [("unknown-column", "warning", 1), ("extra-values", "error", 2)]
    assert [e.id for e in kb.entries] == ["a-two"]

    source.write_bytes(b"id,department,language,question,answer\na-one,waste,en,Caf\xe9,A\n")
    _, problems = import_rows(source)
    assert found(problems) == [("encoding", "error", 2)]

    source.write_text("", encoding="utf-8")
    _, problems = import_rows(source)
    assert found(problems) == [("missing-column", "error", None)]


def test_jsonl_problems(tmp_path: Path):
    source = tmp_path / "faq.jsonl"
    source.write_text(
        '{"id": "a-one", "department": "waste", "language": "en", "question": "Q", "answer": "A"}\n'
        "\n"
        "{not json}\n"
        '["a", "list"]\n'
        '{"id": "a-two", "department": "waste", "language": "en", "question": ["x"], "answer": null}\n'
        '{"id": 42, "department": "waste", "language": "en", "question": "Number id", "answer": "B"}\n',
        encoding="utf-8",
    )
    rows, problems = read_rows(source)
    assert found(problems) == [("bad-json", "error", 3), ("bad-json", "error", 4), ("bad-json", "error", 5)]
    assert [r.id for r in rows] == ["a-one", "a-two", "42"]
    _, problems = import_rows(source)
    assert ("missing-field", "error", 5) in found(problems)


def test_unknown_extension_needs_a_format(tmp_path: Path):
    source = tmp_path / "faq.xlsx"
    source.write_text("x", encoding="utf-8")
    _, problems = import_rows(source)
    assert found(problems) == [("unknown-format", "error", None)]
    shutil.copy(IMPORTS / "faq.csv", tmp_path / "faq.export")
    kb, problems = import_rows(tmp_path / "faq.export", fmt="csv")
    assert problems == [] and len(kb.entries) == 2


@pytest.mark.parametrize("name", ["faq.csv", "faq.jsonl"])
def test_round_trip_import_write_load(tmp_path: Path, name: str):
    imported, problems = import_rows(IMPORTS / name)
    assert problems == []
    out = tmp_path / "kb"
    written = write_kb(imported, out, department_names={"waste": "Waste collection"})
    assert sorted(p.name for p in written) == ["departments.yml", "parking.yml", "waste.yml"]
    loaded, load_problems = load_kb(out)
    assert load_problems == []
    assert validate(loaded) == []
    # Same entries; the order is by file (department) now, within a file the import's order.
    by_id = lambda kb: sorted(kb.entries, key=lambda e: e.id)  # noqa: E731
    assert by_id(loaded) == by_id(imported)
    assert loaded.default_language == imported.default_language
    assert loaded.departments["waste"].name == "Waste collection"
    assert loaded.departments["parking"].name == "Parking"


def test_written_files_are_human_friendly_and_stable(tmp_path: Path):
    imported, _ = import_rows(IMPORTS / "faq.csv")
    write_kb(imported, tmp_path / "one")
    write_kb(imported, tmp_path / "two")
    text = (tmp_path / "one" / "waste.yml").read_text(encoding="utf-8")
    assert (tmp_path / "two" / "waste.yml").read_text(encoding="utf-8") == text
    assert text == (
        "# Waste: questions citizens ask and the city's answers.\n"
        "# Format and rules: docs/knowledge-base.md. Check with: python -m bot kb validate\n"
        "department: waste\n"
        "entries:\n"
        "  - id: waste-bulky-items\n"
        "    questions:\n"
        "      en:\n"
        "        - How do I get rid of an old sofa?\n"
        "        - Is there a bulky waste pickup?\n"
        "      de:\n"
        "        - Wie werde ich ein altes Sofa los?\n"
        "    answer:\n"
        "      en: |\n"
        "        Book a free pickup online.\n"
        "\n"
        "        Up to three items.\n"
        "      de: |\n"
        "        Buchen Sie eine kostenlose Abholung.\n"
        "    links:\n"
        "      - title: Book a pickup\n"
        "        url: https://example-city.gov/waste/bulky\n"
        "    last_reviewed: 2026-09-15\n"
    )
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text)["department"] == "waste"


def test_entries_are_separated_by_blank_lines_and_unicode_is_kept(tmp_path: Path):
    source = tmp_path / "faq.jsonl"
    rows = [
        {"id": "a-one", "department": "waste", "language": "fr", "question": "Où est la déchèterie ?", "answer": "Au port."},
        {"id": "a-two", "department": "waste", "language": "fr", "question": "Horaires : « samedi » ?", "answer": "9–12 h"},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    imported, problems = import_rows(source, default_language="fr")
    assert problems == []
    write_kb(imported, tmp_path / "kb")
    text = (tmp_path / "kb" / "waste.yml").read_text(encoding="utf-8")
    assert "Où est la déchèterie ?" in text
    assert "\n\n  - id: a-two\n" in text
    loaded, _ = load_kb(tmp_path / "kb")
    assert loaded.entries == imported.entries
    assert loaded.default_language == "fr"


def test_import_refuses_a_folder_that_holds_a_kb(tmp_path: Path):
    out = tmp_path / "kb"
    shutil.copytree(FIXTURES / "kb_valid", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written, problems = import_file(IMPORTS / "faq.csv", out)
    assert written == []
    assert found(problems) == [("not-empty", "error", None)]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x", encoding="utf-8")
    written, problems = import_file(IMPORTS / "faq.csv", other)
    assert written == [] and found(problems) == [("not-empty", "error", None)]


def test_import_into_new_folder(tmp_path: Path):
    written, problems = import_file(IMPORTS / "faq.csv", tmp_path / "new" / "kb")
    assert problems == []
    assert [p.name for p in written] == ["departments.yml", "parking.yml", "waste.yml"]


def test_import_writes_nothing_when_there_are_errors(tmp_path: Path):
    written, problems = import_file(IMPORTS / "broken.csv", tmp_path / "kb")
    assert written == []
    assert any(p.is_error for p in problems)
    assert not (tmp_path / "kb").exists() or not any((tmp_path / "kb").iterdir())


def test_merge_adds_and_updates_by_id_per_language(tmp_path: Path):
    out = tmp_path / "kb"
    shutil.copytree(FIXTURES / "kb_valid", out)
    (out / "parking.yml").write_text(
        "# Hand-written comment that must survive.\n" + (out / "parking.yml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    parking_before = (out / "parking.yml").read_bytes()
    source = tmp_path / "update.csv"
    source.write_text(
        "id,department,language,question,answer,last_reviewed\n"
        "waste-bulky-items,waste,en,Can you collect my old fridge?,Book a pickup; fridges are collected too.,2026-11-01\n"
        "waste-glass,waste,en,Where do I put glass bottles?,In the green containers.,\n"
        "roads-pothole,roads,en,There is a pothole in my street,Report it online.,\n",
        encoding="utf-8",
    )
    written, problems = import_file(source, out, merge=True, department_names={"roads": "Roads and streets"})
    assert [p for p in problems if p.is_error] == []
    assert sorted(p.name for p in written) == ["departments.yml", "roads.yml", "waste.yml"]
    assert (out / "parking.yml").read_bytes() == parking_before

    kb, load_problems = load_kb(out)
    assert load_problems == []
    bulky = kb.entry("waste-bulky-items")
    assert bulky.questions["en"] == ["Can you collect my old fridge?"]
    assert bulky.answer["en"] == "Book a pickup; fridges are collected too."
    # German was not in the import, so it is kept; links too.
    assert bulky.questions["de"] == ["Wie werde ich ein altes Sofa los?"]
    assert bulky.answer["de"].startswith("Buchen Sie")
    assert bulky.links[0].url == "https://example-city.gov/waste/bulky"
    assert bulky.last_reviewed == date(2026, 11, 1)
    # Updated entries stay in place, new ones are appended to their department's file.
    waste_ids = [e.id for e in kb.entries if e.source_file.endswith("waste.yml")]
    assert waste_ids == ["waste-bulky-items", "waste-bin-day", "parking-bin-blocking", "waste-glass"]
    assert kb.entry("parking-bin-blocking").department == "parking"
    assert kb.entry("roads-pothole").source_file.endswith("roads.yml")
    assert kb.departments["roads"].name == "Roads and streets"
    assert kb.departments["waste"].email == "waste@example-city.gov"

    # Merging the same file again changes nothing.
    written, _ = import_file(source, out, merge=True)
    assert written == []


def test_merge_refuses_when_the_merged_kb_has_errors(tmp_path: Path):
    out = tmp_path / "kb"
    shutil.copytree(FIXTURES / "kb_valid", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    source = tmp_path / "dup.csv"
    source.write_text(
        "id,department,language,question,answer\nwaste-new,waste,en,When is my bin emptied?,Mondays.\n",
        encoding="utf-8",
    )
    written, problems = import_file(source, out, merge=True)
    assert written == []
    dup = [p for p in problems if p.code == "duplicate-phrasing"]
    assert {Path(p.file).name for p in dup} == {"waste.yml", "dup.csv"}
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_merge_refuses_when_existing_kb_cannot_be_read(tmp_path: Path):
    out = tmp_path / "kb"
    shutil.copytree(FIXTURES / "kb_valid", out)
    (out / "waste.yml").write_text("department: waste\nentries: [\n", encoding="utf-8")
    written, problems = import_file(IMPORTS / "faq.csv", out, merge=True)
    assert written == []
    assert "yaml-syntax" in [p.code for p in problems]


def test_merge_kb_moves_department_without_moving_file():
    base, _ = load_kb(FIXTURES / "kb_valid")
    incoming, _ = import_rows(IMPORTS / "faq.csv")
    moved = incoming.entries[0].__class__(
        id="waste-bin-day", department="parking", questions={"en": ["Bin day?"]}, answer={"en": "Monday."}
    )
    merged = merge_kb(base, type(incoming)(incoming.departments, [moved]))
    entry = merged.entry("waste-bin-day")
    assert entry.department == "parking"
    assert entry.source_file.endswith("waste.yml")
    assert [e.id for e in merged.entries] == [e.id for e in base.entries]


def test_jsonl_lines_split_only_on_newlines(tmp_path: Path):
    source = tmp_path / "faq.jsonl"
    row = {"id": "a-one", "department": "waste", "language": "en", "question": "Q", "answer": "One\u2028two"}
    source.write_text(json.dumps(row, ensure_ascii=False) + "\r\n", encoding="utf-8")
    kb, problems = import_rows(source)
    assert problems == []
    assert kb.entry("a-one").answer["en"] == "One\u2028two"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('a-one,waste,en,Q,A\na-two,waste,en,R,"never closed\na-three,waste,en,S,B\n', 3),
        ('a-one,waste,en,Q,"quoted"text\n', 2),
    ],
)
def test_broken_quoting_is_reported_at_the_row(tmp_path: Path, body: str, line: int):
    source = tmp_path / "faq.csv"
    source.write_text("id,department,language,question,answer\n" + body, encoding="utf-8")
    _, problems = import_rows(source)
    assert ("csv-syntax", "error", line) in found(problems)
