"""Retrieval-augmented answers over the index of search_index.py (examples/rag.escript).

Retrieval is real: the passages come from the semantic search. Generation is not: no generative
language model runs offline here (none ships its weights on PyPI at a size the examples could
install), so ``answer`` assembles an *extractive* answer instead: the sentences of the
retrieved passages closest in meaning to the question, each citing its passage.

A generative model plugs in at one place, ``generate``: it receives ``prompt(question,
passages)`` and returns the answer text. ``answer(..., generator=Name)`` calls the Erlang
function registered as ``Name`` with the prompt, so the model can be anything Erlang reaches:
an HTTP API called with ``httpc``, a local llama.cpp server, a port program. A Python client
(``llama_cpp.Llama``, an OpenAI-style SDK) would be called from ``generate`` directly instead.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

import erlang
import minilm
import search_index

NOTHING_FOUND = "The documents say nothing about that."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def prompt(question: str, passages: list[dict[str, str]]) -> str:
    """What a generative model would be given: numbered passages, then the question."""
    context = "\n".join(f"[{n}] {p['title']}: {p['text']}" for n, p in enumerate(passages, 1))
    return (
        "Answer the question from these passages only, citing them as [n]. If they do not "
        f"contain the answer, say so.\n\n{context}\n\nQuestion: {question}\nAnswer:"
    )


def extractive(question: str, passages: list[dict[str, str]], sentences: int = 2) -> str:
    """The ``sentences`` sentences of the passages closest to the question, in the order they
    appear, each followed by the number of its passage."""
    candidates = [
        (n, sentence)
        for n, p in enumerate(passages, 1)
        for sentence in _SENTENCE_END.split(p["text"])
    ]
    vectors = minilm.load().encode([question] + [sentence for _, sentence in candidates])
    scores = vectors[1:] @ vectors[0]
    # The best ones, back in the order of the candidates: passage by passage, as written.
    best = sorted(np.argsort(-scores, kind="stable")[:sentences])
    return " ".join(f"{candidates[i][1]} [{candidates[i][0]}]" for i in best)


def generate(prompt_text: str, generator: str) -> str:
    """The generative step: the Erlang function registered as ``generator`` answers."""
    text = erlang.call(generator, prompt_text)
    if not isinstance(text, str):
        raise TypeError(f"generator {generator!r} returned {text!r}, not a text")
    return text


def answer(
    question: str,
    hits: list[dict[str, Any]],
    min_score: float = 0.3,
    margin: float = 0.1,
    generator: str | None = None,
) -> dict[str, Any]:
    """An answer to ``question`` from the retrieved ``hits`` (search_index.search's result).

    Hits scoring below ``min_score``, or more than ``margin`` below the best hit, are not used
    (a passage far behind the best one is rarely about the question); with none left, the
    answer says so rather than cite unrelated passages. ``generator`` names an Erlang function
    to generate the answer from the prompt; without it the answer is extractive.
    """
    best = max((h["score"] for h in hits), default=0.0)
    used = [h for h in hits if h["score"] >= max(min_score, best - margin)]
    passages = search_index.passages([h["id"] for h in used])
    text = prompt(question, passages)
    if not passages:
        reply = NOTHING_FOUND
    elif generator is None:
        reply = extractive(question, passages)
    else:
        reply = generate(text, generator)
    return {
        "answer": reply,
        "sources": [{"n": n, "id": h["id"], "score": h["score"]} for n, h in enumerate(used, 1)],
        "prompt": text,
        "generator": generator or "extractive",
    }
