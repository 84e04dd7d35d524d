"""``python -m bot kb ...``: the commands city staff and the build use on the knowledge base.

They must run on a machine without secrets (an editor's laptop, CI), so the default KB folder
is derived from ``PROJECT_ROOT`` (or ``CRM_KB_DIR``) instead of building ``Settings``, which
refuses to start without API keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from bot.kb.compile import compile_kb, training_examples
from bot.kb.importer import import_file
from bot.kb.loader import load_kb
from bot.kb.schema import KnowledgeBase, Problem, sort_problems
from bot.kb.validate import check_kb
from bot.settings import PROJECT_ROOT
from bot.texts.domain import sync_domain

DEFAULT_OUT = PROJECT_ROOT / "data" / "nlu" / "faq.yml"
DEFAULT_DOMAIN = PROJECT_ROOT / "domain.yml"


def default_kb_dir() -> Path:
    """Same default as ``Settings.kb_dir``, honouring the same environment variable."""
    configured = os.environ.get("CRM_KB_DIR")
    return Path(configured) if configured else PROJECT_ROOT / "knowledge_base"


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    kb = subparsers.add_parser("kb", help="knowledge base: validate, compile, import, stats")
    commands = kb.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check the KB files and list problems")
    _kb_dir_option(validate)
    validate.set_defaults(func=cmd_validate)

    compile_ = commands.add_parser(
        "compile", help="generate Rasa FAQ training data from the KB, and domain.yml's responses from the texts"
    )
    _kb_dir_option(compile_)
    compile_.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {_show(DEFAULT_OUT)})"
    )
    compile_.add_argument(
        "--domain", type=Path, default=DEFAULT_DOMAIN,
        help=f"Rasa domain whose responses come from the text catalogue (default: {_show(DEFAULT_DOMAIN)})",
    )
    compile_.set_defaults(func=cmd_compile)

    import_ = commands.add_parser("import", help="import a CSV or JSON Lines spreadsheet into a KB folder")
    import_.add_argument("file", type=Path, help="the .csv or .jsonl file")
    import_.add_argument("--out", type=Path, required=True, help="KB folder to write")
    import_.add_argument("--merge", action="store_true", help="add/update entries by id in an existing KB")
    import_.add_argument(
        "--format", choices=("csv", "jsonl"), help="file format (default: from the extension)"
    )
    import_.add_argument(
        "--department-name",
        action="append",
        default=[],
        metavar="ID=NAME",
        help="name for a department the import creates (repeatable)",
    )
    import_.add_argument(
        "--default-language", default="en", help="default language of a new KB (default: en)"
    )
    import_.set_defaults(func=cmd_import)

    stats = commands.add_parser("stats", help="entries per department and phrasings per entry")
    _kb_dir_option(stats)
    stats.set_defaults(func=cmd_stats)


def _kb_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kb-dir",
        type=Path,
        default=None,
        help="knowledge base folder (default: $CRM_KB_DIR or knowledge_base/ in the project)",
    )


def _show(path: str | Path) -> str:
    """A path as short as possible for messages: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def print_problems(problems: Iterable[Problem], out: TextIO) -> tuple[int, int]:
    """Print ``file:line: severity: message [code]`` lines; returns (errors, warnings)."""
    errors = warnings = 0
    for problem in problems:
        print(problem.format(_show(problem.file)), file=out)
        if problem.is_error:
            errors += 1
        else:
            warnings += 1
    return errors, warnings


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _load_and_check(kb_dir: Path, out: TextIO) -> tuple[KnowledgeBase, int, int]:
    kb, problems = check_kb(kb_dir)
    errors, warnings = print_problems(problems, out)
    return kb, errors, warnings


def cmd_validate(args: argparse.Namespace) -> int:
    kb_dir = args.kb_dir or default_kb_dir()
    kb, errors, warnings = _load_and_check(kb_dir, sys.stdout)
    print(
        f"{_show(kb_dir)}: {_plural(len(kb.entries), 'entry', 'entries')},"
        f" {_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    )
    return 1 if errors else 0


def cmd_compile(args: argparse.Namespace) -> int:
    kb_dir = args.kb_dir or default_kb_dir()
    kb, errors, _ = _load_and_check(kb_dir, sys.stderr)
    if errors:
        print(f"not compiled: fix the {_plural(errors, 'error')} above first", file=sys.stderr)
        return 1
    changed = compile_kb(kb, args.out)
    # What Rasa is trained on: the default language only (bot.kb.compile).
    compiled = training_examples(kb)
    examples = sum(len(e) for e in compiled.values())
    state = "wrote" if changed else "unchanged:"
    print(
        f"{state} {_show(args.out)} ({len(compiled)} entries, {examples} phrasings in {kb.default_language})"
    )
    if sync_domain(args.domain):
        print(f"wrote {_show(args.domain)} (responses from the text catalogue, bot/texts)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    names = {}
    for item in args.department_name:
        dep_id, sep, name = item.partition("=")
        if not sep or not dep_id.strip() or not name.strip():
            print(f"--department-name must look like ID=NAME, got {item!r}", file=sys.stderr)
            return 2
        names[dep_id.strip()] = name.strip()
    if not args.file.is_file():
        print(f"{_show(args.file)}: file not found", file=sys.stderr)
        return 2
    written, problems = import_file(
        args.file,
        args.out,
        merge=args.merge,
        fmt=args.format,
        department_names=names,
        default_language=args.default_language,
    )
    errors, _ = print_problems(sort_problems(problems), sys.stderr)
    if errors:
        print(f"nothing imported: {_plural(errors, 'error')}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {_show(path)}")
    if not written:
        print("nothing to change: the KB already holds this content")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    kb_dir = args.kb_dir or default_kb_dir()
    kb, problems = load_kb(kb_dir)
    if problems:
        print(f"({_plural(len(problems), 'problem')} while reading; see `kb validate`)", file=sys.stderr)
    languages = kb.languages
    dep_ids = list(dict.fromkeys([*kb.departments, *(e.department for e in kb.entries)]))

    print(f"{'department':<24} {'entries':>7} {'phrasings':>9}")
    for dep_id in dep_ids:
        entries = kb.entries_for(dep_id)
        print(f"{dep_id:<24} {len(entries):>7} {sum(e.phrasing_count() for e in entries):>9}")
    total = sum(e.phrasing_count() for e in kb.entries)
    print(f"{'total':<24} {len(kb.entries):>7} {total:>9}")

    if kb.entries:
        width = max(24, *(len(e.id) for e in kb.entries))
        print()
        print(f"{'entry':<{width}} " + " ".join(f"{lang:>4}" for lang in languages) + f" {'total':>5}")
        for entry in sorted(kb.entries, key=lambda e: (e.department, e.id)):
            counts = " ".join(f"{len(entry.questions.get(lang, [])):>4}" for lang in languages)
            print(f"{entry.id:<{width}} {counts} {entry.phrasing_count():>5}")
        print()
        print_language_coverage(kb, sys.stdout)
    return 0


def language_coverage(kb: KnowledgeBase) -> dict[str, tuple[int, int, int]]:
    """Per language: entries with questions in it, with an answer in it, and with both.

    "Both" is what a citizen writing in that language can be answered from; the other two
    counts show the half-done entries ``kb validate`` reports.
    """
    coverage = {}
    for lang in kb.languages:
        asked = {e.id for e in kb.entries if any(q.strip() for q in e.questions.get(lang, []))}
        answered = {e.id for e in kb.entries if e.answer.get(lang, "").strip()}
        coverage[lang] = (len(asked), len(answered), len(asked & answered))
    return coverage


def print_language_coverage(kb: KnowledgeBase, out: TextIO) -> None:
    coverage = language_coverage(kb)
    print(f"{'language':<24} {'questions':>9} {'answer':>7} {'both':>5}", file=out)
    for lang, (asked, answered, both) in coverage.items():
        print(f"{lang:<24} {asked:>9} {answered:>7} {both:>5}", file=out)
    for lang, (_, _, both) in coverage.items():
        print(f"{lang}: {both} of {_plural(len(kb.entries), 'entry', 'entries')}", file=out)
