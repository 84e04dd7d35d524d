"""Seeded typo generator: a copy of an evaluation set as citizens type it on a phone.

Each message gets one or two edits: a character dropped, doubled, swapped with
its neighbour or replaced by a key next to it on a QWERTY keyboard, or a word
replaced by its text-speak ("you" -> "u", "please" -> "pls", "when" -> "wen").
Independently, about half the messages lose their capitals and half their final
punctuation. Ticket IDs, anything with a digit, URLs and e-mail addresses are
never touched: a changed ID is a different ticket, not a typo of the question.

Every message has its own random stream, seeded by the seed and the message, so
a row's variant does not depend on the rows before it and the file is the same
on every run:

    python -m bot.nlu.typos evaluation/dev.tsv evaluation/dev_typos.tsv --seed 18

Pure Python, no Rasa.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, TypeVar

from bot.tickets.ids import extract_ticket_ids

DEFAULT_SEED = 18

# The most common text-speak, the inverse of what the normalizer expands (bot.nlu.speller).
TEXT_SPEAK = {
    "you": "u",
    "your": "ur",
    "are": "r",
    "please": "pls",
    "when": "wen",
    "what": "wat",
    "thanks": "thx",
    "tomorrow": "2moro",
    "because": "cuz",
    "people": "ppl",
    "don't": "dont",
    "can't": "cant",
    "i'm": "im",
}

_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict:
    """Keys left, right, above and below each letter (a slightly slanted QWERTY grid)."""
    position = {key: (r, c) for r, row in enumerate(_ROWS) for c, key in enumerate(row)}
    near = {}
    for key, (r, c) in position.items():
        cells = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        near[key] = "".join(_ROWS[i][j] for i, j in cells if 0 <= i < len(_ROWS) and 0 <= j < len(_ROWS[i]))
    return near


KEYBOARD_NEIGHBOURS = _neighbours()

_CHUNK = re.compile(r"\S+")
_EDITABLE_WORD = re.compile(r"[A-Za-z]{4,}")
_FINAL_MARKS = re.compile(r"[?.!]+$")

T = TypeVar("T")


def _protected_spans(text: str) -> List[Tuple[int, int]]:
    spans = [(found.start, found.end) for found in extract_ticket_ids(text, expecting_id=True)]
    for chunk in _CHUNK.finditer(text):
        word = chunk.group()
        if any(ch.isdigit() for ch in word) or "@" in word or "://" in word or word.lower().startswith("www."):
            spans.append((chunk.start(), chunk.end()))
    return spans


def _free(span: Tuple[int, int], protected: Sequence[Tuple[int, int]]) -> bool:
    return all(span[1] <= start or span[0] >= end for start, end in protected)


def _misspell(word: str, rng: random.Random) -> str:
    """One keyboard slip inside a word of four letters or more (never its first letter)."""
    i = rng.randrange(1, len(word))
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    near = KEYBOARD_NEIGHBOURS.get(word[i].lower())
    if not near:
        return word[:i] + word[i + 1:]
    key = rng.choice(near)
    return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1:]


def typo_variant(text: str, rng: random.Random) -> str:
    """``text`` with one or two slips or text-speak words, maybe lowercased and unpunctuated."""
    edits = rng.choice((1, 1, 2))
    for _ in range(edits):
        protected = _protected_spans(text)
        speak = [m for m in re.finditer(r"[A-Za-z']+", text)
                 if m.group().lower() in TEXT_SPEAK and _free(m.span(), protected)]
        words = [m for m in _EDITABLE_WORD.finditer(text) if _free(m.span(), protected)]
        if speak and (not words or rng.random() < 0.3):
            m = rng.choice(speak)
            text = text[:m.start()] + TEXT_SPEAK[m.group().lower()] + text[m.end():]
        elif words:
            m = rng.choice(words)
            text = text[:m.start()] + _misspell(m.group(), rng) + text[m.end():]
    if rng.random() < 0.5:
        protected = _protected_spans(text)
        text = "".join(ch if not _free((i, i + 1), protected) else ch.lower() for i, ch in enumerate(text))
    if rng.random() < 0.5:
        marks = _FINAL_MARKS.search(text)
        if marks and _free(marks.span(), _protected_spans(text)):
            text = text[:marks.start()].rstrip()
    return text


def typo_cases(cases: Iterable[T], seed: int = DEFAULT_SEED) -> List[T]:
    """A typo'd copy of evaluation cases (anything with a ``text`` field, e.g. Case in tools/evaluation/understanding.py)."""
    return [replace(case, text=typo_variant(case.text, random.Random(f"{seed}:{case.text}"))) for case in cases]


def write_typo_set(source: Path, target: Path, seed: int = DEFAULT_SEED) -> int:
    """Copy an evaluation TSV with every ``text`` typo'd, other columns as they are; the row count."""
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        row["text"] = typo_variant(row["text"], random.Random(f"{seed}:{row['text']}"))
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t", lineterminator="\n",
                                quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.typos", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    count = write_typo_set(args.source, args.target, args.seed)
    print(f"{count} messages written to {args.target} (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
