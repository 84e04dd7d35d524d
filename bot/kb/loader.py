"""Read the knowledge-base YAML files into a ``KnowledgeBase``, keeping a line for everything.

The files are edited by hand by city staff, so this loader works on PyYAML's node tree
(``yaml.compose``) instead of loaded Python objects:

* every node carries its ``start_mark``, so each entry, phrasing and answer keeps its line;
* scalars are taken as the text that was typed, so ``no:`` stays the language "no" (Norwegian)
  instead of YAML 1.1's ``False``, and a phrasing like ``- Yes`` stays a string;
* duplicate keys (two ``answer:`` in one entry), which PyYAML silently merges, are reported.

Nothing here raises on bad content: syntax errors and wrong shapes become ``Problem`` objects
so one run shows every mistake. Content rules (ids, duplicates, URLs...) live in
``validate.py``; this module only reports what prevents reading a value at all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.kb.hours import Schedule
from bot.kb.schema import DEFAULT_LANGUAGE, Department, Entry, KnowledgeBase, Link, Problem

DEPARTMENTS_FILE = "departments.yml"
# Not FAQ content: the subscription topics (bot.kb.topics), read and checked on their own.
TOPICS_FILE = "topics.yml"
YAML_SUFFIXES = (".yml", ".yaml")

_NULL_TAG = "tag:yaml.org,2002:null"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_DEPARTMENTS_KEYS = ("default_language", "defaults", "departments")
_SCHEDULE_KEYS = ("timezone", "hours", "holidays", "alerts")
_DEPARTMENT_KEYS = ("id", "name", "names", "description", "email", *_SCHEDULE_KEYS)
_FILE_KEYS = ("department", "entries")
_ENTRY_KEYS = ("id", "department", "questions", "answer", "links", "last_reviewed")
_LINK_KEYS = ("title", "url")

# Records the line of a dotted path inside the entry being read (see Entry.locations).
_Mark = Callable[[str, Node], None]


def kb_files(kb_dir: str | Path) -> list[Path]:
    """The files that make up a KB, sorted by name so every consumer sees the same order.

    Hidden files and files starting with ``_`` are left out so editors' backups and drafts
    (``_draft.yml``) do not leak into the bot; so is ``topics.yml`` (bot.kb.topics).
    """
    directory = Path(kb_dir)
    if not directory.is_dir():
        return []
    return sorted(
        (
            p
            for p in directory.iterdir()
            if p.is_file() and p.suffix in YAML_SUFFIXES and not p.name.startswith((".", "_"))
            and p.name != TOPICS_FILE
        ),
        key=lambda p: p.name,
    )


def load_kb(kb_dir: str | Path) -> tuple[KnowledgeBase, list[Problem]]:
    """Load ``departments.yml`` and every department file; never raises on bad content."""
    directory = Path(kb_dir)
    problems: list[Problem] = []
    departments_path = directory / DEPARTMENTS_FILE
    if not directory.is_dir():
        problems.append(
            Problem(str(directory), None, "missing-kb", "knowledge base folder not found")
        )
        return KnowledgeBase({}, [], departments_file=str(departments_path)), problems

    default_language = DEFAULT_LANGUAGE
    departments: dict[str, Department] = {}
    defaults = Schedule()
    if departments_path.is_file():
        ctx = _Context(str(departments_path), problems)
        root = _compose(departments_path, ctx)
        if root is not None:
            default_language, departments, defaults = _read_departments(root, ctx)
    else:
        problems.append(
            Problem(
                str(departments_path),
                None,
                "missing-departments",
                f"{DEPARTMENTS_FILE} is missing; it must list the departments",
            )
        )

    entries: list[Entry] = []
    file_departments: dict[str, str] = {}
    for path in kb_files(directory):
        if path.name == DEPARTMENTS_FILE:
            continue
        ctx = _Context(str(path), problems, default_language)
        root = _compose(path, ctx)
        if root is not None:
            department, file_entries = _read_department_file(root, path.stem, ctx)
            file_departments[str(path)] = department
            entries.extend(file_entries)

    kb = KnowledgeBase(
        departments=departments,
        entries=entries,
        default_language=default_language,
        departments_file=str(departments_path),
        file_departments=file_departments,
        defaults=defaults,
    )
    return kb, problems


def load_departments(kb_dir: str | Path) -> KnowledgeBase:
    """Only ``departments.yml`` (no entries): what the ticket clock and the alerts need, read quickly.

    Problems are left to ``kb validate``; what cannot be read is simply not set.
    """
    path = Path(kb_dir) / DEPARTMENTS_FILE
    if not path.is_file():
        return KnowledgeBase({}, [], departments_file=str(path))
    ctx = _Context(str(path), [])
    root = _compose(path, ctx)
    if root is None:
        return KnowledgeBase({}, [], departments_file=str(path))
    default_language, departments, defaults = _read_departments(root, ctx)
    return KnowledgeBase(departments, [], default_language, str(path), defaults=defaults)


class _KBLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``).

    They have no use in hand-written FAQ files, are confusing to edit, and a nest of them
    would make walking the node tree exponentially slow.
    """

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (`*name`) are not allowed in knowledge base files", event.start_mark
            )
        return super().compose_node(parent, index)


@dataclass
class _Context:
    """The file being read and where its problems go, threaded through the readers."""

    file: str
    problems: list[Problem]
    default_language: str = DEFAULT_LANGUAGE

    def error(self, node: Node | None, code: str, message: str) -> None:
        self.problems.append(Problem(self.file, _line(node), code, message, "error"))

    def warning(self, node: Node | None, code: str, message: str) -> None:
        self.problems.append(Problem(self.file, _line(node), code, message, "warning"))


def _line(node: Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _compose(path: Path, ctx: _Context) -> Node | None:
    """Parse one file to a node tree, turning encoding and syntax errors into problems."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        ctx.problems.append(
            Problem(
                ctx.file,
                line,
                "encoding",
                "the file is not UTF-8 text; save it with UTF-8 encoding",
            )
        )
        return None
    try:
        root = yaml.compose(text, Loader=_KBLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        ctx.problems.append(
            Problem(ctx.file, line, "yaml-syntax", f"the file is not valid YAML: {detail}")
        )
        return None
    except yaml.YAMLError as exc:
        # ReaderError (e.g. a control character) has a character position, not a mark.
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        ctx.problems.append(
            Problem(ctx.file, line, "yaml-syntax", f"the file is not valid YAML: {exc}")
        )
        return None
    if root is None:
        ctx.warning(None, "empty-file", "the file is empty")
    return root


def _mapping(node: Node, ctx: _Context, what: str, known: tuple[str, ...]) -> dict[str, Node]:
    """A mapping's values by key; reports duplicate and unknown keys (with a likely fix)."""
    if not isinstance(node, MappingNode):
        ctx.error(node, "wrong-type", f"{what} must be a set of `key: value` lines")
        return {}
    result: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else ""
        if key in result:
            ctx.error(
                key_node,
                "duplicate-key",
                f"`{key}` appears twice in {what} (first on line {_line(result[key])});"
                " only one is allowed",
            )
            continue
        if known and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; expected one of: {', '.join(known)}"
            ctx.warning(key_node, "unknown-key", f"unknown key `{key}` in {what} is ignored{hint}")
            continue
        result[key] = value_node
    return result


def _key_lines(node: Node) -> dict[str, int]:
    """Line of each key of a mapping node (first occurrence), for pointing at `key:` lines."""
    if not isinstance(node, MappingNode):
        return {}
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode):
            lines.setdefault(key_node.value, _line(key_node) or 0)
    return lines


def _text(node: Node | None, ctx: _Context, what: str) -> str | None:
    """A scalar's text as typed (``None`` for an empty value), else a problem."""
    if node is None:
        return None
    if not isinstance(node, ScalarNode):
        ctx.error(node, "wrong-type", f"{what} must be a single value, not a list or mapping")
        return None
    if node.tag == _NULL_TAG and node.style is None:
        return None
    return node.value.strip()


def _sequence(node: Node, ctx: _Context, what: str) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG and node.style is None:
        return []
    ctx.error(node, "wrong-type", f"{what} must be a list (lines starting with `- `)")
    return []


def _read_schedule(fields: dict[str, Node], ctx: _Context, line: int) -> Schedule:
    """Time zone, hours, holidays and alert mode as typed; ``validate`` judges their content."""
    holidays = []
    if "holidays" in fields:
        for item in _sequence(fields["holidays"], ctx, "holidays"):
            text = _text(item, ctx, "a holiday")
            if not text:
                continue
            day = parse_date(text)
            if day is None:
                ctx.error(item, "bad-holiday", f"holiday `{text}` is not a date; write it as YYYY-MM-DD, e.g. 2026-12-25")
            else:
                holidays.append(day)
    return Schedule(
        timezone=_text(fields.get("timezone"), ctx, "timezone"),
        hours=_text(fields.get("hours"), ctx, "hours"),
        holidays=tuple(sorted(set(holidays))),
        alerts=_text(fields.get("alerts"), ctx, "alerts"),
        line=line,
    )


def _names(node: Node | None, ctx: _Context) -> dict[str, str]:
    """A department's ``names:``, language code -> name; a wrong one is reported, not guessed."""
    if node is None:
        return {}
    names = {}
    for language, value in _mapping(node, ctx, "names", ()).items():
        name = _text(value, ctx, f"names.{language}")
        if not re.fullmatch(r"[a-z]{2}", language):
            ctx.error(node, "wrong-type", f"`names:` takes two-letter language codes such as `es`, not `{language}`")
        elif name:
            names[language] = name
    return names


def _read_departments(root: Node, ctx: _Context) -> tuple[str, dict[str, Department], Schedule]:
    top = _mapping(root, ctx, DEPARTMENTS_FILE, _DEPARTMENTS_KEYS)
    default_language = _text(top.get("default_language"), ctx, "default_language")
    defaults = Schedule()
    if "defaults" in top:
        defaults = _read_schedule(_mapping(top["defaults"], ctx, "defaults", _SCHEDULE_KEYS), ctx,
                                  _line(top["defaults"]) or 0)
    departments: dict[str, Department] = {}
    if "departments" in top:
        items = _sequence(top["departments"], ctx, "departments")
    else:
        items = []
        if isinstance(root, MappingNode):
            ctx.error(root, "missing-field", f"{DEPARTMENTS_FILE} needs a `departments:` list")
    for item in items:
        fields = _mapping(item, ctx, "a department", _DEPARTMENT_KEYS)
        if not fields:
            continue
        dep_id = _text(fields.get("id"), ctx, "id") or ""
        if dep_id in departments:
            first = departments[dep_id]
            ctx.error(
                item,
                "duplicate-department",
                f"department `{dep_id}` is listed twice (first on line {first.line})",
            )
            continue
        departments[dep_id] = Department(
            id=dep_id,
            name=_text(fields.get("name"), ctx, "name") or "",
            description=_text(fields.get("description"), ctx, "description") or "",
            email=_text(fields.get("email"), ctx, "email"),
            names=_names(fields.get("names"), ctx),
            source_file=ctx.file,
            line=_line(item) or 0,
            schedule=_read_schedule(fields, ctx, _line(item) or 0),
        )
    return default_language or DEFAULT_LANGUAGE, departments, defaults


def _read_department_file(root: Node, stem: str, ctx: _Context) -> tuple[str, list[Entry]]:
    """The file-level department (the file name when not given) and the file's entries."""
    if isinstance(root, SequenceNode):
        ctx.error(
            root,
            "wrong-type",
            "a department file starts with `department: <id>` and then `entries:`",
        )
        return stem, []
    top = _mapping(root, ctx, "the department file", _FILE_KEYS)
    department = _text(top.get("department"), ctx, "department") or stem
    if "entries" not in top:
        if isinstance(root, MappingNode):
            ctx.warning(root, "missing-field", "the file has no `entries:` list")
        return department, []
    entries = []
    for item in _sequence(top["entries"], ctx, "entries"):
        entry = _read_entry(item, department, ctx)
        if entry is not None:
            entries.append(entry)
    return department, entries


def _read_entry(node: Node, file_department: str, ctx: _Context) -> Entry | None:
    fields = _mapping(node, ctx, "an entry", _ENTRY_KEYS)
    if not isinstance(node, MappingNode):
        return None
    locations: dict[str, int] = {}
    key_lines = _key_lines(node)

    def at(path: str, n: Node) -> None:
        # A value under a key points at the key's line (`en:`), which is what editors look for.
        locations[path] = key_lines.get(path) or _line(n) or 0

    for key in fields:
        locations[key] = key_lines[key]
        key_lines.update({f"{key}.{sub}": line for sub, line in _key_lines(fields[key]).items()})
    department = _text(fields.get("department"), ctx, "department") or file_department
    return Entry(
        id=_text(fields.get("id"), ctx, "id") or "",
        department=department,
        questions=_read_questions(fields.get("questions"), ctx, at),
        answer=_read_answers(fields.get("answer"), ctx, at),
        links=_read_links(fields.get("links"), ctx, at),
        last_reviewed=_read_date(fields.get("last_reviewed"), ctx),
        source_file=ctx.file,
        line=_line(node) or 0,
        locations=locations,
    )


def _per_language(node: Node, ctx: _Context, what: str) -> dict[str, Node]:
    """Language -> value; a value given without a language is read as the default language."""
    if isinstance(node, MappingNode):
        return _mapping(node, ctx, what, ())
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG and node.style is None:
        return {}
    lang = ctx.default_language
    ctx.warning(
        node,
        "no-language",
        f"{what} should be given per language (e.g. `{lang}:` on its own line);"
        f" read as language `{lang}`",
    )
    return {lang: node}


def _read_questions(node: Node | None, ctx: _Context, at: _Mark) -> dict[str, list[str]]:
    if node is None:
        return {}
    questions: dict[str, list[str]] = {}
    for lang, value in _per_language(node, ctx, "`questions`").items():
        at(f"questions.{lang}", value)
        if isinstance(value, ScalarNode) and value.tag != _NULL_TAG:
            items: list[Node] = [value]  # a single phrasing written without `- `
        else:
            items = _sequence(value, ctx, f"questions `{lang}`")
        phrasings = []
        for i, item in enumerate(items):
            at(f"questions.{lang}.{i}", item)
            phrasings.append(_text(item, ctx, "a question") or "")
        questions[lang] = phrasings
    return questions


def _read_answers(node: Node | None, ctx: _Context, at: _Mark) -> dict[str, str]:
    if node is None:
        return {}
    answers: dict[str, str] = {}
    for lang, value in _per_language(node, ctx, "`answer`").items():
        at(f"answer.{lang}", value)
        answers[lang] = _text(value, ctx, f"answer `{lang}`") or ""
    return answers


def _read_links(node: Node | None, ctx: _Context, at: _Mark) -> tuple[Link, ...]:
    if node is None:
        return ()
    links = []
    for i, item in enumerate(_sequence(node, ctx, "links")):
        fields = _mapping(item, ctx, "a link", _LINK_KEYS)
        if not isinstance(item, MappingNode):
            continue
        at(f"links.{i}", item)
        if "url" in fields:
            at(f"links.{i}.url", fields["url"])
        links.append(
            Link(
                title=_text(fields.get("title"), ctx, "title") or "",
                url=_text(fields.get("url"), ctx, "url") or "",
            )
        )
    return tuple(links)


def _read_date(node: Node | None, ctx: _Context) -> date | None:
    text = _text(node, ctx, "last_reviewed")
    if not text:
        return None
    parsed = parse_date(text)
    if parsed is None:
        ctx.warning(
            node,
            "bad-last-reviewed",
            f"last_reviewed `{text}` is not a date; write it as YYYY-MM-DD, e.g. 2026-09-15",
        )
    return parsed


def parse_date(text: str) -> date | None:
    """An ISO ``YYYY-MM-DD`` date, or ``None``; other spellings are ambiguous across countries."""
    text = text.strip()
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
