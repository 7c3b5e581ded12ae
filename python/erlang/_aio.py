"""The asyncio event loop of ``py:async_call`` and ``py:async_stream`` (inside the BEAM).

An async job runs its call on an executor, which asks :func:`prepare` what to do with the
result. A result that needs the loop (an awaitable; for a stream, also an async iterable) is
finished by a task (:func:`schedule`) on the :class:`erlang.ErlangEventLoop` that
erlang_python runs in its own daemon thread, ``erlang-asyncio``, started on first use; the
executor moves on at once, so coroutines wait concurrently without holding executors. The task
replies to the Erlang caller through the job's ``AsyncReply``; when the caller stops waiting,
the reply's cancel hook cancels the task. A call of an ``async def`` an executor has already
seen skips the executor: the NIF queues it in the loop's inbox, and the loop's thread calls the
function and hands the coroutine to :func:`start`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator
from typing import Protocol, cast

from erlang._loop import ErlangEventLoop


class Reply(Protocol):
    """``erlang._native.AsyncReply``: how a deferred job answers its Erlang caller."""

    def resolve(self, value: object, /) -> bool: ...

    def fail(self, exc: BaseException, /) -> bool: ...

    def on_cancel(self, hook: Callable[[], object], /) -> None: ...


_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The :class:`erlang.ErlangEventLoop` that runs the coroutines of ``py:async_call``
    (started on first use)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            new = ErlangEventLoop()
            thread = threading.Thread(target=_run, args=(new,), name="erlang-asyncio", daemon=True)
            thread.start()
            _loop = new
        return _loop


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(_serve_async_calls, loop)
    loop.run_forever()


def _serve_async_calls(loop: asyncio.AbstractEventLoop) -> None:
    """On the loop's thread: makes its inbox the one ``py:async_call``s of known ``async def``s
    are submitted to, so that their coroutines start here without an executor (see
    :func:`start`)."""
    from erlang import _async

    inbox = _async._inbox_of(loop)
    if inbox is not None:
        inbox.serve_async_calls()


def start(coroutine: Awaitable[object], reply: Reply) -> None:
    """On the loop's thread: runs ``coroutine``, just made by an ``async def`` that a
    ``py:async_call`` submitted straight to the loop, as a task that replies to the Erlang
    caller, in a context of its own (as an executor's request starts in a fresh one); the task
    is cancelled when the caller stops waiting."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(_finish(coroutine, reply), context=contextvars.Context())
    reply.on_cancel(functools.partial(_cancel_soon, loop, task))


def _cancel_soon(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    try:
        loop.call_soon_threadsafe(task.cancel)
    except RuntimeError:
        pass  # The loop is closed: the task went with it.


def prepare(value: object, stream: bool) -> tuple[bool, object]:
    """What an async job does with the result of its call: ``(False, result)`` to reply with
    ``result`` at once, or ``(True, work)`` when ``work``, an awaitable, must finish on the
    loop first (see :func:`schedule`)."""
    if stream:
        if isinstance(value, AsyncIterable):
            return True, _collect(value)
        if inspect.isawaitable(value):
            return True, _await_then_collect(value)
        if isinstance(value, Iterator):
            return False, list(value)
        return False, value
    if inspect.isawaitable(value):
        return True, value
    return False, value


def schedule(work: object, reply: Reply, stream: bool | None = None) -> None:
    """Runs ``work`` as a task on the loop; the task replies to the Erlang caller, and is
    cancelled when the caller stops waiting.

    ``work`` is an awaitable, or with ``stream`` given, the raw result of an async job's call
    (the executor hands a native coroutine or async generator over before any Python code
    looks at it, so that an interrupt cannot lose it): it is prepared here as :func:`prepare`
    would."""
    awaitable: Awaitable[object]
    if stream is None:
        awaitable = cast("Awaitable[object]", work)
    else:
        deferred, prepared = prepare(work, stream)
        awaitable = cast("Awaitable[object]", prepared) if deferred else _ready(prepared)
    future = asyncio.run_coroutine_threadsafe(_finish(awaitable, reply), loop())
    reply.on_cancel(future.cancel)


async def _ready(value: object) -> object:
    return value


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


__all__ = ["Reply", "loop", "prepare", "schedule", "start"]
