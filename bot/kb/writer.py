"""Write a ``KnowledgeBase`` back as the YAML files city staff edit by hand.

The output is meant to be read and edited by people, so it follows the documented layout
exactly (answers as ``|`` blocks, a blank line between entries; see ``yamlout``) and is
stable: the same KB always gives the same bytes.

Files whose content would not change are left untouched, so comments staff wrote in them
survive a ``kb import --merge``; only files that really change are rewritten.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.kb.hours import Schedule
from bot.kb.loader import DEPARTMENTS_FILE, load_kb
from bot.kb.schema import Department, Entry, KnowledgeBase
from bot.kb.yamlout import Block, dump_yaml

_FORMAT_HINT = "Format and rules: docs/knowledge-base.md. Check with: python -m bot kb validate"


def default_department_name(department_id: str) -> str:
    """A readable placeholder name (``waste-collection`` -> ``Waste collection``) to edit later."""
    words = department_id.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else department_id


def _schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """The clock and alert settings that were given, in the order departments.yml documents them."""
    data: dict[str, Any] = {}
    if schedule.timezone:
        data["timezone"] = schedule.timezone
    if schedule.hours is not None:
        data["hours"] = schedule.hours
    if schedule.holidays:
        data["holidays"] = list(schedule.holidays)
    if schedule.alerts:
        data["alerts"] = schedule.alerts
    return data


def render_departments(kb: KnowledgeBase) -> str:
    items = []
    for dep in kb.departments.values():
        item: dict[str, Any] = {"id": dep.id, "name": dep.name, "description": dep.description}
        if dep.names:
            item["names"] = dict(dep.names)
        if dep.email:
            item["email"] = dep.email
        item.update(_schedule_dict(dep.schedule))
        items.append(item)
    top: dict[str, Any] = {"default_language": kb.default_language}
    if defaults := _schedule_dict(kb.defaults):
        top["defaults"] = defaults
    body = dump_yaml({**top, "departments": items})
    return f"# Departments of the city's knowledge base.\n# {_FORMAT_HINT}\n{body}"


def entry_to_dict(entry: Entry, file_department: str) -> dict[str, Any]:
    """The entry as it appears in a file; ``department`` only when it differs from the file's."""
    data: dict[str, Any] = {"id": entry.id}
    if entry.department != file_department:
        data["department"] = entry.department
    data["questions"] = {lang: list(phrasings) for lang, phrasings in entry.questions.items()}
    data["answer"] = {lang: Block(text.strip() + "\n") for lang, text in entry.answer.items()}
    if entry.links:
        data["links"] = [{"title": link.title, "url": link.url} for link in entry.links]
    if entry.last_reviewed is not None:
        data["last_reviewed"] = entry.last_reviewed
    return data


def render_department_file(department: Department | None, department_id: str, entries: list[Entry]) -> str:
    name = department.name if department and department.name else department_id
    header = f"# {name}: questions citizens ask and the city's answers.\n# {_FORMAT_HINT}\n"
    head = dump_yaml({"department": department_id})
    if not entries:
        return f"{header}{head}entries: []\n"
    blocks = []
    for entry in entries:
        text = dump_yaml([entry_to_dict(entry, department_id)])
        # Split on "\n" only: the emitter escapes every other line-break character.
        lines = text.split("\n")
        blocks.append("\n".join(f"  {line}" if line.strip() else line for line in lines))
    return f"{header}{head}entries:\n" + "\n".join(blocks)


def write_kb(
    kb: KnowledgeBase,
    out_dir: str | Path,
    *,
    department_names: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``departments.yml`` and the department files; returns the files actually written.

    Entries read from a file in ``out_dir`` stay in that file; other entries go to
    ``<department>.yml`` (or to the existing file of their department). ``department_names``
    overrides department names, e.g. for departments an import created.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    kb = _with_names(kb, department_names or {})
    existing = _load_existing(directory)

    written = []
    departments_path = directory / DEPARTMENTS_FILE
    if (
        existing is None
        or not departments_path.exists()
        or existing.departments != kb.departments
        or existing.default_language != kb.default_language
        or existing.defaults != kb.defaults
    ):
        _write_text(departments_path, render_departments(kb))
        written.append(departments_path)

    for path, (department_id, entries) in sorted(_layout(kb, directory).items()):
        if existing is not None and path.exists() and _unchanged(existing, path, department_id, entries):
            continue
        department = kb.departments.get(department_id)
        _write_text(path, render_department_file(department, department_id, entries))
        written.append(path)
    return written


def _with_names(kb: KnowledgeBase, names: Mapping[str, str]) -> KnowledgeBase:
    departments = dict(kb.departments)
    for dep_id in [*departments, *(e.department for e in kb.entries)]:
        current = departments.get(dep_id)
        name = names.get(dep_id) or (current.name if current else "") or default_department_name(dep_id)
        if current is None:
            departments[dep_id] = Department(id=dep_id, name=name)
        elif current.name != name:
            departments[dep_id] = replace(current, name=name)
    return KnowledgeBase(
        departments,
        kb.entries,
        kb.default_language,
        kb.departments_file,
        kb.file_departments,
        kb.defaults,
    )


def _load_existing(directory: Path) -> KnowledgeBase | None:
    if not any(directory.iterdir()):
        return None
    existing, _ = load_kb(directory)
    return existing


def _layout(kb: KnowledgeBase, directory: Path) -> dict[Path, tuple[str, list[Entry]]]:
    """Which file each entry goes to, with that file's department, in KB order."""
    root = directory.resolve()
    file_of_department: dict[str, Path] = {}
    layout: dict[Path, tuple[str, list[Entry]]] = {}
    for source, department_id in kb.file_departments.items():
        path = Path(source)
        if path.resolve().parent == root:
            layout[directory / path.name] = (department_id, [])
            file_of_department.setdefault(department_id, directory / path.name)
    for entry in kb.entries:
        source = Path(entry.source_file) if entry.source_file else None
        if source is not None and source.resolve().parent == root and (directory / source.name) in layout:
            target = directory / source.name
        else:
            target = file_of_department.get(entry.department, directory / f"{entry.department}.yml")
            if target not in layout:
                layout[target] = (entry.department, [])
                file_of_department[entry.department] = target
        layout[target][1].append(entry)
    return layout


def _unchanged(existing: KnowledgeBase, path: Path, department_id: str, entries: list[Entry]) -> bool:
    key = next((k for k in existing.file_departments if Path(k).name == path.name), None)
    if key is None or existing.file_departments[key] != department_id:
        return False
    before = [e for e in existing.entries if Path(e.source_file).name == path.name]
    return before == entries


def _write_text(path: Path, text: str) -> None:
    """Replace the file in one step so a crash never leaves half a KB file behind.

    The temporary file is hidden (leading dot) so the loader never reads it, and is created
    with ``open`` so it gets the usual permissions rather than mkstemp's private ones.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
