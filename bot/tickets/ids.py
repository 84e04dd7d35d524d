"""Ticket IDs that citizens can read aloud, type on a phone, and mistype safely.

An ID is 8 random Crockford base32 symbols (40 bits from ``secrets``: IDs cannot
be guessed or enumerated to read other people's tickets) plus one Crockford
mod-37 check symbol, shown as ``XXX-XXX-XXX``. Because 37 is prime, the check
catches every single wrong symbol and every swap of two neighbours, so a typo
becomes "that ID looks mistyped" instead of "not found" or, worse, someone
else's ticket.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# Crockford base32: no I, L, O, U, so no 1/I/L or 0/O confusion.
SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Check symbols: the 32 above plus five extra for values 32..36.
CHECK_SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"

DATA_LENGTH = 8
LENGTH = DATA_LENGTH + 1

# What people type for what they mean (Crockford's decoding rules).
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Hyphens, the dashes phones autocorrect them to, and whitespace are all just separators.
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
_SEPARATORS = re.compile(f"[\\s{_DASHES}]+")
_VALUE = {symbol: value for value, symbol in enumerate(SYMBOLS)}


def _check_symbol(data: str) -> str:
    value = 0
    for symbol in data:
        value = value * 32 + _VALUE[symbol]
    return CHECK_SYMBOLS[value % 37]


def _display(compact: str) -> str:
    return f"{compact[0:3]}-{compact[3:6]}-{compact[6:9]}"


def new_ticket_id() -> str:
    """A fresh random ID in display form, e.g. ``K7M-39Q-XD2``."""
    data = "".join(secrets.choice(SYMBOLS) for _ in range(DATA_LENGTH))
    return _display(data + _check_symbol(data))


def _compact(raw: str) -> str:
    return _SEPARATORS.sub("", raw).upper().translate(_ALIASES)


def normalize(raw: str) -> str | None:
    """Canonical display form of what the citizen typed, or None if it is not 9 ID symbols.

    Says nothing about the check symbol; see ``is_valid``.
    """
    compact = _compact(raw)
    if len(compact) != LENGTH:
        return None
    if any(symbol not in _VALUE for symbol in compact[:DATA_LENGTH]) or compact[-1] not in CHECK_SYMBOLS:
        return None
    return _display(compact)


def is_valid(raw: str) -> bool:
    """True when ``raw`` normalizes to an ID whose check symbol is right."""
    canonical = normalize(raw)
    if canonical is None:
        return False
    compact = canonical.replace("-", "")
    return _check_symbol(compact[:DATA_LENGTH]) == compact[-1]


@dataclass(frozen=True)
class ExtractedId:
    raw: str  # exactly as it appears in the text
    canonical: str  # display form after aliasing; may hold non-ID symbols when mistyped
    valid: bool
    start: int
    end: int


# A word-like run of ASCII letters/digits, optionally ending in a check-only symbol.
_TOKEN = re.compile(r"(?<![\w*~$=])[0-9A-Za-z]+[*~$=]?(?![\w*~$=])")
# What may separate the groups of one ID: a dash (maybe spaced) or spaces, not a line break.
_GAP = re.compile(f"[ \\t]*[{_DASHES}][ \\t]*|[ \\t]+")
# Ways an ID is split into groups: as shown, typed in one go, or with one separator missing.
_GROUPINGS = {(9,), (3, 3, 3), (6, 3), (3, 6)}


def _candidates(text: str) -> list[tuple[int, int]]:
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]

    def gap(i: int) -> re.Match[str] | None:
        """How token i is joined to token i+1 (None: not joined)."""
        if i < 0 or i + 1 >= len(tokens):
            return None
        return _GAP.fullmatch(text, tokens[i][1], tokens[i + 1][0])

    def dashed(i: int) -> bool:
        joint = gap(i)
        return joint is not None and not joint.group().isspace()

    spans = []
    for i in range(len(tokens)):
        for n in (1, 2, 3):
            if i + n > len(tokens) or (n > 1 and gap(i + n - 2) is None):
                break
            group = tokens[i : i + n]
            lengths = tuple(end - start for start, end in group)
            # A check-only symbol is allowed at the very end only; and a dash-joined run
            # longer than an ID (ABC-K7M-39Q-XD2) is some other code, not a ticket ID.
            if (
                lengths in _GROUPINGS
                and all(text[end - 1].isalnum() for _, end in group[:-1])
                and not dashed(i - 1)
                and not dashed(i + n - 1)
            ):
                spans.append((group[0][0], group[-1][1]))
    return spans


def _is_reportable(raw: str, valid: bool, expecting_id: bool) -> bool:
    """Whether a candidate is worth mentioning to the citizen.

    Anything with a digit is (a mistyped ID there deserves "looks mistyped").
    Letters only is usually prose ("the big dog"), so it counts only when its
    check symbol is right and it was not typed all lowercase, unless the
    message is known to be about a ticket: about 5% of IDs are letters only,
    and "status kmxtrwzqa" must find them.
    """
    if any(c.isdigit() for c in raw):
        return True
    return valid and (expecting_id or not raw.islower())


def extract_ticket_ids(text: str, *, expecting_id: bool = False) -> list[ExtractedId]:
    """Ticket-ID-looking tokens in free text, in order of appearance, valid or not.

    ``expecting_id``: the message asks about a ticket (a status query), so a
    lowercase letters-only token with a right check symbol is taken as an ID.

    When groupings overlap (``the big K7M 39Q XD2``), valid readings win, then
    the one with more digits, then fewer lowercase letters, then the earliest.
    """
    scored = []
    for start, end in _candidates(text):
        raw = text[start:end]
        compact = _compact(raw)
        valid = is_valid(compact)
        if not _is_reportable(raw, valid, expecting_id):
            continue
        rank = (not valid, -sum(c.isdigit() for c in raw), sum(c.islower() for c in raw), start)
        scored.append((rank, ExtractedId(raw, _display(compact), valid, start, end)))

    chosen: list[ExtractedId] = []
    for _, candidate in sorted(scored, key=lambda item: item[0]):
        if all(candidate.end <= other.start or candidate.start >= other.end for other in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda found: found.start)
