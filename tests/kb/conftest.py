"""Shared helpers for the KB tests: fixture paths and tiny KBs written from strings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

DEPARTMENTS = """\
default_language: en
departments:
  - id: waste
    name: Waste collection
    description: Household waste.
  - id: parking
    name: Parking
    description: Permits.
"""


@pytest.fixture
def make_kb(tmp_path: Path):
    """Write ``{file name: YAML}`` into a fresh KB folder (with a default departments.yml)."""

    def make(files: dict[str, str], *, departments: str | None = DEPARTMENTS) -> Path:
        kb_dir = tmp_path / "kb"
        kb_dir.mkdir(exist_ok=True)
        if departments is not None:
            (kb_dir / "departments.yml").write_text(departments, encoding="utf-8")
        for name, text in files.items():
            (kb_dir / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return kb_dir

    return make
