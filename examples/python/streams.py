"""Generators for examples/streaming.escript."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import erlang


def countdown(n: int) -> Iterator[int]:
    while n > 0:
        yield n
        n -= 1


def records(corpus_path: str) -> Iterator[dict[str, Any]]:
    """One record per document of a JSON corpus, read lazily: what a database cursor or a file
    reader would yield."""
    for doc in json.loads(Path(corpus_path).read_text(encoding="utf-8")):
        yield {"id": doc["id"], "words": len(doc["text"].split())}


def squares(n: int) -> Iterator[int]:
    """0, 1, 4, ... (n - 1)²; once it ends, the shared state has how many it produced."""
    produced = 0
    try:
        for i in range(n):
            produced += 1
            yield i * i
    finally:
        erlang.state_set("squares_produced", produced)
