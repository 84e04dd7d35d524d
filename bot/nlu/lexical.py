"""Understanding a language the Rasa model and the sentence encoders do not know.

Both encoders and DIET are English-only, and no multilingual encoder ships on PyPI here. A
citizen writing in another configured language is understood by the KB's own phrasings in
that language and the language's intent examples (bot.kb.languages), compared by TF-IDF:

- features: character n-grams of 2 to 5 inside word boundaries (typos and inflections keep
  most of them) plus word unigrams and bigrams (word order and whole words), after folding
  case and accents and dropping punctuation, so "¿Cuándo" and "cuando" are one word;
- tf is sublinear and each block (characters, words) is L2-normalised and weighted, so a
  score is a weighted sum of two cosines in [0, 1];
- a query's features the index has never seen still count in its norm: a message about
  something the KB never mentions scores low against every entry, which is what the
  hand-over threshold needs (the ranking is unchanged).

An entry scores by the mean of its best phrasing's score and its phrasings' centroid's
(``scoring``: "best", "centroid" or "mean"), an intent likewise by its examples. On the English
dev set (the same model built from the English KB) the mean ranked the right entry first for
73.2% of in-KB messages, the centroid 72.3%, the best phrasing 70.5% (results/languages.md
records the comparison on every dev set). ``decide`` turns the scores into the three outcomes of
docs/understanding.md (answer, ask, hand over) plus small talk and ticket status, with
per-language thresholds from a calibration file (``python -m tools tune-language <lang>``).
Pure numpy; built at start-up (or in a test), never at import.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np

from bot.kb.languages import SMALL_TALK_INTENTS, STATUS_INTENT, LanguageIntents
from bot.kb.schema import KnowledgeBase
from bot.nlu.decision import MAX_OFFERED

Outcome = Literal["answer", "ask", "hand_over", "small_talk", "ticket_status"]
Scoring = Literal["best", "centroid", "mean"]
FAQ_INTENT = "faq"
# Longer messages are cut before featurising: the first 2,000 characters say what it is about,
# and a pasted document must not cost seconds.
MAX_CHARS = 2000
RANKED = 5
CHAR_NGRAMS = (2, 5)
CALIBRATION_SUFFIX = ".calibration.json"
_NON_WORD = re.compile(r"[\W_]+")
# Ticket IDs as citizens type them (bot.tickets.ids: three groups of three, dashes optional, any
# case), with a digit, so that words like "solicitud" are not taken for one.
_TICKET_ID = re.compile(r"(?<![\w-])(?=[\w-]*\d)[0-9A-Za-z]{3}-?[0-9A-Za-z]{3}-?[0-9A-Za-z]{3}(?![\w-])")
TICKET_ID_WORD = "ticketid"


@dataclass(frozen=True)
class LexicalThresholds:
    """Scores are on the lexical model's own scale (a weighted cosine), not the encoders'."""

    # The best entry answers at this score when it leads the runner-up by answer_margin.
    answer_threshold: float = 0.6
    answer_margin: float = 0.05
    # Below that, at least this: the top entries (within ask_window of the best) are offered.
    ask_threshold: float = 0.35
    ask_window: float = 0.15
    # An intent (complaint, greeting, ...) wins when its best example scores at least
    # intent_floor and beats the best entry by intent_margin (negative: may trail it).
    intent_margin: float = 0.0
    intent_floor: float = 0.25


@dataclass(frozen=True)
class LexicalScores:
    """What the index says about one message, before any threshold: the tuner replays these."""

    # (entry id, score), best first, the RANKED best entries.
    ranking: tuple[tuple[str, float], ...]
    # Every intent with examples -> its best example's score.
    intents: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LexicalDecision:
    outcome: Outcome
    entry_id: str | None
    offered_entry_ids: tuple[str, ...]
    # "faq" for answer/ask, the winning intent otherwise (None: nothing in the KB came close).
    intent: str | None
    confidence: float
    # The best entries' scores, best first (for the record and the agent's suggestions).
    scores: Mapping[str, float]
    intent_scores: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""


def fold(text: str) -> str:
    """Case, accents and punctuation folded away: "¿Cuándo?" -> "cuando"; emoji disappear."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_CHARS])
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_NON_WORD.sub(" ", bare).split())


def features(text: str) -> tuple[Counter[str], Counter[str]]:
    """(character n-gram counts, word unigram and bigram counts) of a message.

    A ticket ID is one word, the same in every message ("estado K7M-39Q-XD2" and the example
    "estado 5DY-NT4-EH4" share it): its own characters would only dilute the rest."""
    words = fold(_TICKET_ID.sub(f" {TICKET_ID_WORD} ", text[:MAX_CHARS])).split()
    chars: Counter[str] = Counter()
    low, high = CHAR_NGRAMS
    for word in words:
        padded = f" {word} "
        for n in range(low, high + 1):
            if len(padded) < n:
                break
            chars.update(padded[i:i + n] for i in range(len(padded) - n + 1))
    tokens: Counter[str] = Counter(f"w:{w}" for w in words)
    tokens.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
    return chars, tokens


class TfidfIndex:
    """Sparse TF-IDF vectors of a fixed set of documents, scored against a query by cosine.

    Stored as an inverted index (per feature, the documents that have it and their weights),
    so scoring a message touches only its own features.
    """

    def __init__(self, documents: Sequence[str], word_weight: float = 0.4) -> None:
        self.word_weight = word_weight
        self.size = len(documents)
        counted = [features(d) for d in documents]
        self.vocabulary: dict[str, int] = {}
        df: Counter[int] = Counter()
        doc_ids = [self._ids(block) for pair in counted for block in pair]
        for ids in doc_ids:
            df.update(ids)
        df_array = np.zeros(len(self.vocabulary), dtype=np.float64)
        for feature_id, count in df.items():
            df_array[feature_id] = count
        self.idf = np.log((1.0 + self.size) / (1.0 + df_array)) + 1.0
        self.unseen_idf = math.log(1.0 + self.size) + 1.0
        rows, cols, vals = [], [], []
        for doc, (chars, tokens) in enumerate(counted):
            vector = self.vector(chars, tokens)
            rows += [doc] * len(vector)
            cols += list(vector)
            vals += list(vector.values())
        order = np.argsort(np.asarray(cols, dtype=np.int64), kind="stable")
        self._docs = np.asarray(rows, dtype=np.int64)[order]
        self._vals = np.asarray(vals, dtype=np.float64)[order]
        counts = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.vocabulary))
        self._indptr = np.concatenate([[0], np.cumsum(counts)])

    def _ids(self, block: Counter[str]) -> list[int]:
        return [self.vocabulary.setdefault(f, len(self.vocabulary)) for f in block]

    def vector(self, chars: Counter[str], tokens: Counter[str]) -> dict[int, float]:
        """Feature id -> weight; features never seen count in the norm only (module docstring)."""
        vector: dict[int, float] = {}
        for block, weight in ((chars, 1.0 - self.word_weight), (tokens, self.word_weight)):
            known: dict[int, float] = {}
            norm = 0.0
            for feature, count in block.items():
                feature_id = self.vocabulary.get(feature)
                idf = self.unseen_idf if feature_id is None else float(self.idf[feature_id])
                value = (1.0 + math.log(count)) * idf
                norm += value * value
                if feature_id is not None:
                    known[feature_id] = value
            if norm > 0.0:
                scale = math.sqrt(weight) / math.sqrt(norm)
                for feature_id, value in known.items():
                    vector[feature_id] = vector.get(feature_id, 0.0) + value * scale
        return vector

    def similarities(self, text: str) -> np.ndarray:
        """The cosine of the message with every document (zeros for an empty message)."""
        scores = np.zeros(self.size, dtype=np.float64)
        for feature_id, weight in self.vector(*features(text)).items():
            start, end = self._indptr[feature_id], self._indptr[feature_id + 1]
            scores[self._docs[start:end]] += weight * self._vals[start:end]
        return scores

    def document_vector(self, text: str) -> dict[int, float]:
        return self.vector(*features(text))


@dataclass
class _Groups:
    """Documents grouped by what they stand for (an entry, an intent), contiguous."""

    names: list[str]
    starts: np.ndarray
    # The norm of each group's summed document vectors (the centroid's denominator).
    sum_norms: np.ndarray

    def reduce(self, scores: np.ndarray, scoring: Scoring) -> np.ndarray:
        if not self.names:
            return np.zeros(0)
        best = np.maximum.reduceat(scores, self.starts)
        if scoring == "best":
            return best
        centroid = np.add.reduceat(scores, self.starts) / np.maximum(self.sum_norms, 1e-12)
        return centroid if scoring == "centroid" else (best + centroid) / 2.0


class LexicalUnderstanding:
    """One language's understanding: its KB phrasings and intent examples in one index."""

    def __init__(self, language: str, groups: Sequence[tuple[str, str, Sequence[str]]],
                 thresholds: LexicalThresholds | None = None, *, scoring: Scoring = "mean",
                 intent_scoring: Scoring = "mean", word_weight: float = 0.4) -> None:
        """``groups``: (kind "entry" or "intent", name, texts); prefer ``build``."""
        self.language = language
        self.thresholds = thresholds or LexicalThresholds()
        self.scoring: Scoring = scoring
        self.intent_scoring: Scoring = intent_scoring
        documents: list[str] = []
        layout: dict[str, list[tuple[str, int, int]]] = {"entry": [], "intent": []}
        for kind in layout:  # entries' documents first, then the intents': each kind contiguous
            for group_kind, name, texts in groups:
                texts = [t for t in dict.fromkeys(texts) if fold(t)]
                if group_kind == kind and texts:
                    layout[kind].append((name, len(documents), len(texts)))
                    documents.extend(texts)
        self.index = TfidfIndex(documents, word_weight=word_weight)
        self._entries = self._groups(layout["entry"], documents)
        self._intents = self._groups(layout["intent"], documents)
        self._entry_docs = sum(n for _, _, n in layout["entry"])

    def _groups(self, layout: list[tuple[str, int, int]], documents: list[str]) -> _Groups:
        norms = []
        for _, start, count in layout:
            total: dict[int, float] = {}
            for text in documents[start:start + count]:
                for feature_id, value in self.index.document_vector(text).items():
                    total[feature_id] = total.get(feature_id, 0.0) + value
            norms.append(math.sqrt(sum(v * v for v in total.values())))
        return _Groups([n for n, _, _ in layout], np.asarray([s for _, s, _ in layout], dtype=np.int64),
                       np.asarray(norms, dtype=np.float64))

    @classmethod
    def build(cls, kb: KnowledgeBase, language: str, intents: LanguageIntents | None = None,
              thresholds: LexicalThresholds | None = None, **options: object) -> LexicalUnderstanding:
        """From the KB's questions in ``language`` (entries without any are no candidates)."""
        groups: list[tuple[str, str, Sequence[str]]] = [
            ("entry", e.id, e.questions[language]) for e in kb.entries if e.questions.get(language)
        ]
        if intents is not None:
            groups += [("intent", name, examples) for name, examples in intents.intents.items()]
        return cls(language, groups, thresholds, **options)  # type: ignore[arg-type]

    @property
    def entry_ids(self) -> list[str]:
        return list(self._entries.names)

    @property
    def intent_names(self) -> list[str]:
        return list(self._intents.names)

    def score(self, text: str) -> LexicalScores:
        similarities = self.index.similarities(text)
        entry_docs = self._entry_docs
        entry_scores = self._entries.reduce(similarities[:entry_docs], self.scoring)
        top = np.argsort(-entry_scores, kind="stable")[:RANKED]
        ranking = tuple((self._entries.names[i], round(float(entry_scores[i]), 6)) for i in top)
        intent_scores: dict[str, float] = {}
        if self._intents.names:
            shifted = _Groups(self._intents.names, self._intents.starts - entry_docs, self._intents.sum_norms)
            reduced = shifted.reduce(similarities[entry_docs:], self.intent_scoring)
            intent_scores = {n: round(float(s), 6) for n, s in zip(self._intents.names, reduced)}
        return LexicalScores(ranking, intent_scores)

    def understand(self, text: str) -> LexicalDecision:
        return decide(self.score(text), self.thresholds)


def decide(scores: LexicalScores, thresholds: LexicalThresholds) -> LexicalDecision:
    """The outcome for these scores: an intent that wins, else answer, ask or hand over."""
    ranking = [(e, s) for e, s in scores.ranking if s > 0.0]
    top_entry, top = ranking[0] if ranking else (None, 0.0)
    second = ranking[1][1] if len(ranking) > 1 else 0.0
    common = {"scores": dict(scores.ranking), "intent_scores": dict(scores.intents)}
    intent, intent_score = max(scores.intents.items(), key=lambda item: item[1], default=(None, 0.0))
    if intent is not None and intent_score >= thresholds.intent_floor and intent_score >= top + thresholds.intent_margin:
        outcome: Outcome = ("small_talk" if intent in SMALL_TALK_INTENTS
                            else "ticket_status" if intent == STATUS_INTENT else "hand_over")
        return LexicalDecision(outcome, None, (), intent, intent_score, reason="intent", **common)
    if top_entry is not None and top >= thresholds.answer_threshold and top - second >= thresholds.answer_margin:
        return LexicalDecision("answer", top_entry, (), FAQ_INTENT, top, reason="kb_match", **common)
    if top_entry is not None and top >= thresholds.ask_threshold:
        floor = max(thresholds.ask_threshold, top - thresholds.ask_window)
        offered = tuple(e for e, s in ranking[:MAX_OFFERED] if s >= floor)
        return LexicalDecision("ask", None, offered, FAQ_INTENT, top, reason="kb_unsure", **common)
    return LexicalDecision("hand_over", None, (), None, top, reason="not_in_kb", **common)


# -- the calibration file ------------------------------------------------------------------

def calibration_path(kb_dir: str | Path, language: str) -> Path:
    return Path(kb_dir) / "languages" / f"{language}{CALIBRATION_SUFFIX}"


def load_thresholds(path: str | Path) -> LexicalThresholds:
    """The calibrated thresholds; the safe defaults when the file is absent.

    A file that is there but wrong raises ``ValueError``: silently answering with defaults a
    city did not choose is worse than a start-up that says which file to fix.
    """
    path = Path(path)
    if not path.is_file():
        return LexicalThresholds()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        values = data["thresholds"]
        known = {f.name for f in fields(LexicalThresholds)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown thresholds {sorted(unknown)}")
        return replace(LexicalThresholds(), **{k: float(v) for k, v in values.items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a calibration file ({exc}); run `python -m tools tune-language`") from exc


def write_calibration(path: str | Path, thresholds: LexicalThresholds, details: Mapping[str, object]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"thresholds": asdict(thresholds), **details}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def from_kb_dir(kb: KnowledgeBase, kb_dir: str | Path, language: str,
                intents: LanguageIntents | None) -> LexicalUnderstanding:
    """What start-up builds: the language's index with its calibrated thresholds."""
    return LexicalUnderstanding.build(kb, language, intents, load_thresholds(calibration_path(kb_dir, language)))


def ranked_ids(ranking: Iterable[tuple[str, float]]) -> tuple[str, ...]:
    return tuple(e for e, _ in ranking)
