"""The erlang_python 1.6 spelling of :mod:`erlang`'s event loop (``priv/erlang_loop.py`` there).

``from erlang_loop import ErlangEventLoop`` and
``asyncio.set_event_loop_policy(erlang_loop.get_event_loop_policy())`` keep working; new code
uses ``erlang.ErlangEventLoop``, ``erlang.new_event_loop()`` and ``erlang.run()``
(docs/asyncio.md, "Differences from erlang_python 1.6").
"""

from __future__ import annotations

from erlang._loop import ErlangEventLoop, ErlangEventLoopPolicy, new_event_loop, run


def get_event_loop_policy() -> ErlangEventLoopPolicy:
    """A new :class:`ErlangEventLoopPolicy`, as 1.6's ``erlang_loop.get_event_loop_policy()``
    returned its policy."""
    return ErlangEventLoopPolicy()


__all__ = [
    "ErlangEventLoop",
    "ErlangEventLoopPolicy",
    "get_event_loop_policy",
    "new_event_loop",
    "run",
]
