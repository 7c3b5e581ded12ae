"""What keeps Python code from taking the Erlang node down by accident (inside the BEAM only).

Installed once by the NIF right after the interpreter starts (``install``); never on import.

- Calls that end or replace the OS process, which is the whole Erlang node (``os._exit``,
  ``os.abort``, ``os.exec*``, a signal sent to the node's own process or process group, or
  raised in it), raise ``erlang.ProcessExitRefusedError`` instead, and the refusal is logged.
  The application variable ``allow_process_exit`` (``true``) lets them through.
- ``multiprocessing`` (and ``concurrent.futures.ProcessPoolExecutor``) start their workers
  with the ``spawn`` method: ``fork`` would copy the whole multi-threaded VM into each child.

See docs/threading.md, "Python code cannot take the node down".
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from types import ModuleType
from typing import Any

from erlang._errors import ProcessExitRefusedError

__all__ = ["install"]


def install(refuses: Callable[[str], bool]) -> None:
    """Wraps the process-ending calls of ``os`` and ``signal``; ``refuses(description)`` is
    asked at each call that would end the process (it logs, and answers whether refusal is
    on). Sets multiprocessing's start method to ``spawn``."""
    for module, name, ends_process in _GUARDED:
        original = getattr(module, name, None)
        if original is not None:
            qualified = f"{module.__name__}.{name}"
            setattr(module, name, _guarded(original, qualified, refuses, ends_process))
    import multiprocessing

    multiprocessing.set_start_method("spawn", force=True)


def _always(*_args: Any, **_kwargs: Any) -> bool:
    return True


def _kills_self(pid: int, sig: int, /) -> bool:
    # Signal 0 only checks that the process exists; pid 0 and -pgrp mean the process group.
    return sig != 0 and pid in (os.getpid(), 0, -os.getpgrp())


def _kills_own_group(pgid: int, sig: int, /) -> bool:
    return sig != 0 and pgid in (0, os.getpgrp())


def _sends_signal(_thread_id: int, sig: int, /) -> bool:
    return sig != 0


# The calls guarded, and when each call ends the process.
_GUARDED: tuple[tuple[ModuleType, str, Callable[..., bool]], ...] = (
    (os, "_exit", _always),
    (os, "abort", _always),
    (os, "execv", _always),
    (os, "execve", _always),
    (os, "kill", _kills_self),
    (os, "killpg", _kills_own_group),
    (signal, "raise_signal", _always),
    (signal, "pthread_kill", _sends_signal),
)


def _guarded(
    original: Callable[..., Any],
    name: str,
    refuses: Callable[[str], bool],
    ends_process: Callable[..., bool],
) -> Callable[..., Any]:
    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if ends_process(*args, **kwargs):
            shown = ", ".join(repr(a) for a in args)
            what = f"{name}({shown})"
            if refuses(what):
                raise ProcessExitRefusedError(
                    f"{what} would end the Erlang node this Python runs in; refused. Return or "
                    "raise instead, or set the application variable allow_process_exit to true "
                    "(docs/threading.md)."
                )
        return original(*args, **kwargs)

    return guarded
