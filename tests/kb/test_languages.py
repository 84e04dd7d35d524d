"""knowledge_base/languages/<lang>.yml: read, checked, every mistake reported with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.languages import INTENTS, LanguageFileError, available_languages, load_language

FIXTURE_KB = Path(__file__).resolve().parents[1] / "nlu" / "fixtures" / "lexical_kb"


def _write(tmp_path: Path, language: str, text: str) -> Path:
    directory = tmp_path / "languages"
    directory.mkdir(exist_ok=True)
    (directory / f"{language}.yml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_fixture_reads_with_every_intent():
    found = load_language(FIXTURE_KB, "es")
    assert found.language == "es" and set(found.intents) == set(INTENTS)
    assert found.examples("greet") == ("hola", "buenos días")
    assert found.examples("nothing") == ()
    assert available_languages(FIXTURE_KB) == ["es"]


def test_a_missing_file_says_which_to_create(tmp_path):
    with pytest.raises(LanguageFileError, match="create fr.yml"):
        load_language(tmp_path, "fr")
    assert available_languages(tmp_path) == []


def test_every_mistake_is_reported_at_once(tmp_path):
    kb = _write(tmp_path, "es", "language: fr\nextra: 1\nintents:\n  complain:\n    - queja\n"
                                "  greet: hola\n  thanks:\n    - ''\n    - gracias\n")
    with pytest.raises(LanguageFileError) as raised:
        load_language(kb, "es")
    problems = "\n".join(raised.value.problems)
    assert "`language: fr` but the file is es.yml" in problems
    assert "line 2: unknown key `extra`" in problems
    assert "line 4: unknown intent `complain`" in problems
    assert "line 6: `greet` must be a list" in problems
    assert "line 8: an example of `thanks` must be a non-empty text" in problems
    assert str(raised.value).startswith(str(kb / "languages" / "es.yml"))


@pytest.mark.parametrize(("text", "message"), [
    ("intents: [", "not valid YAML"),
    ("- a list\n", "must start with `language:`"),
    ("language: es\n", "`intents:` must list"),
    ("language: es\nintents: {}\n", "gives no examples"),
    ("intents:\n  greet:\n    - hola\n", "`language:` is missing"),
])
def test_wrong_shapes_are_clear_errors(tmp_path, text, message):
    with pytest.raises(LanguageFileError, match=message):
        load_language(_write(tmp_path, "es", text), "es")


def test_duplicates_are_dropped_and_not_utf8_is_an_error(tmp_path):
    kb = _write(tmp_path, "es", "language: es\nintents:\n  greet:\n    - hola\n    - hola\n")
    assert load_language(kb, "es").examples("greet") == ("hola",)
    (tmp_path / "languages" / "es.yml").write_bytes(b"language: es\nintents:\n  greet:\n    - \xe1\n")
    with pytest.raises(LanguageFileError, match="UTF-8"):
        load_language(tmp_path, "es")
