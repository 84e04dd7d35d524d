from __future__ import annotations

import re

import pytest
from hypothesis import given, settings

from bot.tickets.ids import CHECK_SYMBOLS, SYMBOLS, extract_ticket_ids, is_valid, new_ticket_id, normalize
from tests.tickets.strategies import ticket_ids

DISPLAY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{2}[0-9A-HJKMNP-TV-Z*~$=U]$")


def _sample(n: int = 60) -> list[str]:
    return [new_ticket_id() for _ in range(n)]


def test_new_ids_have_display_form_and_are_valid() -> None:
    for ticket_id in _sample(500):
        assert DISPLAY.match(ticket_id), ticket_id
        assert is_valid(ticket_id)
        assert normalize(ticket_id) == ticket_id


def test_ids_spread_over_the_whole_40_bit_space() -> None:
    """Not "100,000 IDs never repeat": with 2**40 IDs, a repeat among 100,000 comes
    about once in 220 runs (the birthday bound), which made that test flaky. The
    store retries a repeat (tests/tickets/test_service.py); what must hold here is
    that every data symbol is drawn uniformly, so the space really is 40 bits.
    Expected repeats here: 0.0045; three or more happen once in ~10**8 runs.
    """
    generated = [new_ticket_id() for _ in range(100_000)]
    assert len(generated) - len(set(generated)) <= 2
    data = [ticket_id.replace("-", "")[:8] for ticket_id in generated]
    for position in range(8):
        counts = {symbol: 0 for symbol in SYMBOLS}
        for ticket_id in data:
            counts[ticket_id[position]] += 1
        # 3125 expected per symbol, standard deviation ~55: 10 sigma either way.
        assert all(2575 < count < 3675 for count in counts.values()), (position, counts)


def test_known_check_symbols() -> None:
    # The check symbol is the 40-bit value mod 37, from "0-9A-Z minus ILOU" + "*~$=U".
    assert is_valid("000-000-000")  # 0
    assert is_valid("000-000-011")  # 1
    assert is_valid("000-000-10*")  # 32 -> first extra symbol
    assert is_valid("000-000-14U")  # 1*32 + 4 = 36 -> last extra symbol
    assert is_valid("000-000-150")  # 1*32 + 5 = 37 -> wraps to 0
    assert is_valid("000-000-010") is False
    assert normalize("000-000-14u") == "000-000-14U"


def test_every_single_substitution_is_rejected() -> None:
    for ticket_id in _sample():
        compact = ticket_id.replace("-", "")
        for position in range(9):
            alphabet = CHECK_SYMBOLS if position == 8 else SYMBOLS
            for symbol in alphabet:
                if symbol == compact[position]:
                    continue
                typo = compact[:position] + symbol + compact[position + 1 :]
                assert not is_valid(typo), (ticket_id, typo)


def test_every_adjacent_transposition_is_rejected() -> None:
    for ticket_id in _sample():
        compact = ticket_id.replace("-", "")
        for position in range(8):
            a, b = compact[position], compact[position + 1]
            if a == b:
                continue
            typo = compact[:position] + b + a + compact[position + 2 :]
            assert not is_valid(typo), (ticket_id, typo)


@pytest.mark.parametrize(
    "typed",
    ["{}", "{lower}", "{compact}", "{compact_lower}", " {spaced} ", "{extra_dashes}", "{en_dash}"],
)
def test_normalize_accepts_how_people_type(typed: str) -> None:
    ticket_id = new_ticket_id()
    compact = ticket_id.replace("-", "")
    raw = typed.format(
        ticket_id,
        lower=ticket_id.lower(),
        compact=compact,
        compact_lower=compact.lower(),
        spaced=ticket_id.replace("-", " "),
        extra_dashes="--" + ticket_id.replace("-", " - ") + "-",
        en_dash=ticket_id.replace("-", "\u2013"),
    )
    assert normalize(raw) == ticket_id
    assert is_valid(raw)


def test_normalize_applies_crockford_aliases() -> None:
    assert normalize("oil-ol1-il0") == "011-011-110"
    assert normalize("OoO-ooo-Oi1") == "000-000-011"
    assert is_valid("OoO-ooo-Oi1")


@pytest.mark.parametrize(
    "raw", ["", "K7M-39Q-XD", "K7M-39Q-XD2X", "K7U-39Q-XD2", "K7M-39Q-X*2", "K7M_39Q_XD2", "K7M.39Q.XD2"]
)
def test_normalize_refuses_non_ids(raw: str) -> None:
    assert normalize(raw) is None
    assert not is_valid(raw)


def _id_with_a_digit() -> str:
    """A random ID that is not letters only (those are prose when lowercase, see below)."""
    return next(i for i in iter(new_ticket_id, None) if any(c.isdigit() for c in i))


def test_extract_finds_ids_in_free_text() -> None:
    first, second = _id_with_a_digit(), new_ticket_id()
    text = f"Hi, about ticket {first.lower()} and also ({second.replace('-', '')}), thanks!"
    found = extract_ticket_ids(text)
    assert [f.canonical for f in found] == [first, second]
    assert all(f.valid for f in found)
    assert found[0].raw == first.lower()
    assert text[found[1].start : found[1].end] == second.replace("-", "")


def test_extract_reports_mistyped_ids() -> None:
    ticket_id = new_ticket_id()
    compact = ticket_id.replace("-", "")
    wrong = next(s for s in SYMBOLS if s != compact[4] and s.isdigit())
    typo = f"{compact[:3]}-{compact[3]}{wrong}{compact[5]}-{compact[6:]}"
    [found] = extract_ticket_ids(f"my ticket is {typo}.")
    assert found.valid is False
    assert found.raw == typo
    assert found.canonical == typo


def test_extract_prefers_the_valid_grouping_among_words() -> None:
    ticket_id = new_ticket_id()
    [found] = extract_ticket_ids(f"the big {ticket_id.replace('-', ' ')} ok")
    assert found.canonical == ticket_id and found.valid


@pytest.mark.parametrize(
    "text",
    [
        "the big dog ran far",  # 3-3-3 words, no digits
        "something happened yesterday",  # 9-letter words
        "call 555 123 4567",  # too long a last group
        "order ABC-K7M-39Q-XD2",  # dash-joined run longer than an ID
        "2026-11-23 at 10:45",
        "",
    ],
)
def test_extract_ignores_prose_and_other_codes(text: str) -> None:
    assert extract_ticket_ids(text) == []


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(display=ticket_ids(letters_only=True).filter(lambda i: i[-1].isalpha()))
def test_extract_letters_only_id_needs_valid_check_and_not_lowercase(display: str) -> None:
    candidate = display.replace("-", "")
    assert [f.canonical for f in extract_ticket_ids(f"ticket {display}")] == [display]
    assert extract_ticket_ids(f"ticket {display.lower()}") == []
    # A status query is about a ticket: there the lowercase ID is one, however typed.
    for typed in (display.lower(), candidate.lower(), display.lower().replace("-", " ")):
        found = extract_ticket_ids(f"status {typed}", expecting_id=True)
        assert [(f.canonical, f.valid) for f in found] == [(display, True)], typed
    # ...but still only with a right check symbol.
    wrong = next(c for c in CHECK_SYMBOLS if c.isalpha() and c != candidate[-1])
    assert extract_ticket_ids(f"status {candidate[:-1].lower()}{wrong.lower()}", expecting_id=True) == []


def test_extract_expecting_an_id_still_ignores_prose() -> None:
    assert extract_ticket_ids("what is the status of my application?", expecting_id=True) == []


def test_extract_handles_check_only_symbols_at_the_end() -> None:
    assert [f.canonical for f in extract_ticket_ids("id 000-000-14U please")] == ["000-000-14U"]
    ids_ending_in_star = [i for i in (new_ticket_id() for _ in range(3000)) if i.endswith("*")]
    assert ids_ending_in_star
    [found] = extract_ticket_ids(f"id {ids_ending_in_star[0]}!")
    assert found.valid
