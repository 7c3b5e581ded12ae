"""Python side of erlang_python: Erlang values as Python objects, and calls into Erlang.

Inside the BEAM, ``erlang._native`` is the NIF's built-in module; installed with pip, it is the
extension module built from ``rust/pyext``. Importing this package has no side effects.

Erlang functions registered with ``py:register_function/2,3`` are reachable as
``erlang.call(name, *args)``, as attributes (``erlang.name(*args)``) and with
``from erlang import name``; any other attribute raises ``AttributeError``.
"""

from erlang._errors import NotInBeamError
from erlang._native import (
    ErlangError,
    Function,
    Interrupted,
    Pid,
    Ref,
    _is_registered,
    binary_to_term,
    call,
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

__all__ = [
    "ErlangError",
    "Function",
    "Interrupted",
    "NotInBeamError",
    "Pid",
    "Ref",
    "binary_to_term",
    "call",
    "state_clear",
    "state_decr",
    "state_delete",
    "state_get",
    "state_incr",
    "state_keys",
    "state_set",
    "term_to_binary",
]


def __getattr__(name: str) -> Function:
    if not name.startswith("__") and _is_registered(name):
        return Function(name)
    raise AttributeError(f"module 'erlang' has no attribute {name!r}")
