"""The mocked BEAM: run and unit-test code that uses ``erlang`` in plain Python, no Erlang needed.

Inside erlang_python, Python values cross into Erlang and back through fixed conversion rules
(docs/type-conversion.md). ``MockBeam`` applies exactly those rules, from the same Rust code, so
a test sees what Erlang would see::

    from erlang.testing import MockBeam

    with MockBeam() as beam:
        assert beam.roundtrip({"a": (1, None)}) == {"a": (1, None)}
        assert str(beam.to_erlang({"a": (1, None)})) == '#{<<"a">> => {1,none}}'

With pytest, the ``beam`` fixture (plugin ``erlang.testing.plugin``, registered by the
``erlang`` package) gives a ``MockBeam`` that is active for one test. Outside any BEAM, real or
mocked, calls that need one raise ``erlang.NotInBeamError``.

Plugging a feature in (for maintainers): a BEAM-only function of ``erlang._native`` reaches the
active mock through ``mock::current`` in ``rust/pyext/src/mock.rs`` (which raises
``NotInBeamError`` when there is none) and calls a private method of ``MockBeam`` named after
the feature, passing values as external term format bytes (``MockHandles.term_to_binary``) so
that they go through the conversion rules. The feature's registry, the part tests fill in and
inspect, is a public attribute created in ``MockBeam.__init__`` and documented there.

The mock is process-wide, like the BEAM: while a ``MockBeam`` is active, every thread sees it.
"""

# Annotations stay unevaluated: inside the BEAM, `_native` has no mock names, and the module
# must still import (pytest loads the plugin there too).
from __future__ import annotations

from types import TracebackType
from typing import Any, Self, final

from erlang import _native
from erlang._errors import NotInBeamError

__all__ = ["MockBeam", "Term"]


@final
class Term:
    """An Erlang term, as bytes in the external term format, shown in Erlang syntax.

    ``str(term)`` is the term in Erlang syntax (``#{<<"a">> => {1,none}}``; lists always print
    element by element, as ``~w`` prints them) and ``term.etf`` the bytes. Terms made by the
    mock are written as ``term_to_binary(T, [{minor_version, 2}])`` writes them, so two terms
    are equal when their bytes are.
    """

    __slots__ = ("_etf",)

    def __init__(self, etf: bytes | bytearray) -> None:
        self._etf = bytes(etf)

    @property
    def etf(self) -> bytes:
        """The term in the external term format (what ``binary_to_term/1`` reads)."""
        return self._etf

    def __str__(self) -> str:
        return _native.format_term(self._etf)

    def __repr__(self) -> str:
        return f"<erlang.testing.Term {self}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Term):
            return self._etf == other._etf
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._etf)


class MockBeam:
    """A mocked BEAM for code that uses ``erlang`` in plain Python (tests, tooling).

    Use it as a context manager, or through the ``beam`` pytest fixture. While it is active,
    values go through the conversion rules of the real BEAM: ``to_erlang`` shows the Erlang
    term a value becomes, ``from_erlang`` the Python value an Erlang term becomes, and
    ``roundtrip`` does both. A value with no Erlang equivalent travels as an opaque handle, as
    in the BEAM, and comes back as the same object; handles keep their objects alive until the
    mock exits. Values that cannot be converted raise the error the real BEAM raises.
    """

    def __init__(self, *, max_depth: int = 1000) -> None:
        """``max_depth`` bounds nesting, as the ``max_depth`` setting of erlang_python does."""
        self.max_depth = max_depth
        self._handles: _native.MockHandles | None = None

    def __enter__(self) -> Self:
        if _native.IN_BEAM:
            raise RuntimeError(
                "erlang.testing.MockBeam is for plain Python; this code runs inside the BEAM, "
                "where erlang is the real thing"
            )
        if self._handles is not None:
            raise RuntimeError("this MockBeam is already active")
        self._handles = _native.MockHandles(self.max_depth)
        _native.mock_enter(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handles, self._handles = self._handles, None
        _native.mock_exit(self)
        if handles is not None:
            # Erlang dropped every handle: their objects are released.
            handles.clear()

    @staticmethod
    def current() -> MockBeam:
        """The active mocked BEAM (the innermost one); raises ``NotInBeamError`` if none is."""
        if _native.IN_BEAM:
            raise RuntimeError("there is no mocked BEAM inside the real BEAM")
        beam = _native.mock_current("erlang.testing.MockBeam.current()")
        if not isinstance(beam, MockBeam):
            raise TypeError(f"the active mock is not a MockBeam: {beam!r}")
        return beam

    def to_erlang(self, value: object) -> Term:
        """The Erlang term that ``value`` becomes when Python hands it to Erlang."""
        return Term(self._active("to_erlang").term_to_binary(value))

    def from_erlang(self, term: Term | bytes | bytearray) -> Any:
        """The Python value that an Erlang term (a ``Term``, or external term format bytes
        such as Erlang's ``term_to_binary/1`` gives) becomes when Erlang hands it to Python."""
        data = term.etf if isinstance(term, Term) else term
        return self._active("from_erlang").binary_to_term(data)

    def roundtrip(self, value: object) -> Any:
        """``value`` after a trip to Erlang and back: what Python gets when Erlang returns the
        term it received (tuples stay tuples, sets come back as lists, atoms as str)."""
        handles = self._active("roundtrip")
        return handles.binary_to_term(handles.term_to_binary(value))

    def _active(self, method: str) -> _native.MockHandles:
        if self._handles is None:
            raise NotInBeamError(
                f"MockBeam.{method}() needs an active mock: call it inside "
                "`with MockBeam() as beam:`, or use the `beam` pytest fixture"
            )
        return self._handles
