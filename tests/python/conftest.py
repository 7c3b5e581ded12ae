"""Shared test configuration, for the standalone run and the run inside the BEAM.

Inside the BEAM (tests/erlang/py_embedded_SUITE.erl) ``erlang._native`` is a built-in module,
and hypothesis keeps no example database (the working directory is Common Test's log dir).

Tests marked ``embedded`` run in both worlds, so they cannot use the ``beam`` fixture (the
mocked BEAM refuses to start inside the real one). They use these fixtures instead, which are
the mock in plain Python and the real thing inside the BEAM:

- ``erlang_funcs``: registers Python functions as Erlang functions. Standalone, with
  ``MockBeam.register_function``; inside the BEAM, as real Erlang funs registered with
  ``py:register_function/2`` by the helper ``ep_register_function`` of py_embedded_SUITE, each
  of which hands its argument list to ``ep_funcs.dispatch`` (a nested ``py:call``) and returns
  what the Python function returned, or raises what it raised (an
  ``erlang.testing.ErlangException`` as that Erlang class and reason, any other exception as
  ``error``; only the class and the exception's name in the reason agree in both worlds).
- ``shared_state``: an empty shared state (``erlang.state_*``), emptied again afterwards.
"""

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

import erlang
from erlang.testing import ErlangException

pytest_plugins = ["pytester"]

IN_BEAM = "erlang._native" in sys.builtin_module_names

if IN_BEAM:
    settings.register_profile("erlang_python", deadline=None, database=None)
else:
    settings.register_profile("erlang_python", deadline=None)
settings.load_profile("erlang_python")

Fn = Callable[[list[Any]], object]


class ErlangFuncs:
    """Registers Python functions as Erlang functions (``fn`` gets one list of arguments, as
    a fun registered with ``py:register_function/2`` does)."""

    def __init__(
        self, register: Callable[[str, Fn], None], unregister: Callable[[str], None]
    ) -> None:
        self._register = register
        self._unregister = unregister
        self.names: set[str] = set()

    def register(self, name: str, fn: Fn) -> None:
        self._register(name, fn)
        self.names.add(name)

    def unregister(self, name: str) -> None:
        self._unregister(name)
        self.names.discard(name)


def _dispatch_module() -> types.ModuleType:
    """``ep_funcs``: where the Erlang funs of py_embedded_SUITE find the Python functions."""
    module = sys.modules.get("ep_funcs")
    if module is None:
        module = types.ModuleType("ep_funcs", "Python functions registered as Erlang ones.")
        functions: dict[str, Fn] = {}

        def dispatch(name: str, args: list[Any]) -> tuple[Any, ...]:
            try:
                return ("ok", functions[name](args))
            except ErlangException as exc:
                return ("raise", exc.erlang_class, exc.reason)

        module.__dict__.update(functions=functions, dispatch=dispatch)
        sys.modules["ep_funcs"] = module
    return module


@pytest.fixture
def erlang_funcs(request: pytest.FixtureRequest) -> Iterator[ErlangFuncs]:
    """Python functions as Erlang functions, in the mock or in the real BEAM."""
    if not IN_BEAM:
        beam = request.getfixturevalue("beam")
        yield ErlangFuncs(beam.register_function, beam.unregister_function)
        return
    functions = _dispatch_module().functions

    def register(name: str, fn: Fn) -> None:
        functions[name] = fn
        erlang.call("ep_register_function", name)

    def unregister(name: str) -> None:
        erlang.call("ep_unregister_function", name)
        functions.pop(name, None)

    funcs = ErlangFuncs(register, unregister)
    yield funcs
    for name in list(funcs.names):
        funcs.unregister(name)


@pytest.fixture
def shared_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """An empty shared state: a fresh mock in plain Python, the BEAM's store emptied inside."""
    if not IN_BEAM:
        request.getfixturevalue("beam")
        yield
        return
    erlang.state_clear()
    yield
    erlang.state_clear()
