"""Ticket priorities and the keyword rules that raise them.

The keyword lists are module constants on purpose: administrators and auditors
must be able to read exactly which words make the assistant treat a message as
urgent, and change them without touching logic. Matching is on whole words and
phrases, case-insensitive. Each list holds the words of every served language (English, then
Spanish, with and without accents, since many citizens type without them): a Spanish phrase
never matches an English message, and a city adding a language adds its words here.
"""

from __future__ import annotations

import re

LOW = "low"
NORMAL = "normal"
HIGH = "high"
URGENT = "urgent"

# Lowest to highest; the order is the rank.
PRIORITIES: tuple[str, ...] = (LOW, NORMAL, HIGH, URGENT)

# Any of these alone makes a message urgent: a safety hazard or a citizen at risk.
URGENT_KEYWORDS: tuple[str, ...] = (
    # safety hazards
    "gas leak",
    "smell of gas",
    "smells of gas",
    "smell gas",
    "exposed wire",
    "exposed wires",
    "live wire",
    "live wires",
    "electric shock",
    "flooding",
    "flooded",
    "sewage overflow",
    "collapsed",
    "about to collapse",
    "fire hazard",
    "carbon monoxide",
    # people at risk
    "homeless",
    "sleeping rough",
    "sleeping on the street",
    "eviction",
    "evicted",
    "being evicted",
    "domestic violence",
    "domestic abuse",
    "abusive partner",
    "child at risk",
    "child in danger",
    "child abuse",
    "suicidal",
    # Spanish: peligros
    "fuga de gas", "escape de gas", "huele a gas", "olor a gas",
    "cable pelado", "cables pelados", "cables sueltos", "descarga eléctrica", "descarga electrica",
    "inundación", "inundacion", "inundado", "inundada", "se ha derrumbado", "derrumbe",
    "a punto de caerse", "monóxido de carbono", "monoxido de carbono",
    # Spanish: personas en riesgo
    "sin hogar", "duermo en la calle", "durmiendo en la calle", "desahucio", "desahuciado", "desahuciada",
    "me desahucian", "violencia de género", "violencia de genero", "violencia doméstica", "violencia domestica",
    "malos tratos", "maltrato", "niño en peligro", "menor en peligro", "abuso infantil",
    "suicidarme", "quitarme la vida",
)

# A message is urgent when it contains a phrase from the first group AND a word
# from the second: e.g. no heating is a nuisance, no heating for an elderly person is a risk.
URGENT_COMBINATIONS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("no heating", "no heat", "heating is off", "heating broken", "heating has broken",
         "heating not working", "no hot water", "no electricity", "no water", "power cut"),
        ("elderly", "old lady", "old man", "pensioner", "disabled", "disability", "wheelchair",
         "baby", "newborn", "infant", "pregnant", "sick child", "oxygen", "dialysis"),
    ),
    (
        ("sin calefacción", "sin calefaccion", "sin agua caliente", "sin luz", "sin electricidad", "sin agua",
         "corte de luz", "apagón", "apagon"),
        ("anciano", "anciana", "ancianos", "persona mayor", "personas mayores", "pensionista", "jubilado",
         "jubilada", "discapacidad", "discapacitado", "discapacitada", "silla de ruedas", "bebé",
         "recién nacido", "recien nacido", "embarazada", "niño enfermo", "oxígeno", "oxigeno", "diálisis",
         "dialisis"),
    ),
)

# Vulnerable citizens: a message matching one of these named rules flags its ticket vulnerable
# (shorter commitment, first in its queue: bot.tickets.vulnerable) and, when nothing is dangerous,
# raises it to ``high``. The rule's name is what the ticket records as the reason, so it is written
# for the agent who reads it on the ticket.
VULNERABILITY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mentions an elderly person", ("elderly", "pensioner",
                                    "anciano", "anciana", "persona mayor", "pensionista", "jubilado", "jubilada")),
    ("mentions a disability", ("disabled", "disability",
                               "discapacidad", "discapacitado", "discapacitada", "minusválido", "minusvalido")),
    ("mentions a wheelchair", ("wheelchair", "silla de ruedas")),
    ("mentions a pregnancy", ("pregnant", "embarazada", "embarazo")),
    ("mentions blindness or deafness", ("blind", "deaf", "ciego", "ciega", "invidente", "sordo", "sorda")),
    ("mentions a carer", ("carer", "cuidador", "cuidadora")),
    ("mentions a newborn", ("newborn", "recién nacido", "recien nacido", "recién nacida", "recien nacida")),
)
AGE_RULE = "age 80 or over"
AGE_THRESHOLD = 80

# Every phrase of the named rules (kept for readers who look for the word list).
HIGH_KEYWORDS: tuple[str, ...] = tuple(phrase for _, phrases in VULNERABILITY_RULES for phrase in phrases)


def priority_rank(priority: str) -> int:
    """Position in PRIORITIES; unknown priorities fail loudly instead of sorting anywhere."""
    try:
        return PRIORITIES.index(priority)
    except ValueError:
        raise ValueError(f"unknown priority {priority!r}; known: {', '.join(PRIORITIES)}") from None


def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words only, so "evictions policy" is not "eviction"; plurals therefore need
    # their own entry. Any run of whitespace matches the space inside a phrase.
    parts = [r"\s+".join(map(re.escape, phrase.split())) for phrase in phrases]
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


_URGENT = _pattern(URGENT_KEYWORDS)
_RULES = tuple((name, _pattern(phrases)) for name, phrases in VULNERABILITY_RULES)
_COMBINATIONS = tuple((_pattern(a), _pattern(b)) for a, b in URGENT_COMBINATIONS)
# "85 years old", "an 85-year-old", "aged 85", "85 yrs old", "age: 85"; the number is judged, not the words.
_AGE = re.compile(
    r"\b(?:(?P<a>\d{2,3})[\s-]*(?:years?|yrs?)[\s-]*old\b|(?:aged?)\s*:?\s*(?P<b>\d{2,3})\b"
    r"|(?P<c>\d{2,3})\s*años\b)",
    re.IGNORECASE,
)


def vulnerability_rule(text: str) -> str | None:
    """The name of the first rule the message matches, or None.

    Ages above 120 are read as something else (a house number, a year) rather than a person."""
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    for match in _AGE.finditer(text):
        age = int(match.group("a") or match.group("b") or match.group("c"))
        if AGE_THRESHOLD <= age <= 120:
            return AGE_RULE
    return None


def detect_priority(text: str) -> str:
    """'urgent', 'high' or 'normal' from the keyword tables and rules above."""
    if _URGENT.search(text) or any(a.search(text) and b.search(text) for a, b in _COMBINATIONS):
        return URGENT
    if vulnerability_rule(text) is not None:
        return HIGH
    return NORMAL
