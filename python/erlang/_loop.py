"""``erlang.ErlangEventLoop``: erlang_python's asyncio event loop, its policy and ``erlang.run``.

The loop is asyncio's Unix selector event loop (so the whole loop API is there: TCP, UDP and
Unix sockets, TLS and ``start_tls``, pipes, subprocesses, ``sendfile``, DNS through the default
executor) with the checks an embedded loop needs: a non-thread-safe method called from a thread
other than the one running the loop raises ``RuntimeError`` (asyncio checks only in debug
mode, and such a call corrupts the loop silently otherwise), and a signal handler asked for off
the main thread (inside the BEAM, where the VM owns the signals and no Python code runs on the
main thread) raises a ``RuntimeError`` that says so. It waits in ``epoll`` on its own thread:
an idle loop makes no system call until an fd is ready, a timer is due or another thread wakes
it (docs/asyncio.md, "The event loop"). Every loop is independent: loops on different threads
never see each other's events.

Imported on first use of ``erlang.ErlangEventLoop`` and the names around it (``asyncio`` is too
heavy for ``import erlang``).
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar, TypeVarTuple

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_get_ident = threading.get_ident
_call_soon = asyncio.BaseEventLoop.call_soon
_call_at = asyncio.BaseEventLoop.call_at
_Handle = asyncio.Handle
_TimerHandle = asyncio.TimerHandle
_heappush = heapq.heappush

_WRONG_THREAD = (
    "Non-thread-safe operation invoked on an event loop other than the current one: "
    "use loop.call_soon_threadsafe() or asyncio.run_coroutine_threadsafe() from other threads"
)


class _Selector(selectors.DefaultSelector):
    """The selector of an :class:`ErlangEventLoop`: before it blocks while the loop's only
    ``erlang.async_call`` in flight has just left, it lets the loop's inbox wait a few tens of
    microseconds for the reply spinning (``LoopInbox.spin``, GIL released), which saves the
    wake-up of a thread asleep in ``epoll_wait`` (docs/asyncio.md, "Performance"). A reply
    handed over that way writes no byte to the inbox's socket, so the inbox is reported ready
    here."""

    def __init__(self) -> None:
        super().__init__()
        # The loop's inbox (erlang._async) while it has one.
        self.erlang_inbox: Any = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        inbox = self.erlang_inbox
        if inbox is None or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        if timeout is None:
            if not inbox.spin():
                return super().select(None)
        else:
            start = time.monotonic()
            if not inbox.spin(timeout):
                return super().select(max(0.0, timeout - (time.monotonic() - start)))
        ready = super().select(0)
        fd = inbox.fileno()
        if not any(key.fd == fd for key, _ in ready):
            try:
                ready.append((self.get_key(fd), selectors.EVENT_READ))
            except KeyError:
                pass  # Nobody watches the inbox (its reader was removed): nothing to wake.
        return ready


class ErlangEventLoop(asyncio.SelectorEventLoop):
    """erlang_python's asyncio event loop (see the module's documentation)."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        """A new loop; ``selector`` as for ``asyncio.SelectorEventLoop`` (default: epoll, and
        the wait for the reply of an ``erlang.async_call`` spins briefly before it sleeps)."""
        if selector is None:
            selector = _Selector()
        # Told about the loop's inbox when there is one (erlang._async).
        self._erlang_selector = selector if isinstance(selector, _Selector) else None
        super().__init__(selector)
        # The mailboxes opened on this loop (erlang.open_mailbox), closed with it.
        self._mailboxes: weakref.WeakSet[Any] = weakref.WeakSet()
        # The inbox erlang.async_call's replies reach this loop through (erlang._async, made
        # on first use; False when there is none to have), closed with the loop.
        self._erlang_inbox: Any = None

    def close(self) -> None:
        """``asyncio`` ``close``; closes the loop's mailboxes first (their processes end) and
        its inbox (replies to ``erlang.async_call`` still on their way are dropped)."""
        if not self.is_running():
            for mailbox in list(self._mailboxes):
                mailbox.close()
            inbox, self._erlang_inbox = self._erlang_inbox, False
            if self._erlang_selector is not None:
                self._erlang_selector.erlang_inbox = None
            if inbox is not None and inbox is not False:
                if not self.is_closed():
                    self.remove_reader(inbox.fileno())
                inbox.close()
        super().close()

    def call_soon(
        self, callback: Callable[[*_Ts], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.Handle:
        """``asyncio`` ``call_soon``; raises ``RuntimeError`` when called from a thread other
        than the one running the loop."""
        owner = self._thread_id  # type: ignore[attr-defined]
        if owner is not None and owner != _get_ident():
            raise RuntimeError(_WRONG_THREAD)
        if self._debug or self._closed:  # type: ignore[attr-defined]
            return _call_soon(self, callback, *args, context=context)
        # What BaseEventLoop.call_soon does when not in debug mode, in one frame: the check
        # above then costs nothing (bench/loop_bench.py).
        handle = _Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        """``asyncio`` ``call_at`` (and so ``call_later``); raises ``RuntimeError`` when called
        from a thread other than the one running the loop."""
        owner = self._thread_id  # type: ignore[attr-defined]
        if owner is not None and owner != _get_ident():
            raise RuntimeError(_WRONG_THREAD)
        if when is None or self._debug or self._closed:  # type: ignore[attr-defined]
            return _call_at(self, when, callback, *args, context=context)
        # What BaseEventLoop.call_at does when not in debug mode, in one frame.
        timer = _TimerHandle(when, callback, args, self, context)
        _heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], Any], *args: *_Ts) -> None:
        """``asyncio`` ``add_signal_handler``, on the main thread only: elsewhere (always inside
        the BEAM, where the VM owns the signals) it raises ``RuntimeError``."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "add_signal_handler() works only on the main thread, and no Python code runs "
                "there inside the BEAM (the Erlang VM owns the signals): use an Erlang process "
                "(os:set_signal/2) to react to signals"
            )
        super().add_signal_handler(sig, callback, *args)

    def __repr__(self) -> str:
        return (
            f"<ErlangEventLoop running={self.is_running()} closed={self.is_closed()} "
            f"debug={self.get_debug()}>"
        )


def new_event_loop() -> ErlangEventLoop:
    """A new :class:`ErlangEventLoop` (not set as any thread's current loop)."""
    return ErlangEventLoop()


class ErlangEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The event loop policy whose loops are :class:`ErlangEventLoop`: one loop per thread,
    made on the first ``get_event_loop()`` of the main thread or set with ``set_event_loop``,
    as asyncio's default policy does; ``new_event_loop()`` (and so ``asyncio.run``) gives an
    :class:`ErlangEventLoop`. Child processes are watched as by asyncio's default policy."""

    _loop_factory = ErlangEventLoop

    def new_event_loop(self) -> ErlangEventLoop:
        """A new :class:`ErlangEventLoop`."""
        return ErlangEventLoop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Runs the coroutine ``main`` on a new :class:`ErlangEventLoop` and returns its result,
    as ``asyncio.run`` does (the loop is closed afterwards, after its async generators and
    default executor are shut down); raises ``RuntimeError`` when called from a running loop."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("erlang.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)


_installed_lock = threading.Lock()
_replaced: asyncio.AbstractEventLoopPolicy | None = None


def install_policy(enabled: bool = True) -> None:
    """Makes :class:`ErlangEventLoopPolicy` asyncio's policy for the whole interpreter
    (``enabled``), or puts back the policy it replaced (not ``enabled``); nothing happens
    when that is already the case. Inside the BEAM, the application runs it at start with its
    ``asyncio_policy`` variable (docs/asyncio.md, "asyncio.run in code called from Erlang")."""
    global _replaced
    with _installed_lock:
        current = asyncio.get_event_loop_policy()
        ours = isinstance(current, ErlangEventLoopPolicy)
        if enabled and not ours:
            _replaced = current
            asyncio.set_event_loop_policy(ErlangEventLoopPolicy())
        elif not enabled and ours:
            asyncio.set_event_loop_policy(_replaced)
            _replaced = None


def policy_installed() -> bool:
    """Whether asyncio's policy is an :class:`ErlangEventLoopPolicy`."""
    return isinstance(asyncio.get_event_loop_policy(), ErlangEventLoopPolicy)


__all__ = [
    "ErlangEventLoop",
    "ErlangEventLoopPolicy",
    "install_policy",
    "new_event_loop",
    "policy_installed",
    "run",
]
