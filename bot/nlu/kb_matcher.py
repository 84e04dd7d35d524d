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

With ``calibrate: true`` training also chooses the KB thresholds from the KB
itself (``bot.nlu.calibration``): every phrasing is scored with the scoring
below against the KB with that phrasing, then with its whole entry, left out.
Thresholds written in config.yml win over calibrated ones.

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

from bot.nlu import calibration
from bot.nlu.backends import DEFAULT_BACKEND, DEFAULT_PRECISION, shared_encoder
from bot.nlu.decision import FAQ_INTENT, Thresholds, decide
from bot.nlu.featurizer import FEATURIZER_ALIAS, sentence_embedding

logger = logging.getLogger(__name__)

KB_MATCH_KEY = "kb_match"
RANKING_SIZE = 5
# The thresholds that calibration chooses; the others (DIET's) come from config.yml or the defaults.
CALIBRATED = calibration.CALIBRATED


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
    # Set by calibration (``calibrate: true``); plain defaults so older pickles still load.
    calibration: Any = None
    probes: Any = None  # the leave-out probes it was chosen on, for replaying other methods offline

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
            # Backend and precision of that encoder (bot/nlu/featurizer.py).
            "encoder_backend": DEFAULT_BACKEND,
            "encoder_precision": DEFAULT_PRECISION,
            "meta_threshold": defaults.meta_threshold,
            "kb_override": defaults.kb_override,
            "knn_veto_margin": defaults.knn_veto_margin,
            "unknown_word_penalty": defaults.unknown_word_penalty,
            # None: calibrated from the KB when `calibrate` is on, else the Thresholds default.
            # A value written in config.yml (for example by `python -m tools tune`) always wins.
            "kb_threshold": None,
            "kb_margin": None,
            "ask_threshold": None,
            "ask_window": None,
            "calibrate": False,
            # Training examples of these intents are the calibration's off-KB negatives.
            "calibration_negative_intents": ["complaint", "report_problem", "personal_case", "request_human",
                                             "out_of_scope"],
            # Estimated wrong answers allowed (calibration.Settings.wrong_budget).
            "calibration_wrong_budget": calibration.Settings.wrong_budget,
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
        self._set_thresholds()

    def _set_thresholds(self) -> None:
        self._thresholds, self._threshold_source = self._effective_thresholds()
        self._thresholds_in_force = {
            name: {"value": getattr(self._thresholds, name), "source": self._threshold_source[name]}
            for name in CALIBRATED
        }

    def _effective_thresholds(self) -> Tuple[Thresholds, Dict[str, str]]:
        """config.yml's value, else the calibrated one (when calibrating), else the default."""
        defaults = Thresholds()
        calibrated = self._index.calibration.thresholds() if (
            self._config.get("calibrate") and self._index.calibration is not None
        ) else {}
        values, source = {}, {}
        for name in Thresholds.__dataclass_fields__:
            if self._config.get(name) is not None:
                values[name], source[name] = float(self._config[name]), "config"
            elif name in calibrated:
                values[name], source[name] = float(calibrated[name]), "calibrated"
            else:
                values[name], source[name] = float(getattr(defaults, name)), "default"
        return Thresholds(**values), source

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

    def _encoder(self) -> Any:
        config = self._config
        return shared_encoder(config["model_dir"], config["encoder_backend"], config["encoder_precision"])

    def _featurizer_vector(self, message: Message) -> Optional[np.ndarray]:
        """The featurizer's sentence vector, when the matcher shares the featurizer's encoder."""
        if self._config["model_dir"] is not None:
            return None
        return sentence_embedding(message, self._config["featurizer_alias"])

    # -- training -----------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        prefix = self._config["retrieval_intent"]
        encode = self._encoder().encode

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
        documents = [_document(questions_by_entry[e], a) for e, a in zip(entry_ids, answers)]
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
        if self._config.get("calibrate") and entry_ids:
            self._calibrate(texts, labels, answers, questions_by_entry,
                            [e.get(TEXT) for e in intent_examples], intent_labels)
        self._set_thresholds()
        logger.info("KnowledgeBaseMatcher thresholds: %s", self._thresholds_in_force)
        with self._model_storage.write_to(self._resource) as directory:
            with open(directory / "index.pkl", "wb") as handle:
                pickle.dump(self._index, handle)
        logger.info("KnowledgeBaseMatcher indexed %d phrasings of %d entries", len(labels), len(entry_ids))
        return self._resource

    def _calibrate(self, texts: List[str], labels: List[str], answers: List[str],
                   questions_by_entry: Dict[str, List[str]], intent_texts: List[str], intent_labels: List[str]) -> None:
        """Score every phrasing with the inference scoring against the KB without it, then without
        its entry, and choose the thresholds on those probes (bot.nlu.calibration).

        The TF-IDF vocabulary and weights stay those fitted on the whole KB (the held-out
        phrasing still counts in the document frequencies, a small leak); the left-out
        phrasing's own entry document is rebuilt without it.
        """
        index = self._index
        position = {entry: i for i, entry in enumerate(index.entry_ids)}
        answer_by_entry = dict(zip(index.entry_ids, answers))
        overlaps = self._overlaps(texts)
        probes: List[calibration.Probe] = []
        for j, (text, entry) in enumerate(zip(texts, labels)):
            e = position[entry]
            vector = index.phrasing_vectors[j]
            others = list(questions_by_entry[entry])
            others.remove(text)
            overlap = overlaps[j].copy()
            if index.tfidf is not None:
                document = index.tfidf.transform([_document(others, answer_by_entry[entry])])
                overlap[e] = float((index.tfidf.transform([text]) @ document.T).toarray()[0, 0])
            mask = np.ones(len(texts), dtype=bool)
            mask[j] = False
            score, _ = self._entry_scores(vector, overlap, phrasing_mask=mask, answer_only=None if others else e)
            probes.append(calibration.Probe(
                calibration.PHRASING if others else calibration.ANSWER_ONLY,
                calibration.probe_rankings(score, index.entry_ids, RANKING_SIZE), entry,
            ))
            score, _ = self._entry_scores(vector, overlaps[j])
            score[e] = -np.inf
            probes.append(calibration.Probe(
                calibration.ENTRY_OUT, calibration.probe_rankings(score, index.entry_ids, RANKING_SIZE)
            ))
        wanted = set(self._config.get("calibration_negative_intents") or [])
        picked = [i for i, label in enumerate(intent_labels) if label in wanted]
        intent_overlaps = self._overlaps([intent_texts[i] for i in picked])
        for row, i in enumerate(picked):
            score, _ = self._entry_scores(index.intent_vectors[i], intent_overlaps[row])
            probes.append(calibration.Probe(
                calibration.INTENT, calibration.probe_rankings(score, index.entry_ids, RANKING_SIZE)
            ))
        settings = calibration.Settings(wrong_budget=float(self._config["calibration_wrong_budget"]))
        index.calibration = calibration.calibrate(probes, settings)
        index.probes = probes
        logger.info("KnowledgeBaseMatcher calibrated on the KB: %s, estimates %s",
                    index.calibration.thresholds(), index.calibration.estimates)

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
        matcher = cls(config, model_storage, resource, index)
        logger.info("KnowledgeBaseMatcher thresholds: %s", matcher._thresholds_in_force)
        return matcher

    # -- inference ----------------------------------------------------------------

    def _intent_similarity(self, vector: np.ndarray) -> Dict[str, float]:
        index = self._index
        if not index.intent_names:
            return {}
        best = np.full(len(index.intent_names), -1.0, dtype=np.float32)
        np.maximum.at(best, index.intent_positions, index.intent_vectors @ vector)
        return {name: float(value) for name, value in zip(index.intent_names, best)}

    def _overlaps(self, texts: List[str]) -> np.ndarray:
        """TF-IDF overlap of each text with each entry's document (zeros without TF-IDF)."""
        index = self._index
        if index.tfidf is None or not texts:
            return np.zeros((len(texts), len(index.entry_ids)), dtype=np.float64)
        return (index.tfidf.transform(texts) @ index.entry_terms.T).toarray()

    def _entry_scores(self, vector: np.ndarray, overlap: np.ndarray, phrasing_mask: Optional[np.ndarray] = None,
                      answer_only: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Every entry's blended score and its closest-phrasing similarity.

        ``phrasing_mask`` leaves phrasings out (calibration); ``answer_only`` is the position of
        an entry left with no phrasing, scored on its answer signals alone, rescaled alike.
        """
        index = self._index
        weights = {
            name: float(self._config[name]) for name in ("answer_weight", "answer_sentence_weight", "lexical_weight")
        }
        phrasing_sims = index.phrasing_vectors @ vector
        positions = index.phrasing_positions
        if phrasing_mask is not None:
            phrasing_sims, positions = phrasing_sims[phrasing_mask], positions[phrasing_mask]
        question_sim = index.best_per_entry(phrasing_sims, positions, -1.0)
        answer_part = weights["answer_sentence_weight"] * index.best_per_entry(
            index.sentence_vectors @ vector, index.sentence_positions, 0.0
        )
        answer_part = answer_part + weights["answer_weight"] * (index.answer_vectors @ vector)
        if index.tfidf is not None:
            answer_part = answer_part + weights["lexical_weight"] * overlap
        # Back on the scale of a single cosine similarity, so thresholds stay readable.
        score = (question_sim + answer_part) / (1.0 + sum(weights.values()))
        if answer_only is not None:
            score[answer_only] = answer_part[answer_only] / max(sum(weights.values()), 1e-9)
        return score, question_sim

    def _kb_ranking(self, vector: np.ndarray, text: str) -> Tuple[List[tuple], float]:
        index = self._index
        if not index.entry_ids:
            return [], 0.0
        score, question_sim = self._entry_scores(vector, self._overlaps([text])[0])
        top = np.argsort(-score)[:RANKING_SIZE]
        return [(index.entry_ids[i], float(score[i])) for i in top], float(question_sim.max())

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is None:
                continue
            vector = self._featurizer_vector(message)
            if vector is None:
                vector = self._encoder().encode([text])[0]
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
                    # faq_unsure: the entries the dialogue offers the citizen to pick, best first.
                    "offer": list(decision.offer),
                    "ranking": [{"entry": e, "similarity": round(s, 4)} for e, s in ranking],
                    "diet_intent": diet_name,
                    "diet_confidence": round(diet_conf, 4),
                    "faq_similarity": round(faq_similarity, 4),
                    "unknown_words": unknown_words,
                    "intent_similarity": {k: round(v, 4) for k, v in intent_similarity.items()},
                    # The four KB thresholds in force and where each came from (config, calibrated, default).
                    "thresholds": self._thresholds_in_force,
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


def _document(questions: List[str], answer: str) -> str:
    """What an entry's TF-IDF overlap is computed against: its phrasings (counted twice) and its answer."""
    return " ".join(questions * 2) + " " + answer


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
