"""Folding a short command as citizens type it, so one word list serves every language.

A citizen on a phone writes "Sí", "si", "SI!" or "¡Baja!" for the same thing; the command
parsers (privacy, data rights, subscriptions, linking, "Was it solved?", "Do you mean ...?")
compare folded text against folded word lists, so a list holds each word once, without its
accents. Pure functions on strings: no catalogue, no settings, safe for every layer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

# Around a whole command: Spanish opens "¡" and "¿"; a final "." or "!" is common everywhere.
_LEADING = "¡¿"
_TRAILING = ".!"


def strip_accents(text: str) -> str:
    """"Notifícame" -> "Notificame"; "ñ" becomes "n" too, which no command word depends on."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def fold(text: str) -> str:
    """A command as compared: no accents, no case, single spaces, no opening "¡¿" or final ".!"."""
    folded = " ".join(strip_accents(text).casefold().split())
    return folded.lstrip(_LEADING).rstrip(_TRAILING).strip()


def fold_table(by_language: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """One lookup from the per-language tables ({"en": {word: meaning}, "es": ...}), keys folded.

    Every language is accepted whatever the message's language: a Spanish speaker may write
    "stop" and an English one "baja". A word meaning two things in two languages is a mistake
    in the tables, so it raises rather than letting the last language win."""
    merged: dict[str, str] = {}
    for words in by_language.values():
        for word, meaning in words.items():
            key = fold(word)
            if merged.get(key, meaning) != meaning:
                raise ValueError(f"command word {word!r} means both {merged[key]!r} and {meaning!r}")
            merged[key] = meaning
    return merged


def fold_words(by_language: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The union of the per-language word lists, folded."""
    return frozenset(fold(word) for words in by_language.values() for word in words)
