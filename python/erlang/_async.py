"""``erlang.async_call``: call an Erlang function from a coroutine without blocking its loop.

The call is started with ``erlang._native._async_start``, which sends it to the BEAM (or to
the active mocked BEAM) and returns at once; the reply comes back on another thread, which
hands it to the caller's loop with ``call_soon_threadsafe``. Imported on first use of
``erlang.async_call`` (``asyncio`` is too heavy for ``import erlang``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from erlang import _native


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


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


__all__ = ["async_call"]
