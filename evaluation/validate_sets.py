"""Validate the evaluation sets evaluation/heldout.tsv and evaluation/dev.tsv.

Checks:
  * header is exactly `text<TAB>expected<TAB>category`, 3 non-empty fields per line;
  * `expected` is a KB entry id (for `faq`) or `ESCALATE` (for every other category);
  * category is one of faq, complaint, report_problem, personal_case, request_human,
    out_of_scope, kb_gap;
  * no duplicate text inside a file, no text shared between the two files
    (case-insensitive, whitespace-normalised);
  * no text equals a KB phrasing, an NLU training example (data/nlu/intents.yml) or a
    generated FAQ example (data/nlu/faq.yml);
  * near-copies (difflib ratio >= NEAR) between the two files, inside a file, or against a
    KB phrasing / training example are listed as errors.

Prints counts per category and the number of distinct KB entries covered.
Run from the repository root:  python evaluation/validate_sets.py
Exit code 1 on any error.
"""

from __future__ import annotations

import csv
import difflib
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FILES = {"heldout": ROOT / "evaluation" / "heldout.tsv", "dev": ROOT / "evaluation" / "dev.tsv"}
CATEGORIES = ["faq", "complaint", "report_problem", "personal_case", "request_human", "out_of_scope", "kb_gap"]
NEAR = 0.85
MIN_ROWS = {"heldout": 240, "dev": 200}
MIN_ENTRIES = 60


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load_kb() -> tuple[set[str], list[str]]:
    ids, phrasings = set(), []
    for path in sorted((ROOT / "knowledge_base").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in data.get("entries", []) or []:
            ids.add(entry["id"])
            for qs in (entry.get("questions") or {}).values():
                phrasings.extend(qs)
    return ids, phrasings


def load_nlu_examples() -> list[str]:
    examples = []
    for name in ("intents.yml", "faq.yml"):
        path = ROOT / "data" / "nlu" / name
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for block in data.get("nlu", []) or []:
            for line in (block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    # strip entity annotations: [text](entity) -> text
                    examples.append(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line[2:]))
    return examples


def read_tsv(path: Path, errors: list[str]) -> list[tuple[str, str, str]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "text\texpected\tcategory":
        errors.append(f"{path.name}: bad header {lines[:1]!r}")
    for n, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            errors.append(f"{path.name}:{n}: expected 3 non-empty fields, got {parts!r}")
            continue
        rows.append((parts[0], parts[1], parts[2]))
    return rows


def near(a: str, b: str) -> bool:
    # The two cheap upper bounds rule out almost every pair before the costly ratio().
    matcher = difflib.SequenceMatcher(None, a, b)
    return matcher.real_quick_ratio() >= NEAR and matcher.quick_ratio() >= NEAR and matcher.ratio() >= NEAR


def main() -> int:
    errors: list[str] = []
    kb_ids, kb_phrasings = load_kb()
    nlu = load_nlu_examples()
    reference = {norm(t): t for t in kb_phrasings + nlu}
    data = {name: read_tsv(path, errors) for name, path in FILES.items()}

    for name, rows in data.items():
        seen: dict[str, int] = {}
        for i, (text, expected, cat) in enumerate(rows, start=2):
            where = f"{name}.tsv:{i}"
            if cat not in CATEGORIES:
                errors.append(f"{where}: unknown category {cat!r}")
            if cat == "faq" and expected not in kb_ids:
                errors.append(f"{where}: faq row with unknown KB id {expected!r}")
            if cat != "faq" and expected != "ESCALATE":
                errors.append(f"{where}: {cat} row must expect ESCALATE, got {expected!r}")
            key = norm(text)
            if key in seen:
                errors.append(f"{where}: duplicate of line {seen[key]}: {text!r}")
            seen[key] = i
            if key in reference:
                errors.append(f"{where}: copies a KB phrasing / training example: {text!r}")
        if len(rows) < MIN_ROWS[name]:
            errors.append(f"{name}: only {len(rows)} rows (need >= {MIN_ROWS[name]})")
        entries = {e for _, e, c in rows if c == "faq"}
        if len(entries) < MIN_ENTRIES:
            errors.append(f"{name}: only {len(entries)} distinct KB entries (need >= {MIN_ENTRIES})")

    held = {norm(t) for t, _, _ in data["heldout"]}
    for text, _, _ in data["dev"]:
        if norm(text) in held:
            errors.append(f"dev/heldout share a text: {text!r}")

    # near-copies
    ref_norm = list(reference)
    all_rows = [(name, norm(t)) for name, rows in data.items() for t, _, _ in rows]
    for idx, (name, t) in enumerate(all_rows):
        for ref in ref_norm:
            if near(t, ref):
                errors.append(f"{name}: near-copy of a KB phrasing / training example: {t!r} ~ {ref!r}")
        for name2, t2 in all_rows[idx + 1:]:
            if t != t2 and near(t, t2):
                errors.append(f"near-copies ({name} / {name2}): {t!r} ~ {t2!r}")

    for name, rows in data.items():
        counts = Counter(c for _, _, c in rows)
        entries = Counter(e for _, e, c in rows if c == "faq")
        total = len(rows)
        print(f"{name}.tsv: {total} messages")
        for cat in CATEGORIES:
            print(f"  {cat:15s} {counts[cat]:4d}  ({100 * counts[cat] / total:4.1f}%)")
        print(f"  escalate total  {total - counts['faq']:4d}")
        print(f"  distinct KB entries covered: {len(entries)} of {len(kb_ids)}")
        missing = sorted(kb_ids - set(entries))
        if missing:
            print(f"  entries not covered: {', '.join(missing)}")
    overlap = {e for _, e, c in data["heldout"] if c == "faq"} | {e for _, e, c in data["dev"] if c == "faq"}
    print(f"entries covered by either file: {len(overlap)} of {len(kb_ids)}")

    if errors:
        print(f"\n{len(errors)} error(s):")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
