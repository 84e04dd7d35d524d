"""The seeded typo generator (bot/nlu/typos.py) and the typo'd dev set it wrote."""

from __future__ import annotations

import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.nlu.typos import KEYBOARD_NEIGHBOURS, TEXT_SPEAK, typo_cases, typo_variant, write_typo_set
from bot.tickets.ids import extract_ticket_ids
from tests.tickets.strategies import ticket_ids
from tools.evaluation.understanding import Case, load_cases

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "evaluation" / "dev.tsv"
DEV_TYPOS = REPO / "evaluation" / "dev_typos.tsv"


def _distance(a: str, b: str) -> int:
    """Damerau (optimal string alignment) edit distance."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_same_seed_same_variants_and_other_seeds_differ() -> None:
    cases = load_cases(DEV)
    first, again = typo_cases(cases, seed=7), typo_cases(cases, seed=7)
    assert first == again
    assert typo_cases(cases, seed=8) != first
    # A row's variant depends on the seed and the row only, not on the rows before it.
    assert typo_cases(cases[5:], seed=7) == first[5:]
    assert [(c.expected, c.category) for c in first] == [(c.expected, c.category) for c in cases]


def test_every_message_changes_by_about_one_or_two_slips() -> None:
    cases = load_cases(DEV)
    typod = typo_cases(cases, seed=18)
    changed = 0
    for case, variant in zip(cases, typod):
        changed += case.text != variant.text
        # Capitals and final punctuation aside, a few edits (text-speak counts as a word's edits).
        plain = re.sub(r"[?.!]+$", "", case.text.lower()).strip()
        noisy = re.sub(r"[?.!]+$", "", variant.text.lower()).strip()
        assert _distance(plain, noisy) <= 12, (case.text, variant.text)
    assert changed >= 0.95 * len(cases)
    slips = sum(_distance(re.sub(r"[?.!]+$", "", c.text.lower()), re.sub(r"[?.!]+$", "", v.text.lower())) > 0
                for c, v in zip(cases, typod))
    assert slips >= 0.9 * len(cases)


def test_slips_are_keyboard_like_and_text_speak_is_used() -> None:
    rng = random.Random(3)
    variants = [typo_variant("please tell me when you collect the garden waste", rng) for _ in range(300)]
    assert any(" u " in v or v.startswith("pls") or "wen " in v for v in variants)
    assert any("gardne" in v or "garde n" in v or "gardn" in v or "gardeen" in v or "waaste" in v or "wsste" in v
               for v in variants)
    assert all(set(KEYBOARD_NEIGHBOURS[k]) <= set("qwertyuiopasdfghjklzxcvbnm") for k in KEYBOARD_NEIGHBOURS)
    assert "s" in KEYBOARD_NEIGHBOURS["a"] and "q" in KEYBOARD_NEIGHBOURS["a"] and "p" not in KEYBOARD_NEIGHBOURS["a"]
    assert TEXT_SPEAK["you"] == "u" and TEXT_SPEAK["please"] == "pls" and TEXT_SPEAK["when"] == "wen"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(ticket=ticket_ids(), rng=st.randoms(use_true_random=False))
def test_ticket_ids_numbers_and_addresses_are_never_touched(ticket: str, rng: random.Random) -> None:
    text = f"Hello, what is the status of ticket {ticket}? Ring 0151 555 2290 or mail jo@eastbrook.example"
    variant = typo_variant(text, rng)
    assert ticket in variant
    assert [f.canonical for f in extract_ticket_ids(variant, expecting_id=True)] == [ticket]
    assert "0151 555 2290" in variant and "jo@eastbrook.example" in variant


# An ID typed lower case, letters only, is found by the status action: kept as typed too.
@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(ticket=ticket_ids(letters_only=True).map(str.lower).filter(lambda i: not i[-1].isdigit()),
       rng=st.randoms(use_true_random=False))
def test_a_lowercase_letters_only_id_is_never_touched(ticket: str, rng: random.Random) -> None:
    assert extract_ticket_ids(ticket, expecting_id=True)
    assert ticket in typo_variant(f"status of my request {ticket} please", rng)


def test_the_committed_typo_set_is_dev_tsv_through_the_generator(tmp_path: Path) -> None:
    written = tmp_path / "dev_typos.tsv"
    assert write_typo_set(DEV, written) == len(load_cases(DEV))
    assert written.read_bytes() == DEV_TYPOS.read_bytes()
    typod, cases = load_cases(DEV_TYPOS), load_cases(DEV)
    assert [c.text for c in typod] == [c.text for c in typo_cases(cases)]
    assert all(isinstance(c, Case) for c in typod)
