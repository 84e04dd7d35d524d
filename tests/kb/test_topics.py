"""knowledge_base/topics.yml: read apart from the FAQ (no retraining), checked by `kb validate`."""

from __future__ import annotations

import shutil

from bot.kb.compile import kb_fingerprint
from bot.kb.loader import kb_files, load_kb
from bot.kb.topics import find_topic, load_topics, topics
from bot.kb.validate import check_kb
from bot.settings import PROJECT_ROOT

KB = PROJECT_ROOT / "knowledge_base"


def test_the_demo_topics_are_valid_and_found_by_their_words() -> None:
    found, problems = load_topics(KB)
    assert problems == [] and {t.id for t in found} >= {"waste", "taxes"}
    assert find_topic(KB, "  Bins ").id == "waste" and find_topic(KB, "Tax deadlines").id == "taxes"
    assert find_topic(KB, "parking") is None


def test_the_demo_topics_have_spanish_words_found_without_accents_or_case() -> None:
    assert find_topic(KB, "Basura").id == "waste" and find_topic(KB, "residuos").id == "waste"
    assert find_topic(KB, "tráfico").id == "roads" and find_topic(KB, "TRAFICO").id == "roads"
    assert find_topic(KB, "impuestos").id == "taxes" and find_topic(KB, "agua").id == "water"
    assert find_topic(KB, "cultura").id == "culture" and find_topic(KB, "piscinas") is None


def test_spanish_reserved_words_and_accent_duplicates_are_reported(tmp_path) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    shutil.copy(KB / "departments.yml", kb_dir / "departments.yml")
    (kb_dir / "topics.yml").write_text(
        "topics:\n"
        "  - id: todos\n    name: Everything\n"
        "  - id: roads\n    name: Roads\n    words: [tráfico, Todas]\n"
        "  - id: traffic\n    name: Traffic\n    words: [trafico]\n", "utf-8")
    found, problems = load_topics(kb_dir)
    codes = sorted(p.code for p in problems)
    assert codes == ["bad-topic-id", "duplicate-topic", "reserved-word"]
    assert [t.id for t in found] == ["roads", "traffic"]


def test_topics_are_not_faq_content(tmp_path) -> None:
    kb_dir = tmp_path / "kb"
    shutil.copytree(KB, kb_dir)
    before = kb_fingerprint(kb_dir)
    (kb_dir / "topics.yml").write_text("topics:\n  - id: news\n    name: City news\n", "utf-8")
    assert kb_fingerprint(kb_dir) == before  # a new topic never retrains the model
    assert "topics.yml" not in [p.name for p in kb_files(kb_dir)]
    assert load_kb(kb_dir)[1] == []
    assert [t.id for t in topics(kb_dir)] == ["news"]


def test_mistakes_are_reported_with_their_codes(tmp_path) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    shutil.copy(KB / "departments.yml", kb_dir / "departments.yml")
    (kb_dir / "topics.yml").write_text(
        "topics:\n"
        "  - id: Waste Bins\n    name: Bins\n"
        "  - id: waste\n    name: Waste\n    department: nowhere\n    colour: green\n"
        "  - id: bins\n    name: waste\n"
        "  - id: all\n    name: Everything\n"
        "  - id: roads\n", "utf-8")
    codes = sorted(p.code for p in check_kb(kb_dir)[1] if "topics.yml" in p.file)
    assert codes == ["bad-topic-id", "bad-topic-id", "duplicate-topic", "missing-field", "unknown-department",
                     "unknown-key"]
    (kb_dir / "topics.yml").write_text("topics: [unclosed\n", "utf-8")
    assert [p.code for p in load_topics(kb_dir)[1]] == ["yaml-syntax"]
    (kb_dir / "topics.yml").write_text("- id: waste\n", "utf-8")
    assert [p.code for p in load_topics(kb_dir)[1]] == ["topics-shape"]
