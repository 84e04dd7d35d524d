"""Import FAQ spreadsheets (CSV or JSON Lines) that cities already keep into the YAML KB.

A spreadsheet has one row per phrasing: ``id,department,language,question,answer`` and
optionally ``link_title,link_url,last_reviewed``. The answer may be repeated on every row
of an entry or written on the first row only. Real exports are messy, so reading is
forgiving where the meaning is clear (a UTF-8 byte-order mark, ``;`` or tab separators from
European Excel, Windows line breaks, blank rows, header names in any case) and strict where
guessing could publish a wrong answer (two different answers for one entry and language, a
row missing its id or question). Every problem names the line in the file.

Import is all-or-nothing: ``import_file`` writes nothing while any error is left.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Literal

from bot.kb.loader import kb_files, load_kb, parse_date
from bot.kb.schema import (
    DEFAULT_LANGUAGE,
    Department,
    Entry,
    KnowledgeBase,
    Link,
    Problem,
    Severity,
    has_errors,
)
from bot.kb.validate import validate
from bot.kb.writer import default_department_name, write_kb

__all__ = [
    "ImportFormat",
    "Row",
    "import_file",
    "import_rows",
    "merge_kb",
    "read_rows",
    "rows_to_kb",
    "write_kb",
]

ImportFormat = Literal["csv", "jsonl"]

REQUIRED_COLUMNS = ("id", "department", "language", "question", "answer")
OPTIONAL_COLUMNS = ("link_title", "link_url", "last_reviewed")
_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class Row:
    """One spreadsheet row (or JSON line) with the line it starts on."""

    line: int
    id: str = ""
    department: str = ""
    language: str = ""
    question: str = ""
    answer: str = ""
    link_title: str = ""
    link_url: str = ""
    last_reviewed: str = ""


def detect_format(path: str | Path) -> ImportFormat | None:
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return None


def import_rows(
    path: str | Path,
    *,
    fmt: ImportFormat | None = None,
    default_language: str = DEFAULT_LANGUAGE,
) -> tuple[KnowledgeBase, list[Problem]]:
    """Read a CSV/JSONL file into a KB (departments get placeholder names) plus its problems."""
    rows, problems = read_rows(path, fmt=fmt)
    kb, more = rows_to_kb(rows, str(path), default_language=default_language)
    return kb, problems + more


def read_rows(path: str | Path, *, fmt: ImportFormat | None = None) -> tuple[list[Row], list[Problem]]:
    file = str(path)
    fmt = fmt or detect_format(path)
    if fmt is None:
        return [], [
            Problem(
                file,
                None,
                "unknown-format",
                "cannot tell the format from the file name; use --format csv or jsonl",
            )
        ]
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [
            Problem(
                file,
                line,
                "encoding",
                "the file is not UTF-8 text; in Excel use \u201cSave as: CSV UTF-8\u201d",
            )
        ]
    return _read_csv(text, file) if fmt == "csv" else _read_jsonl(text, file)


def _clean(value: object) -> str:
    """Cell text with Windows line breaks and trailing spaces on each line removed."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _column_name(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


def _sniff_delimiter(text: str) -> str:
    """The separator whose header row has the required columns; Excel's depends on the locale."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in _DELIMITERS:
        header = next(csv.reader([first], delimiter=delimiter), [])
        if set(REQUIRED_COLUMNS) <= {_column_name(h) for h in header}:
            return delimiter
    return ","


def _read_csv(text: str, file: str) -> tuple[list[Row], list[Problem]]:
    problems: list[Problem] = []
    # strict: a stray or unclosed quote is reported instead of silently swallowing rows.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text), strict=True)
    header: list[str] | None = None
    rows: list[Row] = []
    next_line = 1
    try:
        for record in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [_column_name(h) for h in record]
                missing = [c for c in REQUIRED_COLUMNS if c not in header]
                if missing:
                    problems.append(
                        Problem(
                            file,
                            line,
                            "missing-column",
                            f"the header row lacks the column(s) {', '.join(missing)};"
                            f" expected: {','.join(_COLUMNS)}",
                        )
                    )
                    return [], problems
                unknown = [h for h in header if h and h not in _COLUMNS]
                if unknown:
                    problems.append(
                        Problem(
                            file,
                            line,
                            "unknown-column",
                            f"column(s) {', '.join(unknown)} are not used and were ignored",
                            "warning",
                        )
                    )
                continue
            if len(record) > len(header) and any(cell.strip() for cell in record[len(header):]):
                problems.append(
                    Problem(
                        file,
                        line,
                        "extra-values",
                        f"this row has {len(record)} values but the header has {len(header)} columns;"
                        " text containing the separator must be in double quotes",
                    )
                )
                continue
            values = {name: _clean(cell) for name, cell in zip(header, record) if name in _COLUMNS}
            rows.append(Row(line=line, **values))
    except csv.Error as exc:
        hint = "a quote opened in this row is never closed" if "end of data" in str(exc) else str(exc)
        problems.append(
            Problem(file, next_line, "csv-syntax", f"the CSV cannot be read from this row on: {hint}")
        )
    if header is None:
        problems.append(Problem(file, None, "missing-column", "the file has no header row"))
    return rows, problems


def _read_jsonl(text: str, file: str) -> tuple[list[Row], list[Problem]]:
    problems: list[Problem] = []
    rows: list[Row] = []
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends, which
    # JSON writers leave unescaped inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(file, number, "bad-json", f"this line is not valid JSON: {exc.msg}"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(file, number, "bad-json", "each line must be one JSON object {...}"))
            continue
        values: dict[str, str] = {}
        for key, value in data.items():
            name = _column_name(str(key))
            if name not in _COLUMNS:
                continue
            if isinstance(value, (dict, list)):
                problems.append(
                    Problem(file, number, "bad-json", f"`{key}` must be text, not a list or object")
                )
                continue
            values[name] = _clean(value)
        rows.append(Row(line=number, **values))
    return rows, problems


@dataclass
class _Draft:
    """An entry being assembled from its rows."""

    id: str
    department: str
    line: int
    questions: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, tuple[str, int]] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    last_reviewed: date | None = None
    locations: dict[str, int] = field(default_factory=dict)


def rows_to_kb(
    rows: Iterable[Row], file: str, *, default_language: str = DEFAULT_LANGUAGE
) -> tuple[KnowledgeBase, list[Problem]]:
    """Group rows by id into entries; entries keep the order in which ids first appear."""
    problems: list[Problem] = []
    drafts: dict[str, _Draft] = {}
    problem = _Reporter(file, problems)
    for row in rows:
        draft = drafts.get(row.id)
        missing = [name for name in ("id", "language", "question") if not getattr(row, name)]
        if not row.department and draft is None:
            missing.insert(1, "department")
        if missing:
            problem(row.line, "missing-field", f"this row has no {', '.join(missing)}; the row was skipped")
            continue
        if draft is None:
            draft = drafts[row.id] = _Draft(row.id, row.department, row.line, locations={"id": row.line})
        elif row.department and row.department != draft.department:
            problem(
                row.line,
                "conflicting-department",
                f"entry `{row.id}` is in department `{draft.department}` on line {draft.line}"
                f" but `{row.department}` here",
            )
            continue
        _add_row(draft, row, problem)

    entries = []
    for draft in drafts.values():
        for lang in draft.questions:
            if lang not in draft.answers:
                problem(
                    draft.locations.get(f"questions.{lang}.0", draft.line),
                    "missing-answer",
                    f"entry `{draft.id}` has questions in `{lang}` but no row gives the `{lang}` answer",
                )
        entries.append(
            Entry(
                id=draft.id,
                department=draft.department,
                questions=draft.questions,
                answer={lang: text for lang, (text, _) in draft.answers.items()},
                links=tuple(draft.links),
                last_reviewed=draft.last_reviewed,
                source_file=file,
                line=draft.line,
                locations=draft.locations,
            )
        )
    departments = {
        e.department: Department(e.department, default_department_name(e.department)) for e in entries
    }
    return KnowledgeBase(departments, entries, default_language), problems


@dataclass(frozen=True)
class _Reporter:
    """Adds problems about one import file."""

    file: str
    problems: list[Problem]

    def __call__(self, line: int, code: str, message: str, severity: Severity = "error") -> None:
        self.problems.append(Problem(self.file, line, code, message, severity))


def _add_row(draft: _Draft, row: Row, problem: _Reporter) -> None:
    lang = row.language.strip().lower()
    question = " ".join(row.question.split())  # a question is one line, whatever the cell held
    phrasings = draft.questions.setdefault(lang, [])
    if question not in phrasings:
        draft.locations[f"questions.{lang}.{len(phrasings)}"] = row.line
        draft.locations.setdefault(f"questions.{lang}", row.line)
        phrasings.append(question)

    if row.answer:
        known = draft.answers.get(lang)
        if known is None:
            draft.answers[lang] = (row.answer, row.line)
            draft.locations[f"answer.{lang}"] = row.line
            draft.locations.setdefault("answer", row.line)
        elif " ".join(known[0].split()) != " ".join(row.answer.split()):
            problem(
                row.line,
                "conflicting-answer",
                f"entry `{row.id}` has a different `{lang}` answer on line {known[1]};"
                " give the answer once or repeat it exactly",
            )

    if row.link_url or row.link_title:
        if not row.link_url:
            problem(row.line, "bad-link", "link_title without link_url was ignored", "warning")
        else:
            link = Link(row.link_title, row.link_url)
            if link not in draft.links:
                draft.locations[f"links.{len(draft.links)}"] = row.line
                draft.locations[f"links.{len(draft.links)}.url"] = row.line
                draft.locations.setdefault("links", row.line)
                draft.links.append(link)

    if row.last_reviewed:
        parsed = parse_date(row.last_reviewed)
        if parsed is None:
            problem(
                row.line,
                "bad-last-reviewed",
                f"last_reviewed `{row.last_reviewed}` is not a date; write it as YYYY-MM-DD",
                "warning",
            )
        elif draft.last_reviewed is None or parsed > draft.last_reviewed:
            draft.last_reviewed = parsed  # several rows may carry dates: the latest review wins
            draft.locations["last_reviewed"] = row.line


def merge_kb(base: KnowledgeBase, incoming: KnowledgeBase) -> KnowledgeBase:
    """Add new entries and update existing ones by id, one language at a time.

    An imported language replaces that language's questions and answer; languages the import
    does not mention are kept, so a per-language spreadsheet cannot wipe out translations.
    Links and last_reviewed are replaced only when the import gives them. Updated entries
    stay in the file (and position) they were in.
    """
    departments = dict(base.departments)
    for dep_id, dep in incoming.departments.items():
        departments.setdefault(dep_id, dep)
    entries = list(base.entries)
    position = {}
    for i, entry in enumerate(entries):
        position.setdefault(entry.id, i)
    for new in incoming.entries:
        if new.id not in position:
            position[new.id] = len(entries)
            entries.append(new)
            continue
        old = entries[position[new.id]]
        questions = {lang: list(ps) for lang, ps in old.questions.items()}
        answer = dict(old.answer)
        for lang in new.languages:
            questions.pop(lang, None)
            answer.pop(lang, None)
        questions.update(new.questions)
        answer.update(new.answer)
        entries[position[new.id]] = replace(
            old,
            department=new.department,
            questions=questions,
            answer=answer,
            links=new.links or old.links,
            last_reviewed=new.last_reviewed or old.last_reviewed,
            locations={},
        )
    return KnowledgeBase(
        departments, entries, base.default_language, base.departments_file, base.file_departments, base.defaults
    )


def import_file(
    source: str | Path,
    out_dir: str | Path,
    *,
    merge: bool = False,
    fmt: ImportFormat | None = None,
    department_names: Mapping[str, str] | None = None,
    default_language: str = DEFAULT_LANGUAGE,
) -> tuple[list[Path], list[Problem]]:
    """Import ``source`` into the KB folder ``out_dir``; returns the files written and problems.

    Without ``merge`` a folder that already holds KB files is refused, so an import can never
    silently replace the city's edited KB. Nothing is written while any error is reported,
    including errors the import would create in the merged KB (e.g. a duplicate question).
    """
    directory = Path(out_dir)
    has_kb = directory.is_dir() and bool(kb_files(directory))
    if directory.exists() and not directory.is_dir():
        return [], [Problem(str(directory), None, "not-a-folder", "the output path is a file, not a folder")]
    if has_kb and not merge:
        return [], [
            Problem(
                str(directory),
                None,
                "not-empty",
                "the folder already holds a knowledge base; use --merge to add or update entries",
            )
        ]
    if directory.is_dir() and not has_kb and not merge and any(
        not p.name.startswith(".") for p in directory.iterdir()
    ):
        return [], [
            Problem(str(directory), None, "not-empty", "the folder is not empty; choose an empty folder")
        ]

    imported, problems = import_rows(source, fmt=fmt, default_language=default_language)
    if has_kb:
        base, load_problems = load_kb(directory)
        if has_errors(load_problems):
            # Rewriting a file that could not be read completely could lose content.
            return [], problems + load_problems
        kb = merge_kb(base, imported)
    else:
        kb = imported
    # The import already explained some problems in spreadsheet terms; skip validate's version.
    seen = {(p.file, p.line, p.code) for p in problems}
    problems += [p for p in validate(kb) if (p.file, p.line, p.code) not in seen]
    if has_errors(problems):
        return [], problems
    return write_kb(kb, directory, department_names=department_names), problems
