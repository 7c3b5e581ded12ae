"""The semantic-search index of the examples: documents and their embeddings, a numpy matrix.

It lives in the interpreter that the whole node shares (docs/ai-integration.md): built once by
``build``, it serves every Erlang process that calls ``search``, on whichever executor thread
the call lands. Queries only read it; ``build`` replaces it whole, under a lock, so a search
sees either the old index or the new one.

The Erlang query API in front of it is examples/semantic_search.erl.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import erlang
import minilm


@dataclass(frozen=True)
class Index:
    """Documents and their unit-length embeddings, row i for document i."""

    docs: list[dict[str, str]]
    matrix: npt.NDArray[np.float32]


_INDEX: Index | None = None
_LOCK = threading.Lock()


def _index() -> Index:
    if _INDEX is None:
        raise RuntimeError("no index: call search_index.build(corpus_path) first")
    return _INDEX


def build(corpus_path: str, batch_size: int = 16) -> dict[str, Any]:
    """Embeds every document of a JSON corpus (a list of {id, title, text}) and keeps them."""
    global _INDEX
    docs = json.loads(Path(corpus_path).read_text(encoding="utf-8"))
    model = minilm.load()
    start = time.perf_counter()
    matrix = model.encode([f"{d['title']}. {d['text']}" for d in docs], batch_size=batch_size)
    seconds = time.perf_counter() - start
    with _LOCK:
        _INDEX = Index(docs, matrix)
    return {"documents": len(docs), "dim": model.dim, "seconds": seconds}


def embed(texts: list[str]) -> erlang.PyArray:
    """The embeddings of ``texts`` in the array form: {py_array, float32, [N, 384], Binary}."""
    return erlang.py_array(minilm.load().encode(texts))


def _hits(scores: npt.NDArray[np.float32], k: int) -> list[dict[str, Any]]:
    docs = _index().docs
    top = np.argsort(-scores, kind="stable")[:k]
    return [
        {"id": docs[i]["id"], "title": docs[i]["title"], "score": float(scores[i])} for i in top
    ]


def search(query: str, k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` documents closest to ``query``, best first, with their cosine similarity."""
    vector = minilm.load().encode([query])[0]
    return _hits(_index().matrix @ vector, k)


def search_vectors(vectors: npt.NDArray[np.float32], k: int = 3) -> list[list[dict[str, Any]]]:
    """One hit list per row of ``vectors`` (embeddings sent back in the array form): all the
    queries scored in one matrix product."""
    queries = np.atleast_2d(vectors)
    scores = queries @ _index().matrix.T
    return [_hits(row, k) for row in scores]


def passages(ids: list[str]) -> list[dict[str, str]]:
    """The documents with these ids, in that order."""
    by_id = {d["id"]: d for d in _index().docs}
    return [by_id[i] for i in ids]
