"""Which department's queue an escalated message goes to.

The nearest knowledge-base entry is the best signal: a pothole report lands
near the roads entries, a tax complaint near the tax entries. Keywords catch
reports whose wording is far from any FAQ; what matches neither goes to the
general queue, where a person re-routes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

GENERAL = "general"

# Similarity above which the nearest KB entry's department is trusted for routing.
# Far below the answering threshold: routing a ticket wrongly costs a re-route, not a wrong answer.
ROUTING_SIMILARITY = 0.35

# Read by administrators: extend when a department's reports keep landing in `general`.
DEPARTMENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "waste": ("bin", "bins", "rubbish", "garbage", "trash", "recycling", "litter", "dumping", "dumped", "fly-tipping"),
    "roads": ("pothole", "street light", "streetlight", "pavement", "sidewalk", "road", "traffic light", "snow", "tree", "graffiti"),
    "water": ("water", "leak", "sewer", "drain", "flood", "pipe", "hydrant"),
    "parking": ("parking", "parked", "tow", "towed", "fine", "ticket machine", "bus", "tram"),
    "taxes": ("tax", "fee", "invoice", "bill", "charged", "payment"),
    "civil_registry": ("passport", "id card", "identity card", "birth certificate", "marriage", "registration", "address change"),
    "building": ("permit", "planning", "construction", "building", "extension"),
    "social": ("benefit", "care", "allowance", "shelter", "homeless", "childcare", "disability"),
    "culture": ("library", "book", "museum", "theatre", "event"),
}


@lru_cache(maxsize=8)
def _kb_maps(kb_dir: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(entry id -> department id, department id -> name, entry id -> its first question in
    the KB's default language), read once per process and KB."""
    from bot.kb.loader import load_kb

    kb, _problems = load_kb(Path(kb_dir))
    titles = {}
    for entry in kb.entries:
        questions = entry.questions.get(kb.default_language) or next(iter(entry.questions.values()), [])
        if questions:
            titles[entry.id] = questions[0]
    return (
        {entry.id: entry.department for entry in kb.entries},
        {department.id: department.name for department in kb.departments.values()},
        titles,
    )


def entry_questions(kb_dir: str | Path, language: str | None = None) -> dict[str, str]:
    """Entry id -> its first question in ``language`` (the title a "Do you mean ...?" option
    shows), else in the KB's default language."""
    titles = _kb_maps(str(kb_dir))[2]
    if language is None:
        return titles
    return {**titles, **_titles_in(str(kb_dir), language)}


@lru_cache(maxsize=16)
def _titles_in(kb_dir: str, language: str) -> dict[str, str]:
    from bot.kb.loader import load_kb

    kb, _problems = load_kb(Path(kb_dir))
    return {entry.id: entry.questions[language][0] for entry in kb.entries if entry.questions.get(language)}


def department_names(kb_dir: str | Path) -> dict[str, str]:
    return _kb_maps(str(kb_dir))[1]


def known_departments(kb_dir: str | Path) -> set[str]:
    return set(_kb_maps(str(kb_dir))[0].values()) | {GENERAL}


def route_department(text: str, kb_ranking: Sequence[dict], kb_dir: str | Path) -> str:
    """``kb_ranking`` is the matcher's ranking: [{"entry": id, "similarity": float}, ...]."""
    departments = _kb_maps(str(kb_dir))[0]
    if kb_ranking:
        top = kb_ranking[0]
        department = departments.get(top.get("entry", ""))
        if department and float(top.get("similarity", 0.0)) >= ROUTING_SIMILARITY:
            return department
    lowered = text.casefold()
    best, best_hits = GENERAL, 0
    for department, words in DEPARTMENT_KEYWORDS.items():
        hits = sum(1 for word in words if re.search(rf"\b{re.escape(word)}", lowered))
        if hits > best_hits:
            best, best_hits = department, hits
    return best
