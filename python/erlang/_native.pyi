"""Type stubs for ``erlang._native`` (built from rust/core, rust/nif and rust/pyext)."""

from collections.abc import Callable
from typing import Any, Never, Self, final

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "IN_BEAM",
    "_ASGI_SERVER_KEYS",
    "ErlangError",
    "Function",
    "Interrupted",
    "MockHandles",
    "Pid",
    "PyArray",
    "Ref",
    "_asgi_scope",
    "_async_start",
    "_beam_reachable",
    "_is_registered",
    "_log",
    "_log_threshold",
    "_loop_inbox",
    "_mailbox_open",
    "_pid_from_bytes",
    "_ref_from_bytes",
    "_span",
    "_trace_enabled",
    "_trace_parent",
    "binary_to_term",
    "call",
    "format_term",
    "mock_current",
    "mock_enter",
    "mock_erlang_error",
    "mock_exit",
    "mock_names",
    "mock_tracing",
    "py_array",
    "send",
    "term_to_binary",
]

IN_BEAM: bool
DEFAULT_MAX_DEPTH: int

@final
class Pid:
    """An Erlang process identifier; compares, hashes and round-trips exactly."""

    # Only Erlang makes them: `Pid()` raises TypeError, so no call type-checks either.
    def __new__(cls, _cannot_be_created: Never, /) -> Self: ...
    def to_bytes(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[[bytes], Pid], tuple[bytes]]: ...

@final
class Ref:
    """An Erlang reference; compares, hashes and round-trips exactly."""

    # Only Erlang makes them: `Ref()` raises TypeError, so no call type-checks either.
    def __new__(cls, _cannot_be_created: Never, /) -> Self: ...
    def to_bytes(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[[bytes], Ref], tuple[bytes]]: ...

def _pid_from_bytes(data: bytes | bytearray, /) -> Pid:
    """Rebuilds a pickled ``Pid`` from ``Pid.to_bytes()``; ValueError for other bytes."""

def _ref_from_bytes(data: bytes | bytearray, /) -> Ref:
    """Rebuilds a pickled ``Ref`` from ``Ref.to_bytes()``; ValueError for other bytes."""

class Interrupted(BaseException):
    """Raised in Python code that the BEAM stops (caller timed out or died)."""

class ErlangError(RuntimeError):
    """An Erlang function called from Python failed, or is not registered."""

    erlang_class: str
    reason: str
    stacktrace: str

@final
class Function:
    """A registered Erlang function, as ``erlang.<name>`` returns it."""

    def __new__(cls, name: str) -> Function: ...
    @property
    def name(self) -> str: ...
    def __call__(self, *args: object) -> Any:
        """Call the function with positional arguments only (any value: one with no Erlang
        term travels as an opaque handle)."""

def call(name: str, /, *args: object) -> Any:
    """Call the Erlang function registered as ``name`` with positional arguments only."""

def send(pid: Pid, message: object, /) -> None:
    """Sends ``message`` to the Erlang process ``pid``, as ``Pid ! Message`` does (dropped
    when the process is not alive)."""

def _mailbox_open() -> Any:
    """The inbox of a new mailbox (``erlang._mailbox`` drives it)."""

def _loop_inbox() -> Any:
    """A new inbox for the running loop's ``erlang.async_call`` replies (``erlang._async``
    drives it), or None when the backend has none (the mocked BEAM) or no BEAM is reachable."""

def _is_registered(name: str) -> bool: ...
def _beam_reachable() -> bool:
    """True inside the BEAM, and in plain Python while a mocked BEAM is active."""

def _async_start(name: str, args: tuple[Any, ...], done: Callable[[bool, Any], object], /) -> Any:
    """Start ``erlang.async_call(name, *args)``: ``done(ok, value)`` is called once, later, on
    some thread; returns a handle whose ``cancel()`` makes sure it never is."""

def _log(level: int, logger: str, message: str, meta: dict[str, Any], /) -> None: ...
def _log_threshold(level: int | None = None, /) -> int: ...
def _span(
    name: str,
    trace_id: int,
    span_id: int,
    parent_id: int | None,
    start_us: int,
    end_us: int,
    status: str,
    attrs: dict[str, Any],
    end_attrs: dict[str, Any],
    events: list[tuple[str, dict[str, Any], int]],
    /,
) -> None:
    """Send one finished span to Erlang (dropped while tracing is off). ``trace_id`` is a
    128-bit and the other ids 64-bit unsigned ints; times are CLOCK_MONOTONIC microseconds;
    ``status`` is ``'ok'`` or ``'error'``; ``events`` are ``(name, attrs, time_us)``, newest
    first."""

def _trace_enabled() -> bool:
    """Whether spans are recorded (one atomic load)."""

def _trace_parent() -> tuple[int, int] | None:
    """``(trace_id, span_id)`` that Erlang gave the running request as the parent of its root
    spans (``py:with_trace_parent/2``), or None."""

def term_to_binary(value: object, /) -> bytes:
    """Encode a value in Erlang's external term format, as ``term_to_binary/1`` would."""

@final
class PyArray:
    """A numpy array on its way to Erlang as ``{py_array, Dtype, Shape, Data}``."""

    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...

def py_array(array: object, /) -> PyArray:
    """Wraps an array (anything ``numpy.asarray`` takes) so that it reaches Erlang as
    ``{py_array, Dtype, Shape, Data}``."""

def binary_to_term(data: bytes | bytearray, /) -> Any:
    """Decode bytes in Erlang's external term format to the value Python receives."""

_ASGI_SERVER_KEYS: tuple[str, ...]
"""The eleven keys of an HTTP server's ASGI scope, in the order :func:`_asgi_scope` builds."""

def _asgi_scope(data: bytes, asgi: dict[str, str], /) -> dict[str, Any] | None:
    """The ASGI ``http`` scope of ``data``, a server's scope map in the external format, with
    a copy of ``asgi`` and an empty ``state``; ``None`` for any other term (``erlang._asgi``)."""

# The mocked BEAM's native half: only in the pip extension (rust/pyext), never in the BEAM.
# `max_depth` defaults to core's DEFAULT_MAX_DEPTH (1000), a Rust constant the runtime
# signature shows as `...`.

@final
class MockHandles:
    """The handle table of one mocked BEAM, with the term functions that use it."""

    def __new__(cls, max_depth: int = ...) -> MockHandles: ...
    def term_to_binary(self, value: object, /) -> bytes: ...
    def binary_to_term(self, data: bytes | bytearray, /) -> Any: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...

def format_term(data: bytes | bytearray, /, max_depth: int = ...) -> str:
    """External term format bytes in Erlang syntax."""

def mock_enter(beam: object, /) -> None: ...
def mock_exit(beam: object, /) -> None: ...
def mock_current(what: str, /) -> Any: ...
def mock_names(names: list[str], /) -> None:
    """Make exactly ``names`` resolve as ``erlang.<name>``."""

def mock_tracing(enabled: bool, /) -> None:
    """Turn span recording on or off."""

def mock_erlang_error(erlang_class: str, reason: str, stacktrace: str, /) -> ErlangError:
    """The ``ErlangError`` raised when an Erlang function fails or is not registered."""
