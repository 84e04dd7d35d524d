"""Which department's queue an escalated message goes to.

The nearest knowledge-base entry is the best signal: a pothole report lands
near the roads entries, a tax complaint near the tax entries. Keywords catch
reports whose wording is far from any FAQ; what matches neither goes to the
general queue, where a person re-routes it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from bot.texts import active_language

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


def department_names(kb_dir: str | Path, language: str | None = None) -> dict[str, str]:
    """Department id -> name in ``language`` (default: the turn's, bot.texts.override), falling
    back to the name in the KB's main language."""
    names = _kb_maps(str(kb_dir))[1]
    translated = _names_in(str(kb_dir), language or active_language())
    return {**names, **translated} if translated else names


@lru_cache(maxsize=16)
def _names_in(kb_dir: str, language: str) -> dict[str, str]:
    from bot.kb.loader import load_kb

    kb, _problems = load_kb(Path(kb_dir))
    return {d.id: d.names[language] for d in kb.departments.values() if language in d.names}


def _folded(text: str) -> str:
    """Case and accents folded ("Semáforo" -> "semaforo"); punctuation kept, so "fly-tipping" still reads."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


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
    lowered = _folded(text)
    best, best_hits = GENERAL, 0
    for department, words in DEPARTMENT_KEYWORDS.items():
        hits = sum(1 for word in words if re.search(rf"\b{re.escape(word)}", lowered))
        if hits > best_hits:
            best, best_hits = department, hits
    return best
