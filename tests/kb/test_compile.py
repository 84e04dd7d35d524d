from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.kb.compile import KnowledgeBaseInvalid, compile_kb, kb_fingerprint, rasa_example, render_faq
from bot.kb.loader import load_kb
from bot.kb.schema import Department, Entry, KnowledgeBase, Link
from bot.settings import PROJECT_ROOT

from .conftest import FIXTURES

VALID = FIXTURES / "kb_valid"
RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"

TRICKY_PHRASINGS = [
    "Apply for a permit [resident](zone) now",
    'Is [this]{"entity": "x"} annotated?',
    "What about [a][b] and {braces} or (parens)?",
    "My path is C:\\users\\me and \\u00e9 stays",
    "- starts with a dash: and has # a hash",
    "Quotes ' and \" and emoji 🚮 and ünïcödé",
    "multi\nline\tphrasing   with  spaces",
    "yes",
    "null",
    "%percent & ampersand * star ! bang @ at | pipe > gt",
]

TRICKY_ANSWER = (
    "Line one: with a colon.\n"
    "# not a comment\n"
    "- not a list\n"
    "  indented line\n"
    "Trailing spaces here   \n"
    "\"quoted\" and 'single' and \\backslash\\ and 🚮"
)


def tricky_kb() -> KnowledgeBase:
    entries = [
        Entry(
            id="waste-tricky",
            department="waste",
            questions={"en": TRICKY_PHRASINGS, "de": ["Wie geht das [bitte]?"]},
            answer={"en": TRICKY_ANSWER, "de": "Eine Antwort.\nZweite Zeile."},
            links=(Link("Book: a pickup", "https://example-city.gov/a?b=c&d=e#f"),),
        ),
        Entry(id="waste-plain", department="waste", questions={"en": ["Plain question"]}, answer={"en": "Plain answer."}),
        Entry(
            id="waste-oneline",
            department="waste",
            questions={"en": ["When?"]},
            answer={"en": "yes"},
        ),
    ]
    return KnowledgeBase({"waste": Department("waste", "Waste")}, entries)


def test_generated_file_structure():
    kb, _ = load_kb(VALID)
    data = yaml.safe_load(render_faq(kb))
    assert data["version"] == "3.1"
    assert [item["intent"] for item in data["nlu"]] == [
        "faq/parking-bin-blocking",
        "faq/parking-resident-permit",
        "faq/waste-bin-day",
        "faq/waste-bulky-items",
    ]
    bulky = next(item for item in data["nlu"] if item["intent"] == "faq/waste-bulky-items")
    assert bulky["examples"] == (
        "- How do I get rid of an old sofa or other bulky items?\n"
        "- Is there a bulky waste pickup?\n"
        "- Wie werde ich ein altes Sofa los?\n"
    )
    assert data["responses"]["utter_faq/waste-bulky-items"] == [
        {
            "text": "Book a free bulky-waste pickup online.\n\nUp to three items per household and month.\n\n"
            "More information: Book a pickup: https://example-city.gov/waste/bulky"
        },
        {
            "text": "Buchen Sie online eine kostenlose Sperrmüllabholung.\n\n"
            "Weitere Informationen: Book a pickup: https://example-city.gov/waste/bulky",
            "condition": [{"type": "slot", "name": "language", "value": "de"}],
        },
    ]
    permit = data["responses"]["utter_faq/parking-resident-permit"]
    assert permit[0] == {"text": "Apply online with proof of address.\nThe permit costs 30 EUR per year."}
    assert permit[1]["condition"] == [{"type": "slot", "name": "language", "value": "fr"}]
    assert set(data["responses"]) == {f"utter_{item['intent']}" for item in data["nlu"]}


def test_header_says_generated_and_from_what():
    kb, _ = load_kb(VALID)
    text = render_faq(kb)
    header = text.split("version:")[0]
    assert header.startswith("# GENERATED FILE \u2014 do not edit")
    assert "departments.yml, parking.yml, waste.yml" in header
    assert str(VALID) not in text  # no machine-specific paths
    assert not text.isascii()  # see compile.py: keeps Rasa off its raw_unicode_escape path


def test_output_is_deterministic(tmp_path: Path):
    kb, _ = load_kb(VALID)
    first = render_faq(kb)
    shuffled_entries = list(kb.entries)
    random.Random(4).shuffle(shuffled_entries)
    shuffled = replace(
        kb,
        entries=[replace(e, questions=dict(reversed(list(e.questions.items())))) for e in shuffled_entries],
    )
    assert render_faq(shuffled) == first

    copy = tmp_path / "kb"
    shutil.copytree(VALID, copy)
    other, _ = load_kb(copy)
    assert render_faq(other) == first
    compile_kb(kb, tmp_path / "a.yml")
    compile_kb(other, tmp_path / "b.yml")
    assert (tmp_path / "a.yml").read_bytes() == (tmp_path / "b.yml").read_bytes()


def test_unchanged_output_is_not_rewritten(tmp_path: Path):
    kb, _ = load_kb(VALID)
    out = tmp_path / "data" / "nlu" / "faq.yml"
    assert compile_kb(kb, out) is True
    os.utime(out, (1_000_000, 1_000_000))
    assert compile_kb(kb, out) is False
    assert out.stat().st_mtime == 1_000_000
    changed = replace(kb, entries=kb.entries[1:])
    assert compile_kb(changed, out) is True


def test_compile_refuses_a_kb_with_errors(tmp_path: Path):
    kb, _ = load_kb(VALID)
    broken = replace(kb, entries=[*kb.entries, kb.entries[0]])
    with pytest.raises(KnowledgeBaseInvalid) as info:
        compile_kb(broken, tmp_path / "faq.yml")
    assert {p.code for p in info.value.problems if p.is_error} >= {"duplicate-id"}
    assert not (tmp_path / "faq.yml").exists()


def test_examples_cannot_become_entity_annotations():
    assert rasa_example("Parking [resident](zone)") == "Parking (resident)(zone)"
    assert rasa_example('[a]{"entity": "b"} [c][d]') == '(a){"entity": "b"} (c)(d)'
    assert rasa_example("  two\nlines\t here ") == "two lines here"
    for phrasing in TRICKY_PHRASINGS:
        assert "[" not in rasa_example(phrasing) and "]" not in rasa_example(phrasing)


def test_tricky_text_survives_yaml():
    text = render_faq(tricky_kb())
    data = yaml.safe_load(text)
    examples = next(i for i in data["nlu"] if i["intent"] == "faq/waste-tricky")["examples"]
    assert examples.splitlines() == [f"- {rasa_example(p)}" for p in [*TRICKY_PHRASINGS, "Wie geht das [bitte]?"]]
    response = data["responses"]["utter_faq/waste-tricky"]
    answer = TRICKY_ANSWER.replace("here   \n", "here\n")  # trailing spaces are dropped
    assert response[0]["text"] == answer + "\n\nMore information: Book: a pickup: https://example-city.gov/a?b=c&d=e#f"
    assert data["responses"]["utter_faq/waste-oneline"] == [{"text": "yes"}]


def test_fingerprint(tmp_path: Path):
    copy = tmp_path / "kb"
    shutil.copytree(VALID, copy)
    first = kb_fingerprint(copy)
    assert first == kb_fingerprint(VALID)
    assert len(first) == 64 and int(first, 16) >= 0

    (copy / ".waste.yml.swp").write_text("editor junk", encoding="utf-8")
    (copy / "notes.txt").write_text("not KB", encoding="utf-8")
    assert kb_fingerprint(copy) == first

    waste = copy / "waste.yml"
    waste.write_text(waste.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    second = kb_fingerprint(copy)
    assert second != first

    waste.rename(copy / "waste-collection.yml")
    assert kb_fingerprint(copy) != second


# -- the real thing: Rasa 3.6's own loader, in the Rasa environment -------------------------

_RASA_LOAD = textwrap.dedent(
    """
    import json, logging, sys, warnings
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
    path = sys.argv[1]
    assert RasaYAMLReader.is_yaml_nlu_file(path)
    data = load_data(path)
    print(json.dumps({
        "examples": [
            {"text": m.get("text"), "intent": m.get("intent"), "key": m.get("intent_response_key"),
             "entities": m.get("entities") or []}
            for m in data.training_examples
        ],
        "responses": data.responses,
        "retrieval_intents": sorted(data.retrieval_intents),
    }))
    """
)


def load_with_rasa(path: Path) -> dict:
    if not RASA_PYTHON.exists():
        pytest.fail(f"the Rasa environment is missing: {RASA_PYTHON}")
    result = subprocess.run(
        [str(RASA_PYTHON), "-c", _RASA_LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=path.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_rasa_loads_the_compiled_file(tmp_path: Path):
    kb, _ = load_kb(VALID)
    tricky = tricky_kb()
    combined = replace(
        kb,
        entries=[*kb.entries, *tricky.entries],
        departments={**kb.departments, **tricky.departments},
    )
    out = tmp_path / "faq.yml"
    compile_kb(combined, out)

    loaded = load_with_rasa(out)
    assert loaded["retrieval_intents"] == ["faq"]
    assert all(example["entities"] == [] for example in loaded["examples"]), loaded["examples"]
    by_key: dict[str, list[str]] = {}
    for example in loaded["examples"]:
        assert example["intent"] == "faq"
        by_key.setdefault(example["key"], []).append(example["text"])
    assert set(by_key) == {f"faq/{e.id}" for e in combined.entries}
    assert by_key["faq/waste-tricky"] == [rasa_example(p) for p in [*TRICKY_PHRASINGS, "Wie geht das [bitte]?"]]
    assert "My path is C:\\users\\me and \\u00e9 stays" in by_key["faq/waste-tricky"]
    assert by_key["faq/parking-resident-permit"][1] == "Parking permit (resident)(zone) application"

    responses = loaded["responses"]
    assert set(responses) == {f"utter_faq/{e.id}" for e in combined.entries}
    tricky_response = responses["utter_faq/waste-tricky"]
    assert tricky_response[0]["text"].startswith(TRICKY_ANSWER.replace("here   \n", "here\n"))
    assert "condition" not in tricky_response[0]
    assert tricky_response[1]["condition"] == [{"type": "slot", "name": "language", "value": "de"}]
    assert responses["utter_faq/waste-oneline"] == [{"text": "yes"}]
