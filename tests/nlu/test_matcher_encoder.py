"""Which vectors the KB matcher scores with, run in the Rasa env (the matcher imports Rasa)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RASA_PY = REPO / ".venv-rasa" / "bin" / "python"

PROBE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.constants import TEXT, FEATURE_TYPE_SENTENCE
from bot.nlu.featurizer import FEATURIZER_ALIAS
from bot.nlu.kb_matcher import KnowledgeBaseMatcher
from bot.nlu.minilm import MiniLMEncoder

message = Message(data={TEXT: "when is my bin collected?"})
message.add_features(Features(np.ones((1, 384), np.float32), FEATURE_TYPE_SENTENCE, TEXT, FEATURIZER_ALIAS))
shared = KnowledgeBaseMatcher({**KnowledgeBaseMatcher.get_default_config()}, None, None)
own = KnowledgeBaseMatcher({**KnowledgeBaseMatcher.get_default_config(), "model_dir": "var/encoders/x"}, None, None)
print("shared", shared._featurizer_vector(message).shape)
print("own", own._featurizer_vector(message))
try:
    MiniLMEncoder.load("var/encoders/no-such-model")
except FileNotFoundError as error:
    print("missing", error)
"""


def test_matcher_with_its_own_encoder_does_not_reuse_the_featurizers_vectors():
    out = subprocess.run(
        [str(RASA_PY), "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out[0] == "shared (384,)"
    assert out[1] == "own None"
    # A relative model_dir is the project's, whatever the working directory; the error says how to install it.
    assert out[2].startswith(f"missing model directory not found: {REPO}/var/encoders/no-such-model")
    assert "python -m bot.nlu.encoders install" in out[2]
