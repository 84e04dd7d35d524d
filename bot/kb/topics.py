"""The topics citizens can subscribe to ("subscribe waste"), from ``knowledge_base/topics.yml``.

Kept beside the KB because the same staff edit it, in the same plain YAML, and ``kb validate``
checks it with the rest; it is not FAQ content, so the loader and the compiler leave it out
(a new topic never retrains the model). Each topic may belong to a department, so that a
supervisor can announce to "everyone subscribed to something of Waste and Recycling".

A missing file means no topics: citizens can still subscribe to all announcements.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.kb.loader import TOPICS_FILE, load_departments
from bot.kb.schema import Problem
from bot.texts.words import fold

# A topic id becomes part of a consent purpose ("announcements:waste", bot.identity.consent).
TOPIC_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
# Words with a meaning of their own in the subscription commands, in every language.
RESERVED = frozenset({"all", "everything", "todo", "todos", "todas"})
_KEYS = frozenset({"id", "name", "department", "words"})


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    department: str | None = None
    # Other words a citizen may type for it, in any language ("bins", "basura" for waste); the id
    # and the name always work. Compared without case or accents.
    words: tuple[str, ...] = ()


def _word(text: str) -> str:
    """As compared with what a citizen typed: "Energía" and "energia" are one word."""
    return fold(str(text))


def load_topics(kb_dir: str | Path) -> tuple[list[Topic], list[Problem]]:
    """The topics that could be read, and every problem with the file; never raises on content."""
    path = Path(kb_dir) / TOPICS_FILE
    if not path.is_file():
        return [], []
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [Problem(where, mark.line + 1 if mark else None, "yaml-syntax", f"cannot read {TOPICS_FILE}: {exc}")]
    if raw is None:
        return [], []
    if not isinstance(raw, dict) or not isinstance(raw.get("topics"), list):
        return [], [Problem(where, None, "topics-shape", f"{TOPICS_FILE} needs a `topics:` list")]
    departments = set(load_departments(kb_dir).departments)
    problems: list[Problem] = []
    topics: list[Topic] = []
    seen: dict[str, str] = {}
    for number, item in enumerate(raw["topics"], start=1):
        label = f"topic {number}"
        if not isinstance(item, dict):
            problems.append(Problem(where, None, "topics-shape", f"{label} must be a mapping with id and name"))
            continue
        unknown = sorted(set(map(str, item)) - _KEYS)
        if unknown:
            problems.append(Problem(where, None, "unknown-key",
                                    f"{label}: unknown field(s) {', '.join(unknown)} ignored; known: "
                                    f"{', '.join(sorted(_KEYS))}", "warning"))
        topic_id, name = str(item.get("id") or ""), " ".join(str(item.get("name") or "").split())
        if not TOPIC_ID.fullmatch(topic_id) or topic_id in RESERVED:
            problems.append(Problem(where, None, "bad-topic-id",
                                    f"{label}: id {topic_id!r} must be lower-case letters, digits, - or _ "
                                    f"(at most 48), and not one of {', '.join(sorted(RESERVED))}"))
            continue
        if not name:
            problems.append(Problem(where, None, "missing-field", f"topic {topic_id}: needs a name"))
            continue
        department = item.get("department")
        if department is not None and str(department) not in departments:
            problems.append(Problem(where, None, "unknown-department",
                                    f"topic {topic_id}: department {department!r} is not in departments.yml"))
            department = None
        words = item.get("words") or []
        if not isinstance(words, list):
            problems.append(Problem(where, None, "topics-shape", f"topic {topic_id}: words must be a list"))
            words = []
        clean_words = []
        for word in [topic_id, name, *words]:
            key = _word(word)
            if not key:
                continue
            if key in RESERVED:
                problems.append(Problem(where, None, "reserved-word", f"topic {topic_id}: {word!r} is reserved"))
            elif seen.get(key, topic_id) != topic_id:
                problems.append(Problem(where, None, "duplicate-topic",
                                        f"topic {topic_id}: {word!r} already names topic {seen[key]}"))
            else:
                seen[key] = topic_id
                clean_words.append(key)
        topics.append(Topic(topic_id, name, str(department) if department is not None else None,
                            tuple(dict.fromkeys(clean_words))))
    return topics, problems


_cache: dict[Path, tuple[tuple[int, int], list[Topic]]] = {}
_lock = threading.Lock()


def topics(kb_dir: str | Path) -> list[Topic]:
    """The valid topics, re-read when the file changes (staff edit it while the assistant runs)."""
    path = Path(kb_dir) / TOPICS_FILE
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        return []
    with _lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != stamp:
            cached = _cache[path] = (stamp, load_topics(kb_dir)[0])
        return cached[1]


def find_topic(kb_dir: str | Path, word: str) -> Topic | None:
    """The topic a citizen named by its id, its name or one of its words, if any."""
    key = _word(word)
    return next((t for t in topics(kb_dir) if key in t.words), None)
