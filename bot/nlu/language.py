"""Which language a citizen's message is in, decided once on arrival and stored with it.

The text decides when it can tell. Two readings of it: the words of the message that only one
served language's vocabulary has (a vote; the vocabularies are the city's own texts in each
language, so they know "bache" and "padrón"), and lingua-language-detector (its models ship in
the wheel, nothing is fetched), restricted to the languages the city serves, which knows the
languages in general. A clear vote decides; otherwise lingua does (results/languages.md has
the accuracy of both together). A short message
("ok", "2", "gracias", a ticket ID) says little, so the decision falls back in this order:

1. the text itself, when it can tell even so: the words that only one language's vocabulary
   has (the KB's questions and answers, the intent examples and the system texts in that
   language: "hola", "basura", "pothole") vote, or lingua is very sure ("buenos días");
2. the citizen's previous language: the same person rarely changes language mid-conversation,
   and a "2" answering a Spanish "¿Se refiere a...?" is Spanish;
3. what the channel says (Telegram's ``language_code``, an e-mail's Content-Language, the web
   chat's browser language): a device setting, not the person, so it comes after the person;
4. the KB's main language.

Mixed messages ("hola, my bin was not collected") go to the language most of their telling
words are in; without a clear vote, to lingua's leading language when it leads clearly, and to
the previous language when the two are close. The detector is built at
start-up (``LanguageDetector.build``), never at import; with one language configured it is
never consulted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.kb.languages import available_languages
from bot.nlu.lexical import fold

Source = Literal["text", "previous", "channel", "default"]

# The words only one language's vocabulary has vote; a language with at least this share of the
# votes decides ("bache en mi calle", "necesito renew my passport": lingua alone, trained on
# general text, calls both English; "where is the ayuntamiento" is English).
VOTE_SHARE = 0.6
# At this many words or more the text decides (unless it is mixed, below).
LONG_WORDS = 3
# Shorter than that, lingua decides only when it is at least this sure (relative confidence
# among the configured languages; greetings and "gracias" clear it, "ok" and "no" do not).
SHORT_CONFIDENCE = 0.95
# A long message whose leading language scores below this is mixed: the previous language
# decides, when it is one of the two.
MIXED_CONFIDENCE = 0.6


@dataclass(frozen=True)
class LanguageChoice:
    language: str
    # What decided: the text, the citizen's previous language, the channel's hint, the default.
    source: Source
    # lingua's confidence in ``language`` (0 when the text did not decide).
    confidence: float = 0.0


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """The folded words of ``texts`` (bot.nlu.lexical.fold), without numbers."""
    return frozenset(w for t in texts for w in fold(t).split() if not any(c.isdigit() for c in w))


def _telling(text: str) -> str:
    """The message without what says nothing about its language: IDs, numbers, codes and chat
    commands ("/start", "/status K7M-39Q-XD2"), which are the same in every language."""
    return " ".join(t for t in text.split() if not t.startswith("/") and not any(c.isdigit() for c in t))


def _words(text: str) -> list[str]:
    return fold(_telling(text)).split()


def served_languages(configured: Sequence[str], kb_dir: str | Path, default: str) -> list[str]:
    """The languages the city serves, main language first: ``CRM_LANGUAGES`` when set, else the
    main language and every language with a ``knowledge_base/languages/<code>.yml`` file."""
    found = list(configured) or [default, *available_languages(kb_dir)]
    return list(dict.fromkeys([default, *found]))


class LanguageDetector:
    def __init__(self, languages: Sequence[str], default: str, lingua_detector: object | None = None,
                 vocabularies: Mapping[str, frozenset[str]] | None = None) -> None:
        self.languages = tuple(dict.fromkeys([default, *languages]))
        self.default = default
        self._lingua = lingua_detector
        vocabularies = vocabularies or {}
        # Per language, the words no other served language's vocabulary has.
        self._own = {
            lang: vocabularies.get(lang, frozenset()).difference(
                *(vocabularies.get(other, frozenset()) for other in self.languages if other != lang))
            for lang in self.languages
        }

    @classmethod
    def build(cls, languages: Sequence[str], default: str,
              vocabularies: Mapping[str, frozenset[str]] | None = None) -> LanguageDetector:
        """lingua limited to ``languages`` (its models load here, at start-up: about a second);
        a language lingua does not know raises ``ValueError`` naming it."""
        languages = list(dict.fromkeys([default, *languages]))
        if len(languages) < 2:
            return cls(languages, default)
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = []
        for code in languages:
            iso = getattr(IsoCode639_1, code.upper(), None)
            if iso is None:
                raise ValueError(f"CRM_LANGUAGES: lingua-language-detector does not know the language {code!r}")
            codes.append(iso)
        built = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_preloaded_language_models().build()
        return cls(languages, default, built, vocabularies)

    def _known(self, code: str | None) -> str | None:
        return code if code in self.languages else None

    def confidences(self, text: str) -> list[tuple[str, float]]:
        """(language, lingua's relative confidence), best first; empty without a detector."""
        if self._lingua is None or not text.strip():
            return []
        values = self._lingua.compute_language_confidence_values(text[:2000])
        return [(v.language.iso_code_639_1.name.lower(), float(v.value)) for v in values]

    def choose(self, text: str, *, previous: str | None = None, hint: str | None = None) -> LanguageChoice:
        previous, hint = self._known(previous), self._known(hint)
        if self._lingua is None:
            return LanguageChoice(self.default, "default")
        words = _words(text)
        votes = {lang: sum(w in own for w in words) for lang, own in self._own.items()}
        cast = sum(votes.values())
        if cast:
            leader, vote = max(votes.items(), key=lambda item: item[1])
            if vote / cast >= VOTE_SHARE and sum(v == vote for v in votes.values()) == 1:
                return LanguageChoice(leader, "text", vote / cast)
        # lingua reads the original words (accents and punctuation help it), not IDs or numbers.
        ranked = self.confidences(_telling(text)) if words else []
        if ranked:
            best, confidence = ranked[0]
            second = ranked[1][0] if len(ranked) > 1 else None
            if len(words) >= LONG_WORDS:
                if confidence >= MIXED_CONFIDENCE or previous not in (best, second):
                    return LanguageChoice(best, "text", confidence)
            elif confidence >= SHORT_CONFIDENCE:
                return LanguageChoice(best, "text", confidence)
        if previous is not None:
            return LanguageChoice(previous, "previous")
        if hint is not None:
            return LanguageChoice(hint, "channel")
        return LanguageChoice(self.default, "default")
