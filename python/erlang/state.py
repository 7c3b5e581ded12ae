"""Shared state: a key-value store in the BEAM that Erlang and every Python thread see alike.

The store is the ETS table of the Erlang module ``py_state`` (``py:state_store/2`` and friends
on the Erlang side). Each function here is one ``erlang.call`` of a callback that the
application registers: ``state_get``, ``state_set``, ``state_delete``, ``state_keys``,
``state_clear``, ``state_incr``, ``state_decr``. Values go to Erlang and back through the
normal conversion rules (docs/type-conversion.md); a ``str`` key becomes a binary, so Erlang
code shares an entry with Python by using a binary key (``<<"hits">>``).

A key is any value, as in Erlang: the store holds terms, so ``"k"`` and ``b"k"`` are one key
(the binary ``<<"k">>``) and ``1`` and ``1.0`` are two.

Counters are atomic: increments from any number of Python threads and Erlang processes are
never lost. The store holds at most ``state_max_keys`` keys (an application setting, default
100000): creating one more raises ``erlang.ErlangError`` (reason ``{state_full,Max}``);
existing keys can always be updated. See docs/state.md.
"""

from __future__ import annotations

from erlang._native import call

# Not `from typing import TYPE_CHECKING`: importing `typing` at run time costs more than the
# whole package (the import-time budget is 20 ms). Type checkers treat this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "state_clear",
    "state_decr",
    "state_delete",
    "state_get",
    "state_incr",
    "state_keys",
    "state_set",
]


def state_get(key: object, default: object = None) -> Any:
    """The value stored under ``key``, or ``default`` when there is none."""
    if default is None:
        return call("state_get", key)
    return call("state_get", key, default)


def state_set(key: object, value: object) -> None:
    """Store ``value`` under ``key``, replacing any previous value.

    Raises ``erlang.ErlangError`` when ``key`` is new and the store is full.
    """
    call("state_set", key, value)


def state_delete(key: object) -> None:
    """Remove ``key`` (nothing happens when it is not there)."""
    call("state_delete", key)


def state_keys() -> list[Any]:
    """Every key, in no particular order (``[]`` when the store is empty).

    Keys set from Python come back as ``str``; keys set from Erlang come back converted by the
    usual rules (a binary or an atom as ``str``, an integer as ``int``).
    """
    keys: list[Any] = call("state_keys")
    return keys


def state_clear() -> None:
    """Remove every key."""
    call("state_clear")


def state_incr(key: object, n: int = 1) -> int:
    """Atomically add ``n`` to the integer under ``key`` and return the new value.

    A missing key counts from 0. Raises ``erlang.ErlangError`` when the value is not an
    integer, or when ``key`` is new and the store is full; ``TypeError`` when ``n`` is not an
    ``int``.
    """
    value: int = call("state_incr", key, _amount(n))
    return value


def state_decr(key: object, n: int = 1) -> int:
    """Atomically subtract ``n`` from the integer under ``key``; see ``state_incr``."""
    value: int = call("state_decr", key, _amount(n))
    return value


def _amount(n: int) -> int:
    # bool is an int subclass, but Erlang receives True as the atom `true`.
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    return n
