"""The asyncio event loop of ``py:async_call`` and ``py:async_stream`` (inside the BEAM).

An async job runs its call on an executor, which hands the result to :func:`dispatch`. A result
that needs the loop (an awaitable; for a stream, also an async iterable) is finished by a task
on the loop that erlang_python runs in its own daemon thread, ``erlang-asyncio``, started on
first use; the executor moves on at once, so coroutines wait concurrently without holding
executors. The task replies to the Erlang caller through the job's ``AsyncReply``; when the
caller stops waiting, the reply's cancel hook cancels the task.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator
from typing import Protocol


class Reply(Protocol):
    """``erlang._native.AsyncReply``: how a deferred job answers its Erlang caller."""

    def resolve(self, value: object, /) -> bool: ...

    def fail(self, exc: BaseException, /) -> bool: ...

    def on_cancel(self, hook: Callable[[], object], /) -> None: ...


_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The loop that runs the coroutines of ``py:async_call`` (started on first use)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            new = asyncio.new_event_loop()
            thread = threading.Thread(target=_run, args=(new,), name="erlang-asyncio", daemon=True)
            thread.start()
            _loop = new
        return _loop


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def dispatch(value: object, stream: bool, reply: Reply) -> tuple[bool, object]:
    """What an async job does with the result of its call: ``(False, result)`` to reply with
    ``result`` at once, or ``(True, None)`` when a task on the loop replies later."""
    work: Awaitable[object]
    if stream:
        if isinstance(value, AsyncIterable):
            work = _collect(value)
        elif inspect.isawaitable(value):
            work = _await_then_collect(value)
        elif isinstance(value, Iterator):
            return False, list(value)
        else:
            return False, value
    elif inspect.isawaitable(value):
        work = value
    else:
        return False, value
    future = asyncio.run_coroutine_threadsafe(_finish(work, reply), loop())
    reply.on_cancel(future.cancel)
    return True, None


async def _collect(items: AsyncIterable[object]) -> list[object]:
    return [item async for item in items]


async def _await_then_collect(awaitable: Awaitable[object]) -> object:
    value = await awaitable
    if isinstance(value, AsyncIterable):
        return await _collect(value)
    return value


async def _finish(work: Awaitable[object], reply: Reply) -> None:
    try:
        value = await work
    except BaseException as exc:  # Every outcome goes to the Erlang caller.
        # A cancelled task (the caller gave up) fails a reply nobody receives.
        reply.fail(exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
    else:
        reply.resolve(value)


__all__ = ["Reply", "dispatch", "loop"]
