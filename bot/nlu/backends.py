"""Which implementation runs a sentence encoder: onnxruntime in production, numpy as reference.

``onnx`` (bot/nlu/onnx_encoder.py) is the production path; ``numpy`` (bot/nlu/minilm.py)
reproduces sentence-transformers and is what the tests compare onnx against.
``$CRM_ENCODER_BACKEND`` overrides the configured backend for a process, which is how
``make bench`` measures both on one model: at float32 their vectors agree to 1e-6, so
the model need not be retrained. Free of Rasa imports, so the app env can test it.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional, Tuple

from bot.nlu.minilm import MiniLMEncoder

ENV_BACKEND = "CRM_ENCODER_BACKEND"
BACKENDS = ("onnx", "numpy")
DEFAULT_BACKEND = "onnx"
DEFAULT_PRECISION = "fp32"

_encoder_lock = threading.Lock()
_encoders: Dict[Tuple[Optional[str], str, str], Any] = {}


def effective_backend(configured: Optional[str] = None) -> str:
    backend = os.environ.get(ENV_BACKEND, "").strip() or configured or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r} (from {ENV_BACKEND} or config.yml); "
                         f"one of {', '.join(BACKENDS)}")
    return backend


def shared_encoder(model_dir: Optional[str] = None, backend: Optional[str] = None,
                   precision: str = DEFAULT_PRECISION) -> Any:
    """One encoder per process and model: the weights are 90-420 MB and read-only.

    Returns a :class:`MiniLMEncoder` or an :class:`~bot.nlu.onnx_encoder.OnnxEncoder`;
    both have the same ``encode()``. ``precision`` applies to the onnx backend only.
    """
    backend = effective_backend(backend)
    key = (model_dir, backend, precision if backend == "onnx" else "fp32")
    with _encoder_lock:
        if key not in _encoders:
            if backend == "numpy":
                _encoders[key] = MiniLMEncoder.load(model_dir)
            else:
                from bot.nlu.onnx_encoder import OnnxEncoder

                _encoders[key] = OnnxEncoder.load(model_dir, precision=precision)
        return _encoders[key]
