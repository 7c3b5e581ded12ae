"""``erlang.async_call``: call an Erlang function from a coroutine without blocking its loop.

Inside the BEAM each running loop gets an inbox on its first call (``_native._loop_inbox``):
the call is sent to the BEAM, and the scheduler that receives the Erlang function's reply
queues it in the inbox and writes one byte to the inbox's socket, which the loop watches
(``add_reader``); the loop's thread converts the reply and settles the future: one thread
hop. A loop without ``add_reader``, and the mocked BEAM, take the general way
(``_native._async_start``): the reply comes back on another thread, which hands it to the
loop with ``call_soon_threadsafe``. Imported on first use of ``erlang.async_call``
(``asyncio`` is too heavy for ``import erlang``).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from erlang import _native
from erlang._loop import ErlangEventLoop

# The inboxes of loops that are not ErlangEventLoops (those keep theirs in _erlang_inbox);
# False for a loop that cannot have one.
_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def async_call(name: str, /, *args: object) -> Any:
    """Call the Erlang function registered as ``name`` with ``args``, awaiting its result.

    Like ``erlang.call`` (same conversions, same ``erlang.ErlangError`` when the function fails
    or is not registered), but the event loop's thread never waits: any number of calls run
    concurrently (``asyncio.gather``), from any loop in any thread. Cancelling the awaiting
    task forgets the call at once (the Erlang function runs to its end; its result is
    dropped). Raises ``TypeError`` when ``name`` is not a str or an argument has no Erlang
    term, ``erlang.NotInBeamError`` outside the BEAM with no mocked BEAM active.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    inbox = _inbox_of(loop)
    if inbox is not None:
        call = inbox.call(name, args, future)
    else:

        def done(ok: bool, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:
                pass  # The loop is closed: nobody is waiting any more.

        call = _native._async_start(name, args, done)
    try:
        return await future
    except asyncio.CancelledError:
        call.cancel()
        raise


def _inbox_of(loop: asyncio.AbstractEventLoop) -> Any:
    """The inbox of ``loop`` (made and watched on first use), or None: outside the BEAM, or
    for a loop that cannot watch it."""
    if isinstance(loop, ErlangEventLoop):
        inbox = loop._erlang_inbox
        if inbox is None:
            inbox = loop._erlang_inbox = _attach(loop)
            if inbox is not False and loop._erlang_selector is not None:
                loop._erlang_selector.erlang_inbox = inbox
    else:
        try:
            inbox = _inboxes.get(loop)
        except TypeError:  # A loop with no weak references: no place to keep an inbox.
            return None
        if inbox is None:
            inbox = _inboxes[loop] = _attach(loop)
    return None if inbox is False else inbox


def _attach(loop: asyncio.AbstractEventLoop) -> Any:
    """A new inbox whose socket ``loop`` watches, or False when there is none to have."""
    inbox = _native._loop_inbox()
    if inbox is None:
        return False
    try:
        loop.add_reader(inbox.fileno(), inbox.drain)
    except (NotImplementedError, AttributeError):
        inbox.close()
        return False
    return inbox


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


__all__ = ["async_call"]
