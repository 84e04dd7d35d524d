"""Rasa component that corrects typos and text-speak before the tokenizer reads a message.

It goes first in config.yml's pipeline, so every later component (tokenizer,
featurizers, DIET, the KB matcher) reads the corrected text. The correction
itself is ``bot.nlu.speller.Speller`` (pure symspellpy, tested without Rasa).

Training builds the vocabulary from the training data: the words of the KB
(phrasings of ``faq/<entry>`` and the ``utter_faq/<entry>`` answers) are
preferred corrections, the words of the other examples are merely known. The
training examples themselves are left as written: they are the vocabulary, and
the deliberate misspellings of some intent examples are what DIET learns from.

The message's ``text`` becomes the corrected text; what the citizen sent stays
in ``text_original`` (in Rasa's parse output too). The application stores the
message before Rasa sees it, so the stored text is always exactly as sent.

Runs inside the Rasa environment (symspellpy).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.speller import Speller, training_names, training_words

logger = logging.getLogger(__name__)

# Where the message as sent is kept once ``text`` is corrected (also in the parse output).
TEXT_ORIGINAL = "text_original"
# The words that were changed, as [original, corrected] pairs (parse output, for auditing).
SPELLING_KEY = "spelling_corrections"

_PICKLE = "symspell.pkl"
_WORDS = "words.json"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True
)
class SpellingNormalizer(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # The retrieval intent whose phrasings and answers are the KB.
            "retrieval_intent": "faq",
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 speller: Optional[Speller] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._speller = speller

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SpellingNormalizer":
        return cls(config, model_storage, resource)

    @staticmethod
    def required_packages() -> List[Text]:
        return ["symspellpy"]

    def train(self, training_data: TrainingData) -> Resource:
        prefix = self._config["retrieval_intent"]
        kb_texts, other_texts = [], []
        for example in training_data.training_examples:
            text = example.get(TEXT)
            if not text:
                continue
            in_kb = example.get(INTENT) == prefix and example.get(INTENT_RESPONSE_KEY)
            (kb_texts if in_kb else other_texts).append(text)
        for key, variants in training_data.responses.items():
            target = kb_texts if key.startswith(f"utter_{prefix}/") else other_texts
            target.extend(variant.get("text") or "" for variant in variants)
        words = {"kb": training_words(kb_texts), "known": training_words(other_texts),
                 "names": training_names(kb_texts)}
        self._speller = Speller.build(words["kb"], words["known"], words["names"])
        with self._model_storage.write_to(self._resource) as directory:
            (directory / _PICKLE).write_bytes(self._speller.to_pickle())
            (directory / _WORDS).write_text(json.dumps(words), encoding="utf-8")
        logger.info("SpellingNormalizer: %d KB words added to the English dictionary", len(words["kb"]))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SpellingNormalizer":
        started = time.perf_counter()
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / _WORDS).read_text(encoding="utf-8"))
                speller = Speller.from_pickle((directory / _PICKLE).read_bytes(), words["kb"], words["names"])
        except (ValueError, FileNotFoundError):
            logger.warning("SpellingNormalizer has no trained vocabulary; messages pass uncorrected")
            return cls(config, model_storage, resource)
        if speller is None:
            # Pickled by another symspellpy: the same dictionary again from the package and the words.
            logger.info("SpellingNormalizer: rebuilding the dictionary (pickle from another symspellpy)")
            speller = Speller.build(words["kb"], words["known"], words["names"])
        logger.info("SpellingNormalizer loaded in %.2f s", time.perf_counter() - started)
        return cls(config, model_storage, resource, speller)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if self._speller is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            corrected, corrections = self._speller.correct(text)
            message.set(TEXT_ORIGINAL, text, add_to_output=True)
            message.set(SPELLING_KEY, [[c.original, c.corrected] for c in corrections], add_to_output=True)
            if corrected != text:
                message.set(TEXT, corrected)
                logger.debug("SpellingNormalizer corrected %d word(s)", len(corrections))
        return messages
