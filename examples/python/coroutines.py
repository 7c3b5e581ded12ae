"""Coroutines for examples/asyncio.escript (docs/asyncio.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import erlang

_arrived = 0
_all_here: asyncio.Event | None = None


async def price(item: str, parties: int = 0) -> dict[str, Any]:
    """A slow lookup (an HTTP request, a database query). With ``parties``, it also waits
    until that many calls are waiting at once: they all ran concurrently on one loop."""
    await asyncio.sleep(0.05)
    if parties:
        await _rendezvous(parties)
    return {"item": item, "eur": round(len(item) * 1.25, 2)}


async def _rendezvous(parties: int) -> None:
    global _arrived, _all_here
    if _all_here is None or _all_here.is_set():
        _arrived, _all_here = 0, asyncio.Event()
    event = _all_here
    _arrived += 1
    if _arrived == parties:
        event.set()
    await asyncio.wait_for(event.wait(), 30)


async def ticker(n: int) -> AsyncIterator[int]:
    """An async generator: ``py:async_stream`` collects it."""
    for i in range(n):
        await asyncio.sleep(0.001)
        yield i


async def stock_levels(items: list[str]) -> list[int]:
    """Coroutines calling Erlang: every ``erlang.async_call`` runs in an Erlang process of its
    own, gathered without blocking the loop."""
    return list(await asyncio.gather(*(erlang.async_call("stock", item) for item in items)))


async def slow(tag: str) -> str:
    """Sleeps for a minute unless cancelled; tells Erlang when it is."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await erlang.async_call("cancelled", tag)
        raise
    return "not cancelled"
