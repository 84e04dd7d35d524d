"""Hypothesis strategies for ticket IDs, shared by the tests that feed IDs through text handling."""

from __future__ import annotations

from hypothesis import strategies as st

from bot.tickets.ids import CHECK_SYMBOLS, DATA_LENGTH, SYMBOLS, is_valid

LETTERS = "".join(s for s in SYMBOLS if s.isalpha())


def _display(data: str) -> str:
    check = next(c for c in CHECK_SYMBOLS if is_valid(data + c))
    return f"{data[:3]}-{data[3:6]}-{data[6:]}{check}"


def ticket_ids(*, letters_only: bool = False) -> st.SearchStrategy[str]:
    """Valid IDs in display form (``ABC-DEF-GH`` plus the check symbol); ``letters_only``:
    data symbols are letters (the check symbol may still be a digit or a sign)."""
    symbols = LETTERS if letters_only else SYMBOLS
    return st.text(st.sampled_from(symbols), min_size=DATA_LENGTH, max_size=DATA_LENGTH).map(_display)
