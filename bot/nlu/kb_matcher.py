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
question's words) and word overlap with the entry (TF-IDF, for names and terms
a small embedding model blurs). The weights were chosen on the development set
(docs/understanding.md).

Runs inside the Rasa environment (numpy, scikit-learn, the encoder).
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zlib
from typing import Any, Dict, List, Optional, Text, Tuple, Type

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
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vectors: Optional[np.ndarray] = None,
        labels: Optional[List[str]] = None,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
        entry_ids: Optional[List[str]] = None,
        answer_vectors: Optional[np.ndarray] = None,
        tfidf: Optional[TfidfVectorizer] = None,
        entry_terms: Any = None,
        sentence_vectors: Optional[np.ndarray] = None,
        sentence_entries: Optional[List[str]] = None,
        intent_vectors: Optional[np.ndarray] = None,
        intent_labels: Optional[List[str]] = None,
        kb_vocabulary: Optional[List[str]] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._vectors = vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)
        self._labels = labels or []
        self._responses = responses or {}
        self._thresholds = Thresholds(
            meta_threshold=float(config["meta_threshold"]),
            kb_threshold=float(config["kb_threshold"]),
            kb_margin=float(config["kb_margin"]),
            kb_override=float(config["kb_override"]),
            knn_veto_margin=float(config["knn_veto_margin"]),
            unknown_word_penalty=float(config["unknown_word_penalty"]),
        )
        self._entry_ids = entry_ids or sorted(set(self._labels))
        self._answer_vectors = answer_vectors
        self._tfidf = tfidf
        self._entry_terms = entry_terms
        self._sentence_vectors = sentence_vectors
        self._sentence_entries = sentence_entries or []
        self._intent_vectors = intent_vectors
        self._intent_labels = intent_labels or []
        self._kb_vocabulary = set(kb_vocabulary or [])
        self._index_phrasings()

    def _index_phrasings(self) -> None:
        position = {entry: i for i, entry in enumerate(self._entry_ids)}
        self._phrasing_entry = np.array([position[label] for label in self._labels], dtype=np.int64)
        self._sentence_entry = np.array([position[e] for e in self._sentence_entries], dtype=np.int64)
        self._intent_names = sorted(set(self._intent_labels))
        intent_position = {name: i for i, name in enumerate(self._intent_names)}
        self._intent_index = np.array([intent_position[n] for n in self._intent_labels], dtype=np.int64)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KnowledgeBaseMatcher":
        return cls(config, model_storage, resource)

    # -- training -----------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        prefix = self._config["retrieval_intent"]
        texts, labels, vectors = [], [], []
        intent_labels, intent_vectors = [], []
        for example in training_data.intent_examples:
            key = example.get(INTENT_RESPONSE_KEY)
            if example.get(INTENT) != prefix or not key:
                vector = sentence_embedding(example, self._config["featurizer_alias"])
                if example.get(INTENT) and vector is not None:
                    intent_labels.append(example.get(INTENT))
                    intent_vectors.append(vector)
                continue
            texts.append(example.get(TEXT))
            labels.append(key.split("/", 1)[1])
            vectors.append(sentence_embedding(example, self._config["featurizer_alias"]))
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            encoded = shared_encoder(self._config["model_dir"]).encode([texts[i] for i in missing])
            for i, vector in zip(missing, encoded):
                vectors[i] = vector
        matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, 384), np.float32)

        responses = {}
        for key, variants in training_data.responses.items():
            name = key.split("/", 1)
            if len(name) == 2 and name[0] == f"utter_{prefix}":
                responses[name[1]] = variants

        entry_ids = sorted(set(labels))
        answers = [_answer_text(responses.get(entry, [])) for entry in entry_ids]
        answer_vectors = (
            shared_encoder(self._config["model_dir"]).encode(answers)
            if entry_ids
            else np.zeros((0, 384), np.float32)
        )
        sentence_entries, sentences = [], []
        for entry, answer in zip(entry_ids, answers):
            for sentence in _sentences(answer):
                sentence_entries.append(entry)
                sentences.append(sentence)
        sentence_vectors = (
            shared_encoder(self._config["model_dir"]).encode(sentences)
            if sentences
            else np.zeros((0, 384), np.float32)
        )
        questions_by_entry: Dict[str, List[str]] = {entry: [] for entry in entry_ids}
        for text, label in zip(texts, labels):
            questions_by_entry[label].append(text)
        documents = [" ".join(questions_by_entry[e] * 2) + " " + a for e, a in zip(entry_ids, answers)]
        tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english")
        entry_terms = tfidf.fit_transform(documents + texts)[: len(documents)] if documents else None

        kb_vocabulary = sorted({stem for document in documents for stem in _content_stems(document)})
        intent_matrix = np.vstack(intent_vectors).astype(np.float32) if intent_vectors else np.zeros((0, 384), np.float32)
        with self._model_storage.write_to(self._resource) as directory:
            np.save(directory / "vectors.npy", matrix)
            np.save(directory / "answer_vectors.npy", answer_vectors)
            np.save(directory / "sentence_vectors.npy", sentence_vectors)
            np.save(directory / "intent_vectors.npy", intent_matrix)
            (directory / "intent_labels.json").write_text(json.dumps(intent_labels), encoding="utf-8")
            (directory / "kb_vocabulary.json").write_text(json.dumps(kb_vocabulary), encoding="utf-8")
            (directory / "sentence_entries.json").write_text(json.dumps(sentence_entries), encoding="utf-8")
            (directory / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
            (directory / "entries.json").write_text(json.dumps(entry_ids), encoding="utf-8")
            (directory / "responses.json").write_text(json.dumps(responses), encoding="utf-8")
            with open(directory / "tfidf.pkl", "wb") as handle:
                pickle.dump((tfidf, entry_terms), handle)
        self._vectors, self._labels, self._responses = matrix, labels, responses
        self._entry_ids, self._answer_vectors = entry_ids, answer_vectors
        self._tfidf, self._entry_terms = tfidf, entry_terms
        self._sentence_vectors, self._sentence_entries = sentence_vectors, sentence_entries
        self._intent_vectors, self._intent_labels = intent_matrix, intent_labels
        self._kb_vocabulary = set(kb_vocabulary)
        self._index_phrasings()
        logger.info("KnowledgeBaseMatcher indexed %d phrasings of %d entries", len(labels), len(set(labels)))
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
                vectors = np.load(directory / "vectors.npy")
                labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
                responses = json.loads((directory / "responses.json").read_text(encoding="utf-8"))
                # Files added by later versions are optional, so older models still load.
                entry_ids = _read_json(directory / "entries.json")
                answer_vectors = _read_npy(directory / "answer_vectors.npy")
                sentence_vectors = _read_npy(directory / "sentence_vectors.npy")
                sentence_entries = _read_json(directory / "sentence_entries.json")
                intent_vectors = _read_npy(directory / "intent_vectors.npy")
                intent_labels = _read_json(directory / "intent_labels.json")
                kb_vocabulary = _read_json(directory / "kb_vocabulary.json")
                tfidf, entry_terms = None, None
                if (directory / "tfidf.pkl").exists():
                    with open(directory / "tfidf.pkl", "rb") as handle:
                        tfidf, entry_terms = pickle.load(handle)  # written by train() above, inside the model
        except ValueError:
            logger.warning("KnowledgeBaseMatcher has no trained index; every FAQ will escalate")
            return cls(config, model_storage, resource)
        return cls(
            config, model_storage, resource, vectors, labels, responses, entry_ids, answer_vectors, tfidf, entry_terms,
            sentence_vectors, sentence_entries, intent_vectors, intent_labels, kb_vocabulary,
        )

    # -- inference ----------------------------------------------------------------

    def _intent_similarity(self, vector: np.ndarray) -> Dict[str, float]:
        if self._intent_vectors is None or not len(self._intent_labels):
            return {}
        best = np.full(len(self._intent_names), -1.0, dtype=np.float32)
        np.maximum.at(best, self._intent_index, self._intent_vectors @ vector)
        return {name: float(value) for name, value in zip(self._intent_names, best)}

    def _kb_ranking(self, vector: np.ndarray, text: str) -> Tuple[List[tuple], float]:
        if not self._labels:
            return [], 0.0
        question_sim = np.full(len(self._entry_ids), -1.0, dtype=np.float32)
        np.maximum.at(question_sim, self._phrasing_entry, self._vectors @ vector)
        faq_similarity = float(question_sim.max())
        score = question_sim
        answer_weight = float(self._config["answer_weight"])
        lexical_weight = float(self._config["lexical_weight"])
        sentence_weight = float(self._config["answer_sentence_weight"])
        if sentence_weight and self._sentence_vectors is not None and len(self._sentence_vectors):
            sentence_sim = np.zeros(len(self._entry_ids), dtype=np.float32)
            np.maximum.at(sentence_sim, self._sentence_entry, self._sentence_vectors @ vector)
            score = score + sentence_weight * sentence_sim
        if answer_weight and self._answer_vectors is not None and len(self._answer_vectors):
            score = score + answer_weight * (self._answer_vectors @ vector)
        if lexical_weight and self._tfidf is not None:
            overlap = (self._tfidf.transform([text]) @ self._entry_terms.T).toarray()[0]
            score = score + lexical_weight * overlap
        # Back on the scale of a single cosine similarity, so thresholds stay readable.
        score = score / (1.0 + answer_weight + sentence_weight + lexical_weight)
        top = np.argsort(-score)[:RANKING_SIZE]
        return [(self._entry_ids[i], float(score[i])) for i in top], faq_similarity

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is None:
                continue
            vector = sentence_embedding(message, self._config["featurizer_alias"])
            if vector is None:
                vector = shared_encoder(self._config["model_dir"]).encode([text])[0]
            ranking, faq_similarity = self._kb_ranking(vector, text)
            intent_similarity = self._intent_similarity(vector)
            diet = message.get(INTENT) or {}
            diet_name = diet.get(INTENT_NAME_KEY)
            diet_conf = float(diet.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            unknown_words = sum(1 for stem in _content_stems(text) if stem not in self._kb_vocabulary)
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
                        "responses": self._responses.get(entry, []),
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


def _read_json(path: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _read_npy(path: Any) -> Optional[np.ndarray]:
    return np.load(path) if path.exists() else None


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
