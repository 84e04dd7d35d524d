"""The per-language intent examples (knowledge_base/languages/<code>.yml) match the English intents."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.kb.loader import load_kb
from bot.kb.validate import normalize_phrasing
from bot.settings import PROJECT_ROOT

LANGUAGES = PROJECT_ROOT / "knowledge_base" / "languages"
SMALL_TALK = {"greet", "goodbye", "thanks"}


def english_intents() -> list[str]:
    text = (PROJECT_ROOT / "data" / "nlu" / "intents.yml").read_text(encoding="utf-8")
    return re.findall(r"^- intent: (\S+)$", text, re.MULTILINE)


@pytest.mark.parametrize("path", sorted(LANGUAGES.glob("*.yml")), ids=lambda p: p.name)
def test_examples_cover_every_intent_with_enough_distinct_texts(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["language"] == path.stem
    intents = data["intents"]
    assert sorted(intents) == sorted(english_intents())
    seen: set[str] = set()
    for intent, examples in intents.items():
        assert all(isinstance(e, str) and e.strip() for e in examples), intent  # "a: b" unquoted is a mapping
        assert len(examples) >= (12 if intent in SMALL_TALK else 30), intent
        keys = [normalize_phrasing(e) for e in examples]
        assert not seen & set(keys) and len(set(keys)) == len(keys), intent
        seen.update(keys)


def test_no_intent_example_is_also_a_kb_question():
    """A must-escalate example that is also an FAQ phrasing would teach both outcomes at once."""
    kb, _ = load_kb(PROJECT_ROOT / "knowledge_base")
    for path in sorted(LANGUAGES.glob("*.yml")):
        lang = path.stem
        questions = {normalize_phrasing(q) for e in kb.entries for q in e.questions.get(lang, [])}
        examples = yaml.safe_load(path.read_text(encoding="utf-8"))["intents"]
        clashes = [e for es in examples.values() for e in es if normalize_phrasing(e) in questions]
        assert clashes == [], lang
