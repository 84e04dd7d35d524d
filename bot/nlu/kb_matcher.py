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

Runs inside the Rasa environment: numpy and stdlib only (plus the encoder).
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any, Dict, List, Optional, Text, Type

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
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vectors: Optional[np.ndarray] = None,
        labels: Optional[List[str]] = None,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
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
        )
        self._label_array = np.array(self._labels, dtype=object)

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
        for example in training_data.intent_examples:
            key = example.get(INTENT_RESPONSE_KEY)
            if example.get(INTENT) != prefix or not key:
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

        with self._model_storage.write_to(self._resource) as directory:
            np.save(directory / "vectors.npy", matrix)
            (directory / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
            (directory / "responses.json").write_text(json.dumps(responses), encoding="utf-8")
        self._vectors, self._labels, self._responses = matrix, labels, responses
        self._label_array = np.array(labels, dtype=object)
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
        except ValueError:
            logger.warning("KnowledgeBaseMatcher has no trained index; every FAQ will escalate")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, vectors, labels, responses)

    # -- inference ----------------------------------------------------------------

    def _kb_ranking(self, vector: np.ndarray) -> List[tuple]:
        if not self._labels:
            return []
        sims = self._vectors @ vector
        best: Dict[str, float] = {}
        # Entries have few phrasings; a dict pass is cheaper than sorting by label.
        for index in np.argsort(-sims)[: RANKING_SIZE * 4]:
            label = self._labels[index]
            if label not in best:
                best[label] = float(sims[index])
            if len(best) >= RANKING_SIZE:
                break
        return sorted(best.items(), key=lambda item: -item[1])

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is None:
                continue
            vector = sentence_embedding(message, self._config["featurizer_alias"])
            if vector is None:
                vector = shared_encoder(self._config["model_dir"]).encode([text])[0]
            ranking = self._kb_ranking(vector)
            diet = message.get(INTENT) or {}
            diet_name = diet.get(INTENT_NAME_KEY)
            diet_conf = float(diet.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            decision = decide(diet_name, diet_conf, ranking, self._thresholds)

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
