"""KB answers as canned replies: the entries of a ticket's department, and a plain word search.

The search is deliberately simple (words of the query found in the entry's
questions, answer or id): agents type a word they remember from an answer,
and every entry containing it should show up, predictably.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.kb.schema import Entry, KnowledgeBase

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Canned:
    id: str
    department: str
    question: str
    text: str


def _canned(kb: KnowledgeBase, entry: Entry, language: str | None = None) -> Canned:
    language = language or kb.default_language
    answer = entry.answer.get(language) or entry.answer.get(kb.default_language) \
        or next(iter(entry.answer.values()), "")
    questions = entry.questions.get(language) or entry.questions.get(kb.default_language) \
        or next(iter(entry.questions.values()), [])
    text = answer.strip()
    if entry.links:
        text += "\n\n" + "\n".join(f"{link.title}: {link.url}" for link in entry.links)
    return Canned(entry.id, entry.department, questions[0] if questions else entry.id, text)


def canned_for(kb: KnowledgeBase, department: str, language: str | None = None) -> list[Canned]:
    """``language``: the citizen's, so the agent inserts an answer they can read (the KB's main
    language where an entry has no answer in it)."""
    return [_canned(kb, entry, language) for entry in kb.entries_for(department)]


def canned_by_id(kb: KnowledgeBase, entry_ids: list[str], language: str | None = None) -> list[Canned]:
    """These entries in this order; ids no longer in the KB (edited since) are left out."""
    entries = {entry.id: entry for entry in kb.entries}
    return [_canned(kb, entries[i], language) for i in dict.fromkeys(entry_ids) if isinstance(i, str) and i in entries]


def search(kb: KnowledgeBase, query: str, *, department: str | None = None, limit: int = 20,
           language: str | None = None) -> list[Canned]:
    """Entries containing every word of ``query``, best (most mentions in questions) first;
    the ticket's own department breaks ties. Every language's text is searched; the answers
    come in ``language`` (see ``canned_for``)."""
    words = [w.lower() for w in _WORD.findall(query)][:10]
    if not words:
        return []
    scored = []
    for index, entry in enumerate(kb.entries):
        questions = " ".join(q for qs in entry.questions.values() for q in qs).lower()
        body = " ".join([entry.id, *entry.answer.values()]).lower()
        if not all(w in questions or w in body for w in words):
            continue
        score = sum(3 for w in words if w in questions) + sum(1 for w in words if w in body)
        scored.append((-score, 0 if entry.department == department else 1, index, entry))
    scored.sort(key=lambda item: item[:3])
    return [_canned(kb, entry, language) for *_, entry in scored[:limit]]
