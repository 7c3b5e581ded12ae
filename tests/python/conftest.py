"""Shared test configuration, for the standalone run and the run inside the BEAM.

Inside the BEAM (tests/erlang/py_embedded_SUITE.erl) ``erlang._native`` is a built-in module,
and hypothesis keeps no example database (the working directory is Common Test's log dir).
Properties are derandomized (the same examples on every run); ``HYPOTHESIS_PROFILE=fuzz`` (what
``make fuzz`` sets) runs ``HYPOTHESIS_MAX_EXAMPLES`` random examples per property instead of
hypothesis's default of 100.

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
- ``tracing``: tracing on with no spans collected (``Tracing``); off and emptied afterwards.
  Standalone, the mock's ``spans``, ``tracing`` and ``trace_parent``; inside the BEAM,
  ``py:get_traces/0``, ``py:enable_tracing/0`` / ``py:disable_tracing/0`` and the trace parent
  of the Erlang process running pytest, through the helper ``ep_tracing`` of
  py_embedded_SUITE.
"""

import os
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

# The test runs (and so CI) are derandomized: the same examples on every run, so that a run's
# outcome depends on the code alone; `make fuzz` explores at random.
if IN_BEAM:
    settings.register_profile("erlang_python", deadline=None, database=None, derandomize=True)
else:
    settings.register_profile("erlang_python", deadline=None, derandomize=True)
# `make fuzz`: long runs, HYPOTHESIS_MAX_EXAMPLES examples per property, at random, selected
# with HYPOTHESIS_PROFILE=fuzz.
settings.register_profile(
    "fuzz",
    parent=settings.get_profile("erlang_python"),
    derandomize=False,
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "100000")),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "erlang_python"))

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


class Tracing:
    """The collected spans (as ``py:get_traces()`` returns them, seen from Python), the
    tracing switch and the Erlang-given parent, in the mock or in the real BEAM."""

    def __init__(
        self,
        spans: Callable[[], list[dict[str, Any]]],
        enable: Callable[[bool], None],
        set_parent: Callable[[tuple[int, int] | None], None],
    ) -> None:
        self._spans = spans
        self.enable = enable
        self.set_parent = set_parent

    def spans(self) -> list[dict[str, Any]]:
        return self._spans()

    def names(self) -> list[str]:
        return [span["name"] for span in self._spans()]

    def by_name(self, name: str) -> dict[str, Any]:
        [span] = [span for span in self._spans() if span["name"] == name]
        return span


@pytest.fixture
def tracing(request: pytest.FixtureRequest) -> Iterator[Tracing]:
    """Tracing on, nothing collected yet; off, emptied and with no parent afterwards."""
    if not IN_BEAM:
        beam = request.getfixturevalue("beam")

        def enable(on: bool) -> None:
            beam.tracing = on

        def set_parent(parent: tuple[int, int] | None) -> None:
            beam.trace_parent = parent

        yield Tracing(lambda: list(beam.spans), enable, set_parent)
        return
    erlang.call("ep_tracing", "start")
    try:
        yield Tracing(
            lambda: erlang.call("ep_tracing", "spans"),
            lambda on: erlang.call("ep_tracing", "enable" if on else "disable"),
            lambda parent: erlang.call("ep_tracing", "parent", parent),
        )
    finally:
        erlang.call("ep_tracing", "stop")


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
