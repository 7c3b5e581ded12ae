"""Python's half of examples/reentrant_callbacks.escript: Python calls Erlang, which calls
Python again, on the same executor thread (docs/callbacks.md)."""

from __future__ import annotations

import threading
from typing import Any

import erlang

calls: dict[str, int] = {}


def _count(name: str) -> None:
    calls[name] = calls.get(name, 0) + 1


def reset() -> None:
    calls.clear()


def fib(n: int) -> int:
    """Fibonacci through an Erlang memo table: ``erlang.memo_fib`` answers from ETS or calls
    this function again (a nested py:call), so each ``n`` is computed in Python once."""
    _count("fib")
    if n < 2:
        return n
    return int(erlang.memo_fib(n - 1)) + int(erlang.memo_fib(n - 2))


def countdown(n: int) -> int:
    """Python -> Erlang -> Python ... ``n`` levels deep; returns the depth reached."""
    return 0 if n == 0 else 1 + int(erlang.down(n - 1))


def pipeline(text: str) -> dict[str, Any]:
    """Three callbacks in a row from one call: each gets its own result, and the code before
    them runs once (no replay)."""
    _count("pipeline")
    words = erlang.split_words(text)
    counted = erlang.count_words(words)
    top = erlang.most_common(counted)
    return {"words": len(words), "top": top, "pipeline_runs": calls["pipeline"]}


def same_thread() -> tuple[int, int]:
    """The thread running this call, and the thread running the py:call that the Erlang
    function ``nested_thread`` makes meanwhile: the same one, the executor that waits."""
    return threading.get_ident(), int(erlang.nested_thread())
