"""Trace spans from Python code, collected by Erlang (docs/logging.md#tracing).

``Span`` is a context manager (``with`` and ``async with``) that times a block; ``trace`` wraps
a function in one. The current span lives in a ``contextvars.ContextVar``, so spans nest
correctly across ``await`` and in concurrent asyncio tasks. A span's events stay on the Python
object and the whole finished span goes to Erlang in one call, ``erlang._native._span``, which
sends it without waiting to the ``py_tracer`` process of the BEAM (or records it on the mocked
BEAM). While tracing is off, entering a span costs one native flag check and nothing else.

Imported lazily by ``erlang.__getattr__``: importing ``erlang`` has no side effects.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, final, overload

from erlang._native import _span, _trace_enabled, _trace_parent

__all__ = ["Span", "trace"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# The innermost open span of the running context (thread, or asyncio task).
_current: ContextVar[Span | None] = ContextVar("erlang_current_span", default=None)

# Ids come from the module's shared generator (thread-safe); they identify, they protect
# nothing, so they need no cryptographic source.
_random_bits = random.getrandbits
_monotonic_ns = time.monotonic_ns


def _exception_text(exc: BaseException | None) -> str:
    """``str(exc)``, or its ``repr()`` when ``__str__`` itself fails."""
    if exc is None:
        return ""
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not replace the exception being traced
        return object.__repr__(exc)


@final
class Span:
    """A timed block of work, sent to Erlang when it ends (``py:get_traces/0``).

    ``with erlang.Span("db.query", table="users") as span:`` opens a span named ``name`` with
    the keyword arguments as its attributes; ``span.event(name, **attrs)`` records an event in
    it. Its parent is the span open in the current context (thread or asyncio task); with none,
    the parent that Erlang gave the running request (``py:with_trace_parent/2``); with none
    either, it starts a new trace. ``async with`` works the same way.

    When the block raises, the span ends with status ``error`` and end attributes
    ``{"exception": str(exc), "exception_type": type(exc).__name__}``; the exception goes on
    (a span never suppresses one). Otherwise the status is ``ok``.

    While the span is open, ``span_id`` (64 bits), ``trace_id`` (128 bits, shared by the whole
    tree) and ``parent_id`` (or None for a root) are ints. When tracing is off at entry the span
    records nothing: the ids stay None and events are ignored. A span object can be entered
    once at a time.
    """

    __slots__ = ("_events", "_start", "_token", "attrs", "name", "parent_id", "span_id", "trace_id")

    name: str
    """The span's name."""
    attrs: dict[str, Any]
    """The attributes given at creation (sent to Erlang as the span's ``attributes``)."""
    span_id: int | None
    """This span's id while it is recorded, else None."""
    trace_id: int | None
    """The id of the trace this span belongs to while it is recorded, else None."""
    parent_id: int | None
    """The parent span's id, or None for a root span (and while not recorded)."""

    def __init__(self, name: str, /, **attrs: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"span name must be a str, not {type(name).__name__}")
        self.name = name
        self.attrs = attrs
        self.span_id = self.trace_id = self.parent_id = None
        self._token: Token[Span | None] | None = None
        self._events: list[tuple[str, dict[str, Any], int]] | None = None
        self._start = 0

    def __repr__(self) -> str:
        return f"<erlang.Span {self.name!r} span_id={self.span_id!r}>"

    def __enter__(self) -> Span:
        if not _trace_enabled():
            return self
        if self._token is not None:
            raise RuntimeError(f"span {self.name!r} is already open")
        parent = _current.get()
        if parent is not None and parent._token is None:
            # Closed in another context (a generator finished elsewhere), so its own context
            # could not be restored: not a parent any more.
            parent = None
        if parent is not None:
            self.trace_id = parent.trace_id
            self.parent_id = parent.span_id
        else:
            erlang_parent = _trace_parent()
            if erlang_parent is None:
                self.trace_id = _random_bits(128)
            else:
                self.trace_id, self.parent_id = erlang_parent
        self.span_id = _random_bits(64)
        self._events = []
        self._token = _current.set(self)
        self._start = _monotonic_ns() // 1000
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, trace_id, span_id = self._token, self.trace_id, self.span_id
        if token is None or trace_id is None or span_id is None:
            return
        end = _monotonic_ns() // 1000
        self._token = None
        try:
            _current.reset(token)
        except ValueError:
            # Exited in another context than it was entered in (a generator finished
            # elsewhere): that context's current span is not ours to restore.
            pass
        if exc_type is None:
            status = "ok"
            end_attrs: dict[str, Any] = {}
        else:
            status = "error"
            end_attrs = {"exception": _exception_text(exc), "exception_type": exc_type.__name__}
        events, self._events = self._events or [], None
        events.reverse()
        _span(
            self.name,
            trace_id,
            span_id,
            self.parent_id,
            self._start,
            end,
            status,
            self.attrs,
            end_attrs,
            events,
        )

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def event(self, name: str, /, **attrs: Any) -> None:
        """Record the event ``name`` with ``attrs`` at this moment (ignored unless the span is
        open and recorded). Erlang lists a span's events newest first."""
        if not isinstance(name, str):
            raise TypeError(f"event name must be a str, not {type(name).__name__}")
        events = self._events
        if events is not None:
            events.append((name, attrs, _monotonic_ns() // 1000))


def _span_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"


def _decorate(fn: Callable[_P, _R], name: str | None) -> Callable[_P, _R]:
    # inspect costs more to import than the rest of erlang: only decorating needs it.
    from inspect import iscoroutinefunction

    span_name = name if name is not None else _span_name(fn)
    if iscoroutinefunction(fn):
        coro_fn = fn  # narrowed to a coroutine function

        @functools.wraps(fn)
        async def traced_async(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            with Span(span_name):
                return await coro_fn(*args, **kwargs)

        return cast(Callable[_P, _R], traced_async)

    @functools.wraps(fn)
    def traced(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with Span(span_name):
            return fn(*args, **kwargs)

    return traced


@overload
def trace(name: Callable[_P, _R], /) -> Callable[_P, _R]: ...
@overload
def trace(name: str | None = None) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...
def trace(
    name: str | Callable[_P, _R] | None = None,
) -> Callable[_P, _R] | Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: each call of the function runs in a ``Span``.

    ``@erlang.trace()``, ``@erlang.trace`` and ``@erlang.trace("name")``. The span is named
    ``name``, by default ``f"{fn.__module__}.{fn.__qualname__}"``. The wrapper keeps the
    function's metadata (``functools.wraps``). On an ``async def`` function the span covers the
    awaited body; on a generator function it covers only the call that creates the generator.
    """
    if callable(name):
        return _decorate(name, None)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"trace name must be a str or None, not {type(name).__name__}")
    span_name = name

    def decorator(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        return _decorate(fn, span_name)

    return decorator
