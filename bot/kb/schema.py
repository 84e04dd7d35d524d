"""The in-memory shape of the knowledge base, shared by the loader, validator, importer and compiler.

The types are plain frozen dataclasses rather than pydantic models on purpose: the YAML is
written by city staff, so a wrong value must become a readable ``Problem`` with a file and a
line, never an exception. The loader therefore does its own forgiving conversion and the
validator judges the result; these classes only carry it.

Where a value came from (``source_file``, ``line``, ``locations``) is excluded from equality:
two entries with the same content are equal wherever they were read from, which is what an
import -> write -> load round trip should preserve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from bot.kb.hours import Schedule, merged

DEFAULT_LANGUAGE = "en"

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """Something wrong in the KB or in an import file, pointing at the line to fix.

    ``line`` is 1-based; ``None`` when the problem concerns a whole file (e.g. it is missing).
    ``code`` is a stable short name that the staff documentation explains.
    """

    file: str
    line: int | None
    code: str
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, file: str | None = None) -> str:
        """``file:line: severity: message [code]``, the form editors and CI logs understand."""
        where = (file if file is not None else self.file) or "<knowledge base>"
        if self.line:
            where = f"{where}:{self.line}"
        return f"{where}: {self.severity}: {self.message} [{self.code}]"

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line or 0, self.code, self.message)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Order problems as an editor would walk through them: by file, then line."""
    return sorted(problems, key=Problem.sort_key)


def has_errors(problems: list[Problem]) -> bool:
    return any(p.is_error for p in problems)


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    description: str = ""
    email: str | None = None
    source_file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    # The name in other languages than the KB's main one (``names: {es: Residuos y Reciclaje}``),
    # what a citizen writing in that language reads in "our ... team".
    names: dict[str, str] = field(default_factory=dict)
    # Its own time zone, business hours, holidays and alert mode (bot.kb.hours); unset: the defaults.
    schedule: Schedule = Schedule()


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Entry:
    """One FAQ entry: the ways citizens ask (per language) and the city's answer (per language).

    Languages are ISO 639-1 codes used as dictionary keys, so adding a language needs no code
    change. ``locations`` maps a dotted path (``"questions.en.1"``, ``"answer.de"``,
    ``"links.0.url"``, ``"last_reviewed"``) to its line so problems can point at the exact line.
    """

    id: str
    department: str
    questions: dict[str, list[str]]
    answer: dict[str, str]
    links: tuple[Link, ...] = ()
    last_reviewed: date | None = None
    source_file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    locations: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, *paths: str) -> int:
        """The line of the first path that was recorded, else the entry's own line."""
        for path in paths:
            if path in self.locations:
                return self.locations[path]
        return self.line

    @property
    def languages(self) -> list[str]:
        """Every language the entry mentions, in first-seen order."""
        return list(dict.fromkeys([*self.questions, *self.answer]))

    def phrasing_count(self) -> int:
        return sum(len(phrasings) for phrasings in self.questions.values())


@dataclass(frozen=True)
class KnowledgeBase:
    departments: dict[str, Department]
    entries: list[Entry]
    default_language: str = DEFAULT_LANGUAGE
    # Where departments.yml was read from, so department-level problems can point at it.
    departments_file: str = field(default="", compare=False)
    # Each department file read -> its file-level `department:`, so a rewrite keeps entries
    # in the file they came from.
    file_departments: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # departments.yml's `defaults:`: the clock and alert settings of every department that sets none.
    defaults: Schedule = Schedule()

    def schedule_of(self, department_id: str) -> Schedule:
        """The department's own settings over the defaults (an unknown department gets the defaults)."""
        department = self.departments.get(department_id)
        return merged(self.defaults, department.schedule if department else Schedule())

    def entry(self, entry_id: str) -> Entry:
        """The entry with this id; ``KeyError`` if there is none (the first one if duplicated)."""
        for candidate in self.entries:
            if candidate.id == entry_id:
                return candidate
        raise KeyError(entry_id)

    def entries_for(self, department_id: str) -> list[Entry]:
        return [e for e in self.entries if e.department == department_id]

    @property
    def languages(self) -> list[str]:
        """All languages used, default language first, then alphabetical for stable output."""
        found = {lang for e in self.entries for lang in e.languages}
        rest = sorted(found - {self.default_language})
        return [self.default_language, *rest] if self.default_language in found else rest
