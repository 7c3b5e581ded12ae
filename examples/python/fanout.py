"""Python's half of examples/concurrency.escript: work fanned out both ways.

Python to Erlang: ``gather`` starts one ``erlang.async_call`` per item and awaits them all;
each runs in an Erlang process of its own, so they run at the same time (docs/asyncio.md).
``threads`` does the same from a thread pool with the blocking ``erlang.call``.

Erlang to Python: ``meet`` is called by many Erlang processes at once; each call waits at a
barrier until all have arrived, which only happens when they run on different executor threads
at the same moment. ``spin`` and ``hash_rounds`` are CPU-bound work that holds the GIL and work
that releases it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import erlang

_BARRIERS: dict[str, threading.Barrier] = {}
_BARRIERS_LOCK = threading.Lock()


async def _gather(function: str, items: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*(erlang.async_call(function, item) for item in items)))


def gather(function: str, items: list[Any]) -> list[Any]:
    """``function(item)`` in Erlang for every item at once; results in the order of items."""
    return asyncio.run(_gather(function, items))


def threads(function: str, items: list[Any], workers: int = 8) -> list[Any]:
    """The same from ``workers`` Python threads, each blocking in ``erlang.call``."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: erlang.call(function, item), items))


def meet(name: str, parties: int, timeout: float = 30.0) -> int:
    """Waits until ``parties`` calls of the same ``name`` are here, then returns the id of the
    thread that ran this one. ``threading.BrokenBarrierError`` after ``timeout`` seconds: the
    calls did not run at the same time."""
    with _BARRIERS_LOCK:
        barrier = _BARRIERS.setdefault(name, threading.Barrier(parties))
    barrier.wait(timeout)
    return threading.get_ident()


def spin(n: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def hash_rounds(rounds: int) -> str:
    """PBKDF2 in C: hashlib releases the GIL while it runs."""
    return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", rounds).hex()[:16]
