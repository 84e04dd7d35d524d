"""The staff guide must explain every problem code the tooling can report."""

from __future__ import annotations

import ast
import re

from bot.settings import PROJECT_ROOT

# Problem codes are kebab-case string literals; these kebab-case literals are not codes.
_NOT_CODES = {"utf-8", "utf-8-sig", "kb-compile"}
_SINGLE_WORD_CODES = {"encoding"}
_KEBAB = re.compile(r"[a-z]+(?:-[a-z0-9]+)+")


def problem_codes() -> set[str]:
    codes = set(_SINGLE_WORD_CODES)
    for path in (PROJECT_ROOT / "bot" / "kb").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _KEBAB.fullmatch(node.value):
                codes.add(node.value)
    return codes - _NOT_CODES


def test_every_problem_code_is_documented():
    codes = problem_codes()
    assert {"duplicate-id", "yaml-syntax", "conflicting-answer", "future-last-reviewed"} <= codes
    guide = (PROJECT_ROOT / "docs" / "knowledge-base.md").read_text(encoding="utf-8")
    missing = sorted(code for code in codes if f"| `{code}` |" not in guide)
    assert missing == []


def _blocks(language: str) -> list[str]:
    guide = (PROJECT_ROOT / "docs" / "knowledge-base.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", guide, re.S)


def test_guide_examples_are_valid(tmp_path):
    from bot.kb.importer import import_rows
    from bot.kb.loader import load_kb
    from bot.kb.validate import validate

    departments, waste = _blocks("yaml")[:2]
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "departments.yml").write_text(departments, encoding="utf-8")
    (kb_dir / "waste.yml").write_text(waste, encoding="utf-8")
    kb, problems = load_kb(kb_dir)
    assert problems == []
    assert validate(kb) == []
    assert kb.entry("parking-car-blocking-bins").department == "parking"
    assert "Mattress: where can I throw it away?" in kb.entry("waste-bulky-items").questions["en"]

    for language, name in (("csv", "faq.csv"), ("json", "faq.jsonl")):
        (tmp_path / name).write_text(_blocks(language)[0], encoding="utf-8")
        imported, problems = import_rows(tmp_path / name)
        assert problems == []
        assert validate(imported) == []
