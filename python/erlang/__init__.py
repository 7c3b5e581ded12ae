"""Python side of erlang_python: Erlang values as Python objects, and calls into Erlang.

Inside the BEAM, ``erlang._native`` is the NIF's built-in module; installed with pip, it is the
extension module built from ``rust/pyext``. Importing this package has no side effects.

Erlang functions registered with ``py:register_function/2,3`` are reachable as
``erlang.call(name, *args)``, as attributes (``erlang.name(*args)``) and with
``from erlang import name``; any other attribute raises ``AttributeError`` (outside the BEAM,
with no mocked BEAM active, an ``erlang.NotInBeamError`` that is also an ``AttributeError``).
"""

from __future__ import annotations

from erlang._errors import NotInBeamError, ProcessExitRefusedError, not_in_beam_attribute
from erlang._native import (
    ErlangError,
    Function,
    Interrupted,
    Pid,
    PyArray,
    Ref,
    _beam_reachable,
    _is_registered,
    binary_to_term,
    call,
    py_array,
    send,
    term_to_binary,
)
from erlang.state import (
    state_clear,
    state_decr,
    state_delete,
    state_get,
    state_incr,
    state_keys,
    state_set,
)

# `ErlangHandler`, `setup_logging`, `async_call`, `ErlangEventLoop` and its companions, `Span`
# and `trace` are imported on first use (see `__getattr__`): importing `logging` or `asyncio`
# would multiply the cost of `import erlang`. Type checkers treat this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from erlang._async import async_call
    from erlang._logging import ErlangHandler, setup_logging
    from erlang._loop import ErlangEventLoop, ErlangEventLoopPolicy, new_event_loop, run
    from erlang._mailbox import Mailbox, MailboxClosedError, open_mailbox
    from erlang._tracing import Span, trace

__all__ = [
    "ErlangError",
    "ErlangEventLoop",
    "ErlangEventLoopPolicy",
    "ErlangHandler",
    "Function",
    "Interrupted",
    "Mailbox",
    "MailboxClosedError",
    "NotInBeamError",
    "Pid",
    "ProcessExitRefusedError",
    "PyArray",
    "Ref",
    "Span",
    "async_call",
    "binary_to_term",
    "call",
    "new_event_loop",
    "open_mailbox",
    "py_array",
    "run",
    "send",
    "setup_logging",
    "state_clear",
    "state_decr",
    "state_delete",
    "state_get",
    "state_incr",
    "state_keys",
    "state_set",
    "term_to_binary",
    "trace",
]


# Lazily imported names and the module that defines each.
_LAZY = {
    "ErlangHandler": "erlang._logging",
    "setup_logging": "erlang._logging",
    "async_call": "erlang._async",
    "ErlangEventLoop": "erlang._loop",
    "ErlangEventLoopPolicy": "erlang._loop",
    "new_event_loop": "erlang._loop",
    "run": "erlang._loop",
    "Mailbox": "erlang._mailbox",
    "MailboxClosedError": "erlang._mailbox",
    "open_mailbox": "erlang._mailbox",
    "Span": "erlang._tracing",
    "trace": "erlang._tracing",
}


def __getattr__(name: str) -> Function:
    """``erlang.<name>``: the Erlang function registered as ``name`` (else AttributeError).

    Type checkers see the lazily imported names through the imports above, so the only names
    they resolve here are registered functions, typed ``Function``.
    """
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("__") and _is_registered(name):
        return Function(name)
    elif not name.startswith("__") and not _beam_reachable():
        raise not_in_beam_attribute(name)
    else:
        raise AttributeError(f"module 'erlang' has no attribute {name!r}")
    # Kept as a module global: the next `erlang.Span` is a plain attribute lookup.
    globals()[name] = value
    return value  # type: ignore[no-any-return]  # a lazy name, typed by its import above
