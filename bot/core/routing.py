"""Which department's queue an escalated message goes to.

The nearest knowledge-base entry is the best signal: a pothole report lands
near the roads entries, a tax complaint near the tax entries. Keywords catch
reports whose wording is far from any FAQ; what matches neither goes to the
general queue, where a person re-routes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.texts import active_language
from bot.texts.words import strip_accents

GENERAL = "general"

# Similarity above which the nearest KB entry's department is trusted for routing.
# Far below the answering threshold: routing a ticket wrongly costs a re-route, not a wrong answer.
ROUTING_SIMILARITY = 0.35

# Read by administrators: extend when a department's reports keep landing in `general`. Words of
# every served language (English, then Spanish without accents: the text is folded before matching).
DEPARTMENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "waste": ("bin", "bins", "rubbish", "garbage", "trash", "recycling", "litter", "dumping", "dumped", "fly-tipping",
              "basura", "contenedor", "reciclaje", "residuos", "vertido", "escombros"),
    "roads": ("pothole", "street light", "streetlight", "pavement", "sidewalk", "road", "traffic light", "snow", "tree", "graffiti",
              "bache", "farola", "acera", "calzada", "semaforo", "nieve", "arbol", "pintadas"),
    "water": ("water", "leak", "sewer", "drain", "flood", "pipe", "hydrant",
              "agua", "fuga", "alcantarilla", "desague", "inundacion", "tuberia"),
    "parking": ("parking", "parked", "tow", "towed", "fine", "ticket machine", "bus", "tram",
                "aparcamiento", "aparcado", "grua", "multa", "parquimetro", "autobus", "tranvia"),
    "taxes": ("tax", "fee", "invoice", "bill", "charged", "payment",
              "impuesto", "tasa", "factura", "recibo", "cobrado", "pago"),
    "civil_registry": ("passport", "id card", "identity card", "birth certificate", "marriage", "registration", "address change",
                       "pasaporte", "dni", "partida de nacimiento", "matrimonio", "empadronamiento", "padron"),
    "building": ("permit", "planning", "construction", "building", "extension",
                 "licencia de obra", "obra", "construccion", "urbanismo"),
    "social": ("benefit", "care", "allowance", "shelter", "homeless", "childcare", "disability",
               "ayuda", "prestacion", "albergue", "sin hogar", "guarderia", "discapacidad", "dependencia"),
    "culture": ("library", "book", "museum", "theatre", "event",
                "biblioteca", "libro", "museo", "teatro", "evento"),
}


@dataclass(frozen=True)
class _KbMaps:
    departments: dict[str, str]  # entry id -> department id
    names: dict[str, str]  # department id -> name in the KB's default language
    titles: dict[str, str]  # entry id -> its first question in the default language
    # language -> the same two in that language, where the KB gives them
    names_in: dict[str, dict[str, str]]
    titles_in: dict[str, dict[str, str]]


@lru_cache(maxsize=8)
def _kb_maps(kb_dir: str) -> _KbMaps:
    """What routing and wording read from the KB, read once per process and KB."""
    from bot.kb.loader import load_kb

    kb, _problems = load_kb(Path(kb_dir))
    titles = {}
    titles_in: dict[str, dict[str, str]] = {}
    for entry in kb.entries:
        questions = entry.questions.get(kb.default_language) or next(iter(entry.questions.values()), [])
        if questions:
            titles[entry.id] = questions[0]
        for language, phrasings in entry.questions.items():
            if phrasings:
                titles_in.setdefault(language, {})[entry.id] = phrasings[0]
    names_in: dict[str, dict[str, str]] = {}
    for department in kb.departments.values():
        for language, name in department.names.items():
            names_in.setdefault(language, {})[department.id] = name
    return _KbMaps(
        departments={entry.id: entry.department for entry in kb.entries},
        names={department.id: department.name for department in kb.departments.values()},
        titles=titles, names_in=names_in, titles_in=titles_in,
    )


def entry_questions(kb_dir: str | Path, language: str | None = None) -> dict[str, str]:
    """Entry id -> its first question in ``language`` (the title a "Do you mean ...?" option
    shows), else in the KB's default language."""
    maps = _kb_maps(str(kb_dir))
    translated = maps.titles_in.get(language or "")
    return {**maps.titles, **translated} if translated else maps.titles


def department_names(kb_dir: str | Path, language: str | None = None) -> dict[str, str]:
    """Department id -> name in ``language`` (default: the turn's, bot.texts.override), falling
    back to the name in the KB's main language."""
    maps = _kb_maps(str(kb_dir))
    translated = maps.names_in.get(language or active_language())
    return {**maps.names, **translated} if translated else maps.names


def known_departments(kb_dir: str | Path) -> set[str]:
    return set(_kb_maps(str(kb_dir)).departments.values()) | {GENERAL}


def route_department(text: str, kb_ranking: Sequence[dict], kb_dir: str | Path) -> str:
    """``kb_ranking`` is the matcher's ranking: [{"entry": id, "similarity": float}, ...]."""
    departments = _kb_maps(str(kb_dir)).departments
    if kb_ranking:
        top = kb_ranking[0]
        department = departments.get(top.get("entry", ""))
        if department and float(top.get("similarity", 0.0)) >= ROUTING_SIMILARITY:
            return department
    lowered = strip_accents(text).casefold()  # "Semáforo" -> "semaforo"
    best, best_hits = GENERAL, 0
    for department, words in DEPARTMENT_KEYWORDS.items():
        hits = sum(1 for word in words if re.search(rf"\b{re.escape(word)}", lowered))
        if hits > best_hits:
            best, best_hits = department, hits
    return best
