"""Write an approved proposal (a new entry, or a new phrasing of an entry) into the KB files.

The YAML files stay the one source of truth: the change is made to the loaded KB in
memory, judged by the same validator as ``kb validate``, and only then written with the
KB writer, so a proposal that would break training (a phrasing already used by another
entry, an empty answer, an unknown department) is refused with the validator's own
message and the files are left as they were. Errors the KB already had are not the
proposal's fault and do not block it; only errors the change would add do.

Two supervisors approving at once must not lose each other's change: the whole
read-validate-write runs under an exclusive lock on the KB folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from bot.kb.loader import load_kb
from bot.kb.schema import Entry, KnowledgeBase, Problem
from bot.kb.validate import ID_PATTERN, normalize_phrasing, validate
from bot.kb.writer import write_kb

# Words that say nothing about the topic; left out of suggested entry ids.
_STOPWORDS = frozenset(
    "a an and are at be can could do does for from get have hello hi how i in is it me my "
    "of on or our please the there to we what when where which who why will with would you your".split()
)
_ID_WORDS = 4
_NO_LINE = re.compile(r" \((?:line 0|[^()\s]+:0)\)")


class ProposalRefused(ValueError):
    """The change would make the KB invalid (or has nothing to change); ``problems`` say why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class KbChange:
    entry_id: str
    file: Path
    written: list[Path]


@contextmanager
def _locked(kb_dir: Path) -> Iterator[None]:
    """An exclusive lock on the KB folder itself, so no lock file appears among the KB files."""
    fd = os.open(kb_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def suggest_entry_id(kb: KnowledgeBase, department: str, question: str) -> str:
    """``<department>-<topic words>``, like the hand-written ids, and not used yet."""
    folded = unicodedata.normalize("NFKD", question).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in _STOPWORDS][:_ID_WORDS]
    prefix = re.sub(r"[^a-z0-9]+", "-", department.lower()).strip("-") or "faq"
    base = "-".join([prefix, *(words or ["question"])])[:56].rstrip("-")
    taken = {e.id for e in kb.entries}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _department_file(kb: KnowledgeBase, kb_dir: Path, department: str) -> str:
    """Where the writer will put a new entry: its department's existing file, else ``<department>.yml``."""
    for path, file_department in sorted(kb.file_departments.items()):
        if file_department == department:
            return path
    return str(kb_dir / f"{department}.yml")


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _new_errors(before: KnowledgeBase, after: KnowledgeBase, today: date) -> list[str]:
    def key(p: Problem) -> tuple[str, str, str]:
        return (Path(p.file).name, p.code, p.message)

    old = {key(p) for p in validate(before, today=today) if p.is_error}
    new = [p.message for p in validate(after, today=today) if p.is_error and key(p) not in old]
    # The proposed entry has no line yet; the validator would point at "line 0".
    return list(dict.fromkeys(_NO_LINE.sub(" (this proposal)", message) for message in new))


def _write_checked(kb_dir: Path, before: KnowledgeBase, after: KnowledgeBase, entry_id: str,
                   today: date) -> KbChange:
    errors = _new_errors(before, after, today)
    if errors:
        raise ProposalRefused(errors)
    originals = {Path(f): Path(f).read_bytes() for f in before.file_departments}
    written = write_kb(after, kb_dir)
    reloaded, problems = load_kb(kb_dir)
    if not any(e.id == entry_id for e in reloaded.entries) or any(p.is_error for p in problems):
        # The writer produced something the loader reads differently: put the files back.
        for path in written:
            if path in originals:
                path.write_bytes(originals[path])
            else:
                path.unlink(missing_ok=True)
        raise ProposalRefused(["the knowledge base could not be written back safely; nothing was changed"])
    entry = reloaded.entry(entry_id)
    return KbChange(entry_id, Path(entry.source_file), written)


def add_entry(
    kb_dir: str | Path,
    *,
    department: str,
    question: str,
    answer: str,
    language: str | None = None,
    entry_id: str | None = None,
    today: date | None = None,
) -> KbChange:
    """Add a new entry (one phrasing, one answer) to the department's file."""
    kb_dir, today = Path(kb_dir), today or date.today()
    with _locked(kb_dir):
        kb, _ = load_kb(kb_dir)
        language = language or kb.default_language
        entry_id = (entry_id or "").strip() or suggest_entry_id(kb, department, question)
        if any(e.id == entry_id for e in kb.entries):
            raise ProposalRefused([f"an entry with id `{entry_id}` already exists; choose another id"])
        if not ID_PATTERN.fullmatch(entry_id):
            raise ProposalRefused(
                [f"entry id `{entry_id}` must be 2-64 lowercase letters, digits, `-` or `_`"]
            )
        entry = Entry(
            id=entry_id,
            source_file=_department_file(kb, kb_dir, department),
            department=department,
            questions={language: [_clean(question)]},
            answer={language: _clean(answer)},
            last_reviewed=today,
        )
        after = replace(kb, entries=[*kb.entries, entry])
        return _write_checked(kb_dir, kb, after, entry_id, today)


def add_phrasing(
    kb_dir: str | Path,
    *,
    entry_id: str,
    question: str,
    language: str | None = None,
    today: date | None = None,
) -> KbChange:
    """Add another way of asking an existing entry's question; marks the entry reviewed today."""
    kb_dir, today = Path(kb_dir), today or date.today()
    with _locked(kb_dir):
        kb, _ = load_kb(kb_dir)
        language = language or kb.default_language
        try:
            target = kb.entry(entry_id)
        except KeyError:
            raise ProposalRefused([f"there is no entry `{entry_id}` in the knowledge base"]) from None
        phrasing = _clean(question)
        existing = target.questions.get(language, [])
        if normalize_phrasing(phrasing) and normalize_phrasing(phrasing) in map(normalize_phrasing, existing):
            raise ProposalRefused([f"\u201c{phrasing}\u201d is already a question of entry `{entry_id}`"])
        updated = replace(
            target,
            questions={**target.questions, language: [*existing, phrasing]},
            last_reviewed=today,
        )
        after = replace(kb, entries=[updated if e is target else e for e in kb.entries])
        return _write_checked(kb_dir, kb, after, entry_id, today)
