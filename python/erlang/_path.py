"""The application's directories on ``sys.path`` (inside the BEAM; private).

``py_pool`` calls :func:`configure` at every start of the application with the directories of
the ``python_path`` setting, already resolved and checked by Erlang, and ``py:add_python_path/1``
calls :func:`add`; both pass paths as values, never as source. The directories go right after
``anchor``, the directory of erlang_python's own ``erlang`` package (``priv/python``), so that
an application's modules win over ``PYTHONPATH``, the standard library and site-packages, but
never shadow the ``erlang`` package the NIF was built with.

There is one interpreter per OS process, and it outlives the application: a new start replaces
what the previous one put on ``sys.path``. Importing this module has no side effects.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable

__all__ = ["add", "configure"]

_lock = threading.Lock()
# The directory the application's directories follow, and those directories, in order.
_anchor: str | None = None
_entries: list[str] = []


def configure(anchor: str | bytes, directories: Iterable[str | bytes]) -> None:
    """Make ``directories`` (in this order, duplicates dropped) the application's directories
    on ``sys.path``, right after ``anchor``; those a previous call or :func:`add` put there are
    taken off first."""
    global _anchor, _entries
    wanted = list(dict.fromkeys(os.fsdecode(d) for d in directories))
    with _lock:
        for entry in _entries:
            _remove(entry)
        _anchor = os.fsdecode(anchor)
        _entries = []
        _insert(wanted)


def add(directory: str | bytes) -> None:
    """Put ``directory`` on ``sys.path`` after the application's directories already there
    (nothing happens when it is one of them)."""
    entry = os.fsdecode(directory)
    with _lock:
        if entry in _entries:
            if entry in sys.path:
                return
            # Taken off by someone else (`py:deactivate_venv/0` restores an older sys.path).
            _entries.remove(entry)
        _insert([entry])


def _insert(new: list[str]) -> None:
    # After the last of ours still there, else after the anchor. `index` finds the first
    # occurrence, which is ours when the same directory is also further down (`PYTHONPATH`).
    ours = [entry for entry in _entries if entry in sys.path]
    after = ours[-1] if ours else _anchor
    at = sys.path.index(after) + 1 if after in sys.path else 0
    sys.path[at:at] = new
    _entries.extend(new)


def _remove(entry: str) -> None:
    try:
        sys.path.remove(entry)  # The first occurrence: ours (see `_insert`).
    except ValueError:
        pass  # Already taken off (by `py:deactivate_venv/0`, or by the application's code).
