"""Rasa component that matches a message to a knowledge-base entry and makes
the final answer-or-escalate call.

Real knowledge bases have one to three phrasings per entry, far too few to
train a classifier per entry. Nearest-neighbour search over sentence
embeddings of the phrasings does well from few examples, and its similarity is
a calibrated-enough signal to refuse when nothing in the KB fits. The result is
published in Rasa's own ``response_selector`` format, so the retrieval intent
``faq/<entry id>`` and the ``utter_faq/<entry id>`` responses work as Rasa
documents them, plus a ``kb_match`` block with the raw scores for auditing and
threshold tuning.

An entry's score blends four signals, because each misses what the others
catch: the closest official phrasing (embedding), the closest sentence of the
answer and the answer as a whole (embeddings; citizens often ask in the
answer's words, or about one detail the answer mentions, not in the official
question's words) and word overlap with the entry (TF-IDF, for names and
terms a small embedding model blurs). The weights were chosen on the
development set (docs/understanding.md). Overlap of character n-grams
(``lexical_analyzer: char_wb``) survives misspellings ("cancell", "dirct
debbit"), ranked better on the dev set, but answered more on-topic questions
the KB does not cover on the held-out set, so words stay the default.

Runs inside the Rasa environment (numpy, scikit-learn, the encoder).
"""

from __future__ import annotations

import logging
import pickle
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from bot.nlu.decision import FAQ_INTENT, Thresholds, decide
from bot.nlu.featurizer import FEATURIZER_ALIAS, sentence_embedding, shared_encoder

logger = logging.getLogger(__name__)

KB_MATCH_KEY = "kb_match"
RANKING_SIZE = 5


@dataclass
class _Index:
    """Everything the matcher learns from the training data; pickled into the model as one file."""

    entry_ids: List[str]
    responses: Dict[str, List[Dict[str, Any]]]
    phrasing_vectors: np.ndarray
    phrasing_positions: np.ndarray  # entry position of each phrasing
    sentence_vectors: np.ndarray
    sentence_positions: np.ndarray  # entry position of each answer sentence
    answer_vectors: np.ndarray
    tfidf: Optional[TfidfVectorizer]
    entry_terms: Any
    intent_vectors: np.ndarray
    intent_names: List[str]
    intent_positions: np.ndarray  # position in intent_names of each intent example
    kb_vocabulary: Set[str] = field(default_factory=set)

    @classmethod
    def build(cls, *, entry_ids: List[str], phrasing_entries: List[str], sentence_entries: List[str],
              intent_labels: List[str], **arrays: Any) -> "_Index":
        position = {entry: i for i, entry in enumerate(entry_ids)}
        intent_names = sorted(set(intent_labels))
        intent_position = {name: i for i, name in enumerate(intent_names)}
        return cls(
            entry_ids=entry_ids,
            phrasing_positions=np.array([position[e] for e in phrasing_entries], dtype=np.int64),
            sentence_positions=np.array([position[e] for e in sentence_entries], dtype=np.int64),
            intent_names=intent_names,
            intent_positions=np.array([intent_position[n] for n in intent_labels], dtype=np.int64),
            **arrays,
        )

    @classmethod
    def empty(cls) -> "_Index":
        return cls.build(
            entry_ids=[], phrasing_entries=[], sentence_entries=[], intent_labels=[], responses={},
            phrasing_vectors=np.zeros((0, 0), np.float32), sentence_vectors=np.zeros((0, 0), np.float32),
            answer_vectors=np.zeros((0, 0), np.float32), tfidf=None, entry_terms=None,
            intent_vectors=np.zeros((0, 0), np.float32), kb_vocabulary=set(),
        )

    def best_per_entry(self, similarities: np.ndarray, positions: np.ndarray, floor: float) -> np.ndarray:
        best = np.full(len(self.entry_ids), floor, dtype=np.float32)
        np.maximum.at(best, positions, similarities)
        return best


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class KnowledgeBaseMatcher(GraphComponent, IntentClassifier):
    @classmethod
    def required_components(cls) -> List[Type]:
        # It reads DIET's prediction at inference, but Rasa checks requirements against
        # the training graph too, where this component trains independently of DIET.
        return []

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        defaults = Thresholds()
        return {
            "retrieval_intent": FAQ_INTENT,
            "featurizer_alias": FEATURIZER_ALIAS,
            # None: reuse the vectors of the featurizer named by featurizer_alias. A directory
            # (relative to the project): the matcher encodes with that model itself, so the
            # KB scores can come from a stronger encoder than the one DIET is trained on.
            "model_dir": None,
            "meta_threshold": defaults.meta_threshold,
            "kb_threshold": defaults.kb_threshold,
            "kb_margin": defaults.kb_margin,
            "kb_override": defaults.kb_override,
            "knn_veto_margin": defaults.knn_veto_margin,
            "unknown_word_penalty": defaults.unknown_word_penalty,
            # Weights of the answer-text similarity and of the TF-IDF overlap in an entry's score.
            "answer_weight": 0.3,
            "answer_sentence_weight": 1.0,
            "lexical_weight": 0.6,
            # "word": word uni- and bigrams; "char_wb": character 3-5-grams within word boundaries.
            "lexical_analyzer": "word",
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        index: Optional[_Index] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._index = index or _Index.empty()
        self._thresholds = Thresholds(
            **{name: float(config[name]) for name in Thresholds.__dataclass_fields__}
        )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KnowledgeBaseMatcher":
        _lexical_vectorizer(config["lexical_analyzer"])  # a typo in config.yml fails before training starts
        return cls(config, model_storage, resource)

    def _featurizer_vector(self, message: Message) -> Optional[np.ndarray]:
        """The featurizer's sentence vector, when the matcher shares the featurizer's encoder."""
        if self._config["model_dir"] is not None:
            return None
        return sentence_embedding(message, self._config["featurizer_alias"])

    # -- training -----------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        prefix = self._config["retrieval_intent"]
        encode = shared_encoder(self._config["model_dir"]).encode

        def vectors_of(examples: List[Message]) -> np.ndarray:
            # Reuse the featurizer's vectors when they come from the same encoder; else encode
            # all examples in one batched call.
            vectors = [self._featurizer_vector(example) for example in examples]
            if any(v is None for v in vectors):
                return encode([example.get(TEXT) for example in examples])
            return _matrix(vectors)

        phrasings, labels, intent_examples, intent_labels = [], [], [], []
        for example in training_data.intent_examples:
            key = example.get(INTENT_RESPONSE_KEY)
            if example.get(INTENT) == prefix and key:
                phrasings.append(example)
                labels.append(key.split("/", 1)[1])
            elif example.get(INTENT):
                intent_examples.append(example)
                intent_labels.append(example.get(INTENT))
        texts = [example.get(TEXT) for example in phrasings]

        responses = {}
        for key, variants in training_data.responses.items():
            name = key.split("/", 1)
            if len(name) == 2 and name[0] == f"utter_{prefix}":
                responses[name[1]] = variants

        entry_ids = sorted(set(labels))
        answers = [_answer_text(responses.get(entry, [])) for entry in entry_ids]
        sentence_entries, sentences = [], []
        for entry, answer in zip(entry_ids, answers):
            for sentence in _sentences(answer):
                sentence_entries.append(entry)
                sentences.append(sentence)
        questions_by_entry: Dict[str, List[str]] = {entry: [] for entry in entry_ids}
        for text, label in zip(texts, labels):
            questions_by_entry[label].append(text)
        documents = [" ".join(questions_by_entry[e] * 2) + " " + a for e, a in zip(entry_ids, answers)]
        tfidf = _lexical_vectorizer(self._config["lexical_analyzer"])
        entry_terms = tfidf.fit_transform(documents + texts)[: len(documents)] if documents else None

        self._index = _Index.build(
            entry_ids=entry_ids,
            responses=responses,
            phrasing_vectors=vectors_of(phrasings),
            phrasing_entries=labels,
            sentence_vectors=encode(sentences),
            sentence_entries=sentence_entries,
            answer_vectors=encode(answers),
            tfidf=tfidf if documents else None,
            entry_terms=entry_terms,
            intent_vectors=vectors_of(intent_examples),
            intent_labels=intent_labels,
            kb_vocabulary={stem for document in documents for stem in _content_stems(document)},
        )
        with self._model_storage.write_to(self._resource) as directory:
            with open(directory / "index.pkl", "wb") as handle:
                pickle.dump(self._index, handle)
        logger.info("KnowledgeBaseMatcher indexed %d phrasings of %d entries", len(labels), len(entry_ids))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "KnowledgeBaseMatcher":
        try:
            with model_storage.read_from(resource) as directory:
                with open(directory / "index.pkl", "rb") as handle:
                    index = pickle.load(handle)  # written by train() above, inside the model archive
        except ValueError:
            logger.warning("KnowledgeBaseMatcher has no trained index; every FAQ will escalate")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, index)

    # -- inference ----------------------------------------------------------------

    def _intent_similarity(self, vector: np.ndarray) -> Dict[str, float]:
        index = self._index
        if not index.intent_names:
            return {}
        best = np.full(len(index.intent_names), -1.0, dtype=np.float32)
        np.maximum.at(best, index.intent_positions, index.intent_vectors @ vector)
        return {name: float(value) for name, value in zip(index.intent_names, best)}

    def _kb_ranking(self, vector: np.ndarray, text: str) -> Tuple[List[tuple], float]:
        index = self._index
        if not index.entry_ids:
            return [], 0.0
        weights = {
            name: float(self._config[name]) for name in ("answer_weight", "answer_sentence_weight", "lexical_weight")
        }
        question_sim = index.best_per_entry(index.phrasing_vectors @ vector, index.phrasing_positions, -1.0)
        score = question_sim + weights["answer_sentence_weight"] * index.best_per_entry(
            index.sentence_vectors @ vector, index.sentence_positions, 0.0
        )
        score = score + weights["answer_weight"] * (index.answer_vectors @ vector)
        if index.tfidf is not None:
            overlap = (index.tfidf.transform([text]) @ index.entry_terms.T).toarray()[0]
            score = score + weights["lexical_weight"] * overlap
        # Back on the scale of a single cosine similarity, so thresholds stay readable.
        score = score / (1.0 + sum(weights.values()))
        top = np.argsort(-score)[:RANKING_SIZE]
        return [(index.entry_ids[i], float(score[i])) for i in top], float(question_sim.max())

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is None:
                continue
            vector = self._featurizer_vector(message)
            if vector is None:
                vector = shared_encoder(self._config["model_dir"]).encode([text])[0]
            ranking, faq_similarity = self._kb_ranking(vector, text)
            intent_similarity = self._intent_similarity(vector)
            diet = message.get(INTENT) or {}
            diet_name = diet.get(INTENT_NAME_KEY)
            diet_conf = float(diet.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            unknown_words = sum(1 for stem in _content_stems(text) if stem not in self._index.kb_vocabulary)
            decision = decide(
                diet_name, diet_conf, ranking, self._thresholds, faq_similarity, intent_similarity, unknown_words
            )

            intent = {INTENT_NAME_KEY: decision.intent, PREDICTED_CONFIDENCE_KEY: float(decision.confidence)}
            if decision.intent != diet_name:
                message.set(INTENT, intent, add_to_output=True)
                intent_ranking = message.get(INTENT_RANKING_KEY) or []
                message.set(INTENT_RANKING_KEY, [intent] + list(intent_ranking), add_to_output=True)
            if decision.kb_entry:
                message.set(INTENT, intent, add_to_output=True)
                self._set_response_selector(message, decision.kb_entry, decision.confidence, ranking)
            message.set(
                KB_MATCH_KEY,
                {
                    "entry": decision.kb_entry,
                    "reason": decision.reason,
                    "ranking": [{"entry": e, "similarity": round(s, 4)} for e, s in ranking],
                    "diet_intent": diet_name,
                    "diet_confidence": round(diet_conf, 4),
                    "faq_similarity": round(faq_similarity, 4),
                    "unknown_words": unknown_words,
                    "intent_similarity": {k: round(v, 4) for k, v in intent_similarity.items()},
                },
                add_to_output=True,
            )
        return messages

    def _set_response_selector(self, message: Message, entry: str, confidence: float, ranking: List[tuple]) -> None:
        prefix = self._config["retrieval_intent"]
        key = f"{prefix}/{entry}"
        message.set(
            "response_selector",
            {
                "all_retrieval_intents": [prefix],
                prefix: {
                    "response": {
                        "responses": self._index.responses.get(entry, []),
                        "confidence": float(confidence),
                        INTENT_RESPONSE_KEY: key,
                        "utter_action": f"utter_{key}",
                    },
                    "ranking": [
                        {"id": zlib.crc32(e.encode("utf-8")), "confidence": s, INTENT_RESPONSE_KEY: f"{prefix}/{e}"}
                        for e, s in ranking
                    ],
                },
            },
            add_to_output=True,
        )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


def _lexical_vectorizer(analyzer: str) -> TfidfVectorizer:
    if analyzer == "char_wb":
        return TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5))
    if analyzer == "word":
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english")
    raise ValueError(f"KnowledgeBaseMatcher: lexical_analyzer must be 'char_wb' or 'word', not {analyzer!r}")


def _matrix(vectors: List[np.ndarray]) -> np.ndarray:
    return np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)


def _content_stems(text: str) -> List[str]:
    """Content words cut to five letters: a crude stem that lets "recycling" meet "recycle"."""
    words = re.findall(r"[^\W\d_]+", text.casefold())
    return [w[:5] for w in words if len(w) >= 3 and w not in ENGLISH_STOP_WORDS]


def _sentences(text: str) -> List[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if len(s) > 10]


def _answer_text(variants: List[Dict[str, Any]]) -> str:
    """The default-language answer without its link lines (URLs are noise for matching)."""
    for variant in variants:
        if not variant.get("condition"):
            text = variant.get("text") or ""
            return re.sub(r"(?m)^More information.*$", "", text).strip()
    return ""
