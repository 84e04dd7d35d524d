"""Content rules for the knowledge base, each reported with the file and line to fix.

Errors are things that would make the bot wrong or training fail (a duplicate id, a
phrasing that points at two answers, an answer missing for a language that has phrasings).
Warnings are worth a look but must not stop a city from publishing (an entry not reviewed
for a while, a very long answer). ``kb compile`` refuses to run while any error is left.

The loader already reported what it could not read at all (YAML syntax, wrong shapes); this
module judges a KB that was read, so it can also check KBs built in code, e.g. by the importer.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from bot.kb.hours import ALERT_MODES, HOURS_EXAMPLE, ROUND_THE_CLOCK, HoursError, Schedule, check_timezone, parse_hours
from bot.kb.loader import load_kb
from bot.kb.schema import Entry, KnowledgeBase, Problem, Severity, sort_problems
from bot.kb.topics import load_topics

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2}")
MAX_ANSWER_CHARS = 1500
# Rasa fills `{slot}` placeholders in response texts and fails on a lone brace.
_BRACES = ("{", "}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def validate(kb: KnowledgeBase, *, today: date | None = None) -> list[Problem]:
    """Every rule below, sorted by file and line; ``today`` is injectable for tests."""
    today = today or date.today()
    problems: list[Problem] = []
    problems += _check_departments(kb)
    problems += _check_ids(kb)
    problems += _check_duplicate_phrasings(kb)
    for entry in kb.entries:
        problems += _check_entry(entry, kb, today)
    return sort_problems(problems)


def check_kb(kb_dir: str | Path, *, today: date | None = None) -> tuple[KnowledgeBase, list[Problem]]:
    """Load and validate a KB folder: every problem once, sorted by file and line.

    A line the loader could not read (e.g. a list where text belongs) also looks empty to the
    content rules; only the loader's explanation is kept for such a line.
    """
    kb, problems = load_kb(kb_dir)
    unreadable = {(p.file, p.line) for p in problems if p.is_error and p.line}
    problems += [p for p in validate(kb, today=today) if (p.file, p.line) not in unreadable]
    problems += load_topics(kb_dir)[1]  # the subscription topics, checked with the rest
    return kb, sort_problems(problems)


def normalize_phrasing(text: str) -> str:
    """The form two phrasings are compared in: the same question typed slightly differently.

    Square brackets count as parentheses because the compiler rewrites them that way (Rasa
    would read ``[text](x)`` as an entity annotation).
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("[", "(").replace("]", ")")
    text = " ".join(text.split())
    end = len(text)
    while end and (text[end - 1].isspace() or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[:end]


def is_valid_url(url: str) -> bool:
    """An absolute http(s) address a citizen can open; no spaces, a host name."""
    if not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _problem(entry: Entry, line: int, code: str, message: str, severity: Severity = "error") -> Problem:
    return Problem(entry.source_file, line, code, message, severity)


def _where(file: str, line: int, here: str) -> str:
    """A short reference to another place: just the line when it is in the same file."""
    return f"line {line}" if file == here else f"{Path(file).name}:{line}"


def _check_departments(kb: KnowledgeBase) -> list[Problem]:
    problems = []
    if not LANGUAGE_PATTERN.fullmatch(kb.default_language):
        problems.append(
            Problem(
                kb.departments_file,
                None,
                "bad-language",
                f"default_language `{kb.default_language}` is not a two-letter lowercase"
                " language code (ISO 639-1), e.g. `en`",
            )
        )
    for dep in kb.departments.values():
        if not dep.id:
            problems.append(Problem(dep.source_file, dep.line, "missing-id", "department has no `id`"))
        elif not ID_PATTERN.fullmatch(dep.id):
            problems.append(
                Problem(
                    dep.source_file,
                    dep.line,
                    "bad-id",
                    f"department id `{dep.id}` must be 2-64 lowercase letters, digits, `-` or `_`,"
                    " starting with a letter or digit",
                )
            )
        if not dep.name:
            problems.append(
                Problem(dep.source_file, dep.line, "missing-name", f"department `{dep.id}` has no `name`")
            )
        if dep.email is not None and not _EMAIL.fullmatch(dep.email):
            problems.append(
                Problem(
                    dep.source_file,
                    dep.line,
                    "bad-email",
                    f"department `{dep.id}` email `{dep.email}` does not look like an e-mail address",
                    "warning",
                )
            )
        problems += _check_schedule(dep.schedule, kb.departments_file, f"department `{dep.id}`")
        effective = kb.schedule_of(dep.id)
        if effective.holidays and (effective.hours is None or effective.hours.strip().lower() in ROUND_THE_CLOCK):
            problems.append(
                Problem(
                    dep.source_file,
                    dep.line,
                    "holidays-without-hours",
                    f"department `{dep.id}` has holidays but no business `hours`: its clock runs round the"
                    " clock and the holidays change nothing",
                    "warning",
                )
            )
        if effective.alerts == "digest" and not dep.email:
            problems.append(
                Problem(
                    dep.source_file,
                    dep.line,
                    "digest-without-email",
                    f"department `{dep.id}` has `alerts: digest` but no `email`: its alerts are shown in the"
                    " console only",
                    "warning",
                )
            )
    problems += _check_schedule(kb.defaults, kb.departments_file, "`defaults`")
    return problems


def _check_schedule(schedule: Schedule, file: str, label: str) -> list[Problem]:
    """Time zone, business hours and alert mode, with the same parser the ticket clock uses."""
    problems = []
    if schedule.timezone is not None:
        try:
            check_timezone(schedule.timezone)
        except HoursError as exc:
            problems.append(Problem(file, schedule.line, "bad-timezone", f"{label}: {exc}"))
    if schedule.hours is not None:
        try:
            parse_hours(schedule.hours)
        except HoursError as exc:
            problems.append(
                Problem(file, schedule.line, "bad-hours", f"{label} hours: {exc} (e.g. {HOURS_EXAMPLE})")
            )
    if schedule.alerts is not None and schedule.alerts not in ALERT_MODES:
        problems.append(
            Problem(
                file,
                schedule.line,
                "bad-alerts",
                f"{label} alerts `{schedule.alerts}` must be `each` (one e-mail per ticket) or `digest` (one a day)",
            )
        )
    return problems


def _check_ids(kb: KnowledgeBase) -> list[Problem]:
    problems = []
    by_id: dict[str, list[Entry]] = defaultdict(list)
    for entry in kb.entries:
        if not entry.id:
            problems.append(_problem(entry, entry.line, "missing-id", "entry has no `id`"))
            continue
        by_id[entry.id].append(entry)
        if not ID_PATTERN.fullmatch(entry.id):
            problems.append(
                _problem(
                    entry,
                    entry.line_of("id"),
                    "bad-id",
                    f"id `{entry.id}` must be 2-64 lowercase letters, digits, `-` or `_`,"
                    " starting with a letter or digit",
                )
            )
    for entry_id, same in by_id.items():
        if len(same) < 2:
            continue
        for entry in same:
            others = ", ".join(
                _where(o.source_file, o.line_of("id"), entry.source_file) for o in same if o is not entry
            )
            problems.append(
                _problem(
                    entry,
                    entry.line_of("id"),
                    "duplicate-id",
                    f"id `{entry_id}` is used by more than one entry (also at {others})",
                )
            )
    return problems


def _check_duplicate_phrasings(kb: KnowledgeBase) -> list[Problem]:
    """The same question in two entries: the bot could not know which answer to give."""
    seen: dict[str, list[tuple[Entry, int, str]]] = defaultdict(list)
    problems = []
    for entry in kb.entries:
        in_entry: dict[str, int] = {}
        for lang, phrasings in entry.questions.items():
            for i, phrasing in enumerate(phrasings):
                key = normalize_phrasing(phrasing)
                if not key:
                    continue
                line = entry.line_of(f"questions.{lang}.{i}")
                if key in in_entry:
                    problems.append(
                        _problem(
                            entry,
                            line,
                            "repeated-phrasing",
                            f"the question \u201c{phrasing}\u201d repeats line {in_entry[key]}"
                            " of the same entry",
                            "warning",
                        )
                    )
                    continue
                in_entry[key] = line
                seen[key].append((entry, line, phrasing))
    for places in seen.values():
        if len({id(e) for e, _, _ in places}) < 2:
            continue
        for entry, line, phrasing in places:
            others = ", ".join(
                f"`{o.id}` ({_where(o.source_file, o_line, entry.source_file)})"
                for o, o_line, _ in places
                if o is not entry
            )
            problems.append(
                _problem(
                    entry,
                    line,
                    "duplicate-phrasing",
                    f"the question \u201c{phrasing}\u201d is also in entry {others};"
                    " a question may belong to one entry only",
                )
            )
    return problems


def _check_entry(entry: Entry, kb: KnowledgeBase, today: date) -> list[Problem]:
    problems = []
    label = f"entry `{entry.id}`" if entry.id else "entry"

    if entry.department not in kb.departments:
        known = ", ".join(sorted(kb.departments)) or "none"
        problems.append(
            _problem(
                entry,
                entry.line_of("department"),
                "unknown-department",
                f"{label} belongs to department `{entry.department}`, which is not listed in"
                f" departments.yml (known: {known})",
            )
        )

    for lang in entry.languages:
        if not LANGUAGE_PATTERN.fullmatch(lang):
            problems.append(
                _problem(
                    entry,
                    entry.line_of(f"questions.{lang}", f"answer.{lang}"),
                    "bad-language",
                    f"`{lang}` is not a two-letter lowercase language code (ISO 639-1), e.g. `en`",
                )
            )

    if not any(normalize_phrasing(p) for ps in entry.questions.values() for p in ps):
        problems.append(
            _problem(
                entry,
                entry.line_of("questions"),
                "no-phrasing",
                f"{label} has no question; add at least one under `questions:`",
            )
        )
    for lang, phrasings in entry.questions.items():
        for i, phrasing in enumerate(phrasings):
            if not normalize_phrasing(phrasing):
                problems.append(
                    _problem(
                        entry,
                        entry.line_of(f"questions.{lang}.{i}", f"questions.{lang}"),
                        "empty-phrasing",
                        "this question is empty; write the question or remove the line",
                    )
                )
        if entry.answer and lang not in entry.answer and any(map(normalize_phrasing, phrasings)):
            problems.append(
                _problem(
                    entry,
                    entry.line_of(f"questions.{lang}"),
                    "missing-answer",
                    f"{label} has questions in `{lang}` but no answer in `{lang}`",
                )
            )

    problems += _check_answers(entry, kb, label)
    problems += _check_links(entry)

    if entry.last_reviewed is not None:
        if not isinstance(entry.last_reviewed, date):
            problems.append(
                _problem(
                    entry,
                    entry.line_of("last_reviewed"),
                    "bad-last-reviewed",
                    f"last_reviewed `{entry.last_reviewed}` is not a date; write it as YYYY-MM-DD",
                    "warning",
                )
            )
        elif entry.last_reviewed > today:
            problems.append(
                _problem(
                    entry,
                    entry.line_of("last_reviewed"),
                    "future-last-reviewed",
                    f"last_reviewed {entry.last_reviewed.isoformat()} is in the future",
                    "warning",
                )
            )
    return problems


def _check_answers(entry: Entry, kb: KnowledgeBase, label: str) -> list[Problem]:
    problems = []
    if not entry.answer:
        problems.append(
            _problem(entry, entry.line_of("answer"), "missing-answer", f"{label} has no `answer:`")
        )
    elif kb.default_language not in entry.answer and kb.default_language not in entry.questions:
        # (with default-language questions the missing answer was already reported)
        problems.append(
            _problem(
                entry,
                entry.line_of("answer"),
                "missing-answer",
                f"{label} has no answer in `{kb.default_language}`, the default language;"
                " it is the answer given when no other language applies",
            )
        )
    for lang, text in entry.answer.items():
        line = entry.line_of(f"answer.{lang}", "answer")
        # The reverse of "questions without an answer": a warning, since the answer can still be
        # given in that language, but nothing teaches the assistant how citizens ask in it.
        # The default language is exempt: its answer is required whatever the questions.
        if lang != kb.default_language and not any(map(normalize_phrasing, entry.questions.get(lang, []))):
            problems.append(
                _problem(
                    entry,
                    line,
                    "missing-questions",
                    f"{label} has an answer in `{lang}` but no question in `{lang}`; add the ways"
                    f" citizens ask in `{lang}` under `questions:`, or the assistant cannot recognise"
                    f" the topic in `{lang}`",
                    "warning",
                )
            )
        if not text.strip():
            problems.append(
                _problem(entry, line, "empty-answer", f"the `{lang}` answer of {label} is empty")
            )
        if len(text) > MAX_ANSWER_CHARS:
            problems.append(
                _problem(
                    entry,
                    line,
                    "long-answer",
                    f"the `{lang}` answer is {len(text)} characters long (over {MAX_ANSWER_CHARS});"
                    " citizens read answers on phones, consider shortening it and adding a link",
                    "warning",
                )
            )
        if any(brace in text for brace in _BRACES):
            problems.append(
                _problem(
                    entry,
                    line,
                    "brace-in-answer",
                    f"the `{lang}` answer contains `{{` or `}}`, which the chatbot reads as a"
                    " placeholder; use ( ) instead",
                )
            )
    return problems


def _check_links(entry: Entry) -> list[Problem]:
    problems = []
    for i, link in enumerate(entry.links):
        if not is_valid_url(link.url):
            problems.append(
                _problem(
                    entry,
                    entry.line_of(f"links.{i}.url", f"links.{i}", "links"),
                    "bad-url",
                    f"link url `{link.url}` is not a web address starting with https:// or http://"
                    if link.url
                    else "link has no `url`",
                )
            )
        if not link.title.strip():
            problems.append(
                _problem(
                    entry,
                    entry.line_of(f"links.{i}", "links"),
                    "bad-link",
                    "link has no `title`; the title is the text citizens see",
                )
            )
    return problems
