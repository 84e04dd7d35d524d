"""Spelling correction of citizen messages before the NLU reads them.

Citizens type on phones: "wen is the libary open", "pasport renewall". The
matcher's embeddings and word overlap both lose the entry when its key word is
misspelt, so a message the KB answers ends up as a ticket. SymSpell (symspellpy)
corrects a word from a frequency dictionary in microseconds; its bundled English
dictionary is joined by the words of the training data, so the city's own names
and terms ("Eastbrook", "Northgate", "bulky") are never "corrected" and are the
preferred correction when a misspelling is as close to them as to plain English.

What is never touched, because a wrong correction there costs more than a missed
one: numbers and anything with a digit, ticket IDs (found with the same rules as
the ticket-status action, so the action still sees every ID the citizen typed),
URLs and e-mail addresses, hyphenated or dotted tokens, words shorter than three
letters, all-capital words (acronyms; unless the whole message is shouted) and
words the vocabulary knows. A capitalised word inside a sentence may be a name
the vocabulary lacks (a street, a person), so it is corrected only to a word of
the training data, never to plain English. Three- and four-letter words are
corrected at edit distance 1 only: at distance 2 nearly every short word is
close to some other word.

Text-speak is a small fixed table (``TEXT_SPEAK``) applied before correction,
because "u", "pls" or "wen" are either too short for correction or real words.

Pure Python plus symspellpy, no Rasa: ``bot/nlu/spelling.py`` is the Rasa wrapper.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from symspellpy import SymSpell, Verbosity

from bot.tickets.ids import extract_ticket_ids

ENGLISH_DICTIONARY = "frequency_dictionary_en_82_765.txt"
MAX_EDIT_DISTANCE = 2
# 5 instead of symspellpy's default 7: a third of the delete index (build 1 s, not 4 s; a
# pickle of 7 MB, not 18 MB) and the same suggestions at edit distance 2.
PREFIX_LENGTH = 5
# A word of the KB is as likely as a common English word (the ~1000th most frequent of the
# dictionary is ~8e7): it wins ties against rarer English words ("debbit" -> "debit", not
# "debbie") but not against the most common ones ("teh" -> "the", not "tea").
KB_WORD_COUNT = 100_000_000
# Words of other training data (intent examples) are known, so never changed, but are no
# preferred correction: some are deliberate misspellings ("custmer") or text-speak.
KNOWN_WORD_COUNT = 1
# A rare English word one edit from a KB word is taken for a slip on the KB word ("wast" ->
# "waste", "pice" -> "price"): below this count (rank ~30,000 of 82,765) English words are
# archaic, technical or names, far less likely in a message to the city than the slip.
RARE_WORD_COUNT = 500_000

# Text-speak and missing apostrophes: what people type for what they mean. Kept small: an
# entry must be unambiguous in a message to the city ("y" or "n" are not).
TEXT_SPEAK: Dict[str, str] = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "pleas": "please",
    "wen": "when",
    "wat": "what",
    "wot": "what",
    "thx": "thanks",
    "thnx": "thanks",
    "ty": "thank you",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "tmrw": "tomorrow",
    "2day": "today",
    "b4": "before",
    "abt": "about",
    "cuz": "because",
    "coz": "because",
    "ppl": "people",
    "im": "I'm",
    "dont": "don't",
    "cant": "can't",
    "wont": "won't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "isnt": "isn't",
}

_CHUNK = re.compile(r"\S+")
# Leading and trailing punctuation of a chunk, and its core.
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")
_POSSESSIVE = re.compile(r"^([A-Za-z]+)(['\u2019]s)$")
_REPEATED_MARKS = re.compile(r"([?!])[?!]+")
_TRAINING_WORD = re.compile(r"[a-z]+(?:['\u2019][a-z]+)?")
_NAME = re.compile(r"(?<=[\w,;:] )([A-Z][a-z]+)\b")


def english_dictionary_path() -> Path:
    """symspellpy's own English frequency dictionary, installed with the package."""
    return Path(str(importlib.resources.files("symspellpy") / ENGLISH_DICTIONARY))


def training_words(texts: Iterable[str]) -> List[str]:
    """Lowercase words of the given texts, sorted, each once."""
    return sorted({word for text in texts for word in _TRAINING_WORD.findall(text.lower())})


def training_names(texts: Iterable[str]) -> List[str]:
    """Lowercase words the texts capitalise inside a sentence (names: "Northgate", "Road")."""
    return sorted({match.group(1).lower() for text in texts for match in _NAME.finditer(text)})


@dataclass(frozen=True)
class Correction:
    original: str
    corrected: str


class Speller:
    def __init__(self, symspell: SymSpell, kb_words: Iterable[str], kb_names: Iterable[str] = ()) -> None:
        self._symspell = symspell
        self._kb_words = frozenset(kb_words)
        self._kb_names = frozenset(kb_names)

    @classmethod
    def build(cls, kb_words: Iterable[str] = (), known_words: Iterable[str] = (),
              kb_names: Iterable[str] = ()) -> "Speller":
        """The English dictionary plus the KB's words (preferred) and other known words."""
        symspell = _empty_symspell()
        symspell.load_dictionary(str(english_dictionary_path()), term_index=0, count_index=1, encoding="utf-8")
        kb_words = list(kb_words)
        for word in kb_words:
            symspell.create_dictionary_entry(word, max(0, KB_WORD_COUNT - symspell.words.get(word, 0)))
        for word in known_words:
            if word not in symspell.words:
                symspell.create_dictionary_entry(word, KNOWN_WORD_COUNT)
        return cls(symspell, kb_words, kb_names)

    @classmethod
    def from_pickle(cls, data: bytes, kb_words: Iterable[str], kb_names: Iterable[str] = ()) -> Optional["Speller"]:
        """A speller from ``to_pickle``'s bytes; None if this symspellpy cannot read them."""
        symspell = _empty_symspell()
        if not symspell.load_pickle(data, from_bytes=True):
            return None
        return cls(symspell, kb_words, kb_names)

    def to_pickle(self) -> bytes:
        return self._symspell.save_pickle(to_bytes=True)

    def knows(self, word: str) -> bool:
        return word.lower() in self._symspell.words

    # -- correction -----------------------------------------------------------------

    def correct(self, text: str) -> Tuple[str, List[Correction]]:
        """The text with text-speak expanded and unknown words corrected, and what changed.

        Everything but the changed words (spacing, punctuation, case) is kept, except that
        runs of "?" and "!" become one mark.
        """
        if text.startswith("/"):
            return text, []  # Rasa's "/intent{...}" payload syntax, not words
        protected = [(found.start, found.end) for found in extract_ticket_ids(text, expecting_id=True)]
        chunks = list(_CHUNK.finditer(text))
        shouted = _is_shouted(chunk.group() for chunk in chunks)
        pieces, corrections, position = [], [], 0
        sentence_start = True
        for chunk in chunks:
            pieces.append(text[position:chunk.start()])
            position = chunk.end()
            raw = chunk.group()
            replacement = raw
            if not any(start < chunk.end() and chunk.start() < end for start, end in protected):
                lead, core, trail = _EDGES.match(raw).groups()
                fixed = self._correct_core(core, sentence_start or bool(lead and lead[-1] in "\"'("), shouted)
                if fixed != core:
                    corrections.append(Correction(core, fixed))
                    replacement = lead + fixed + trail
            pieces.append(replacement)
            sentence_start = raw[-1] in ".!?"
        pieces.append(text[position:])
        corrected = _REPEATED_MARKS.sub(r"\1", "".join(pieces))
        return corrected, corrections

    def _correct_core(self, core: str, sentence_start: bool, shouted: bool) -> str:
        lower = core.lower()
        if lower in TEXT_SPEAK:
            expansion = TEXT_SPEAK[lower]
            return expansion[0].upper() + expansion[1:] if core[0].isupper() and len(core) > 1 else expansion
        possessive = _POSSESSIVE.match(core)
        if possessive:
            return self._correct_word(possessive.group(1), sentence_start, shouted) + possessive.group(2)
        if not _WORD.fullmatch(core):
            return core  # digits, hyphens, dots, @, apostrophes inside: codes, URLs, addresses, contractions
        return self._correct_word(core, sentence_start, shouted)

    def _correct_word(self, word: str, sentence_start: bool, shouted: bool) -> str:
        lower = word.lower()
        if len(word) < 3:
            return word
        if lower in self._symspell.words:
            return self._rare_word_slip(word)
        if word.isupper() and not shouted:
            return word  # an acronym or a code
        capitalised = word[0].isupper() and not word.isupper()
        distance = 1 if len(word) <= 4 else MAX_EDIT_DISTANCE
        suggestions = self._symspell.lookup(lower, Verbosity.ALL, max_edit_distance=distance)
        # One edit to any word, two to a KB word only: an unknown word two edits from plain
        # English is more often a real word the dictionary lacks ("chatbot", "apostille").
        suggestions = [s for s in suggestions if s.distance == 1 or s.term in self._kb_words]
        if capitalised and not sentence_start:
            # Maybe a name the vocabulary lacks ("Merrow Street"): only a name of the KB may
            # replace it ("Northgat" -> "Northgate"), not a word ("Borrow").
            suggestions = [s for s in suggestions if s.term in self._kb_names]
        if not suggestions:
            return word
        # The closest word; among those the KB's (the message is likely about the KB's topics:
        # "fne" -> "fine", not "one"), then the most frequent.
        term = min(suggestions, key=lambda s: (s.distance, s.term not in self._kb_words, -s.count)).term
        if word.isupper():
            return term  # a shouted message is lowercased where corrected
        if word[0].isupper():
            return term[0].upper() + term[1:]
        return term


    def _rare_word_slip(self, word: str) -> str:
        """The KB word a rare English word is one slip away from, else the word itself."""
        lower = word.lower()
        count = self._symspell.words[lower]
        if len(word) < 4 or lower in self._kb_words or count <= KNOWN_WORD_COUNT or count >= RARE_WORD_COUNT:
            return word  # short, the KB's own, known from the training data, or common English
        if word.isupper() or (word[0].isupper() and not word.isupper()):
            return word  # an acronym or maybe a name: a real word stays
        slips = [s for s in self._symspell.lookup(lower, Verbosity.ALL, max_edit_distance=1)
                 if s.distance == 1 and s.term in self._kb_words]
        return max(slips, key=lambda s: s.count).term if slips else word


def _empty_symspell() -> SymSpell:
    return SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=PREFIX_LENGTH)


def _is_shouted(chunks: Iterable[str]) -> bool:
    """Most words in capitals: the capitals say nothing about acronyms."""
    words = [w for chunk in chunks for w in _WORD.findall(chunk) if len(w) > 1]
    return len(words) >= 3 and sum(w.isupper() for w in words) > len(words) / 2
