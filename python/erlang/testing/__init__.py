"""The mocked BEAM: run and unit-test code that uses ``erlang`` in plain Python, no Erlang needed.

Inside erlang_python, Python values cross into Erlang and back through fixed conversion rules
(docs/type-conversion.md). ``MockBeam`` applies exactly those rules, from the same Rust code, so
a test sees what Erlang would see::

    from erlang.testing import MockBeam

    with MockBeam() as beam:
        assert beam.roundtrip({"a": (1, None)}) == {"a": (1, None)}
        assert str(beam.to_erlang({"a": (1, None)})) == '#{<<"a">> => {1,none}}'

It also stands in for the Erlang functions that Python code calls: ``erlang.call``,
``erlang.<name>``, ``from erlang import name`` and ``erlang.Function`` reach the Python callables
registered with ``MockBeam.register_function`` (as Erlang code registers funs with
``py:register_function/2``), and ``erlang.state_*`` reach a shared store with the semantics of
erlang_python's ``py_state`` (``MockBeam.state``).

With pytest, the ``beam`` fixture (plugin ``erlang.testing.plugin``, registered by the
``erlang`` package) gives a ``MockBeam`` that is active for one test. Outside any BEAM, real or
mocked, calls that need one raise ``erlang.NotInBeamError``.

How a feature plugs in (for maintainers): core's callback backend of the pip extension
(``rust/pyext/src/mock.rs``) hands every ``erlang.call`` to ``MockBeam._erlang_call`` of the
current mock, which converts the arguments and the result with the mock's ``MockHandles`` (the
external term format codec of ``rust/core``) and turns failures into ``erlang.ErlangError`` with
the native ``mock_erlang_error``. A feature that Python reaches through ``erlang.call`` (as
``state_*`` does) registers built-in functions in ``MockBeam.__init__`` and keeps its registry,
the part tests fill in and inspect, in a public attribute documented there.

The mock is process-wide, like the BEAM: while a ``MockBeam`` is active, every thread sees it.
"""

# Annotations stay unevaluated: inside the BEAM, `_native` has no mock names, and the module
# must still import (pytest loads the plugin there too).
from __future__ import annotations

import inspect
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, Self, TypeVar, final, overload

from erlang import _native
from erlang._errors import NotInBeamError

__all__ = ["ErlangException", "LogRecord", "MockBeam", "MockState", "Term"]

_T = TypeVar("_T")

# Guards the active-mock stack and core's name registry together: the names that
# `erlang.<name>` resolves are always those of the current mock.
_names_lock = threading.Lock()

# The Erlang classes of exceptions (`erlang:raise/3`).
_CLASSES = ("error", "exit", "throw")


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


class ErlangException(Exception):
    """Raised by a function registered on the mock to fail as an Erlang function fails.

    ``raise ErlangException("throw", "{not_found,42}")`` in a registered function makes the
    ``erlang.call`` that called it raise ``erlang.ErlangError`` with ``erlang_class`` ``'throw'``
    and ``reason`` ``'{not_found,42}'``: the class of an Erlang exception (``'error'``,
    ``'exit'`` or ``'throw'``) and its reason as the BEAM prints it (Erlang syntax, ``~tp``).
    ``stacktrace`` defaults to the Python stack where the exception was raised.

    Any other exception raised by a registered function fails the call as an Erlang ``error``
    whose reason is the exception's ``repr()``.
    """

    def __init__(
        self,
        erlang_class: Literal["error", "exit", "throw"],
        reason: str,
        stacktrace: str | None = None,
    ) -> None:
        if erlang_class not in _CLASSES:
            raise ValueError(
                f"erlang_class must be 'error', 'exit' or 'throw', not {erlang_class!r}"
            )
        super().__init__(erlang_class, reason)
        self.erlang_class = erlang_class
        self.reason = reason
        self.stacktrace = stacktrace

    def __str__(self) -> str:
        return f"{self.erlang_class}: {self.reason}"


def _function_clause() -> ErlangException:
    """What an Erlang fun raises when no clause matches its argument list."""
    return ErlangException("error", "function_clause")


@dataclass(frozen=True, slots=True)
class _Function:
    """A function registered on a mock."""

    fn: Callable[..., object]
    # Python's positional arguments as separate arguments rather than one list.
    spread: bool = False
    # A built-in: gets the arguments as external term format bytes, returns the Python result.
    builtin: bool = False


class MockState(MutableMapping[Any, Any]):
    """The shared state of a mocked BEAM (``MockBeam.state``): what ``erlang.state_*`` see.

    The store holds Erlang terms, as erlang_python's ``py_state`` table does: keys match when
    they are the same Erlang term (``"k"`` and ``b"k"`` are one key, the binary ``<<"k">>``;
    ``1`` and ``1.0`` are two). As a mapping it shows the Python view: ``state["hits"] = 3``
    stores what ``erlang.state_set("hits", 3)`` stores, ``state["hits"]`` reads what
    ``erlang.state_get("hits")`` returns, and iterating gives the keys as ``erlang.state_keys()``
    does (a key set as ``b"k"`` comes back as ``"k"``). Creating a key past
    ``MockBeam(state_max_keys=...)`` raises ``erlang.ErlangError``, as ``state_set`` does.

    It works while its mock is active (else ``erlang.NotInBeamError``), and it is emptied when the
    mock exits, as the BEAM's state is when erlang_python stops. Operations are atomic under
    threads.
    """

    def __init__(self, beam: MockBeam, max_keys: int) -> None:
        self._beam = beam
        self._max_keys = max_keys
        # Key term => value term, both in the external term format (canonical: one term, one
        # encoding), in creation order.
        self._terms: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    @property
    def max_keys(self) -> int:
        """How many keys the store holds at most (``MockBeam(state_max_keys=...)``)."""
        return self._max_keys

    def __getitem__(self, key: object) -> Any:
        handles = self._beam._active("state")
        with self._lock:
            value = self._terms.get(handles.term_to_binary(key))
        if value is None:
            raise KeyError(key)
        return handles.binary_to_term(value)

    def __setitem__(self, key: object, value: object) -> None:
        handles = self._beam._active("state")
        try:
            self._store(handles.term_to_binary(key), handles.term_to_binary(value))
        except ErlangException as exc:
            raise _erlang_error(exc) from None

    def __delitem__(self, key: object) -> None:
        handles = self._beam._active("state")
        with self._lock:
            value = self._terms.pop(handles.term_to_binary(key), None)
        if value is None:
            raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._python_keys())

    def __len__(self) -> int:
        self._beam._active("state")
        return len(self._terms)

    def __repr__(self) -> str:
        if self._beam._handles is None:
            return "<erlang.testing.MockState (inactive)>"
        return f"<erlang.testing.MockState {dict(self)!r}>"

    def _python_keys(self) -> list[Any]:
        handles = self._beam._active("state")
        with self._lock:
            keys = list(self._terms)
        return [handles.binary_to_term(key) for key in keys]

    # The operations of py_state, on terms.

    def _fetch(self, key: bytes) -> bytes | None:
        with self._lock:
            return self._terms.get(key)

    def _store(self, key: bytes, value: bytes) -> None:
        with self._lock:
            if key not in self._terms:
                self._reserve()
            self._terms[key] = value

    def _remove(self, key: bytes) -> None:
        with self._lock:
            self._terms.pop(key, None)

    def _clear(self) -> None:
        with self._lock:
            self._terms.clear()

    def _incr(self, handles: _native.MockHandles, key: bytes, n: int) -> int:
        with self._lock:
            value = self._terms.get(key)
            if value is None:
                self._reserve()
                new = n
            else:
                current = handles.binary_to_term(value)
                # Only an Erlang integer is counted on (True is the atom `true`).
                if type(current) is not int:
                    raise ErlangException("error", "badarg")
                new = current + n
            self._terms[key] = handles.term_to_binary(new)
        return new

    def _reserve(self) -> None:
        """Room for one more key, or the error of py_state past its bound."""
        if len(self._terms) >= self._max_keys:
            raise ErlangException("error", f"{{state_full,{self._max_keys}}}")


def _erlang_level(levelno: int) -> str:
    # py_logger's mapping of Python level numbers to OTP logger levels.
    for limit, name in ((10, "debug"), (20, "info"), (30, "warning"), (40, "error")):
        if levelno <= limit:
            return name
    return "critical"


class LogRecord(NamedTuple):
    """A Python ``logging`` record as erlang_python forwards it to OTP ``logger``."""

    level: int
    """The Python level number (``record.levelno``)."""
    erlang_level: str
    """The OTP ``logger`` level it maps to: debug, info, warning, error or critical."""
    logger: str
    """The Python logger's name."""
    message: str
    """The formatted message."""
    meta: dict[str, Any]
    """The metadata (module, lineno, funcName, thread, extra fields, exception text, ...) as
    Erlang receives it, converted back to Python."""


class _MockInbox:
    """The mocked BEAM's inbox of a mailbox (``erlang._mailbox`` drives it): what the BEAM's
    does, with a Python list for the queue."""

    def __init__(self, pid: _native.Pid, forget: Callable[[], object]) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lock = threading.Lock()
        self._messages: list[tuple[bool, Any]] = []
        self._pid = pid
        self._down: str | None = None
        self._closed = False
        self._forget = forget
        self._wake()  # the "process" is attached at once

    def _wake(self) -> None:
        # Under the lock, so that close() cannot close the fd (and another file take its
        # number) in between.
        with self._lock:
            if not self._closed:
                os.eventfd_write(self._fd, 1)

    def put(self, item: tuple[bool, Any]) -> bool:
        with self._lock:
            if self._closed or self._down is not None:
                return False
            self._messages.append(item)
        self._wake()
        return True

    def down(self, reason: str) -> None:
        with self._lock:
            self._down = reason
        self._wake()

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> tuple[list[tuple[bool, Any]], _native.Pid | None, str | None]:
        with self._lock:
            try:
                os.eventfd_read(self._fd)
            except BlockingIOError:
                pass
            messages, self._messages = self._messages, []
            return messages, self._pid, self._down

    def close(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._messages.clear()
        self._forget()
        return True

    def __del__(self) -> None:
        # As the BEAM's inbox: the fd lives as long as the inbox (a loop may still watch it
        # after close()).
        os.close(self._fd)


class MockBeam:
    """A mocked BEAM for code that uses ``erlang`` in plain Python (tests, tooling).

    Use it as a context manager, or through the ``beam`` pytest fixture. While it is active:

    - values go through the conversion rules of the real BEAM: ``to_erlang`` shows the Erlang
      term a value becomes, ``from_erlang`` the Python value an Erlang term becomes, and
      ``roundtrip`` does both. A value with no Erlang equivalent travels as an opaque handle, as
      in the BEAM, and comes back as the same object; handles keep their objects alive until
      the mock exits. Values that cannot be converted raise the error the real BEAM raises;
    - ``erlang.call(name, *args)`` (and ``erlang.<name>``, ``erlang.Function``) calls the
      function registered with ``register_function``; ``erlang.<name>`` and
      ``from erlang import name`` resolve exactly the registered names. ``calls`` records
      every call;
    - ``erlang.send(pid, message)`` appends ``(pid, message)`` to ``sent``, the message as the
      receiving process would hand it back to Python (converted both ways, raising what the
      BEAM raises); ``new_pid()`` makes pids to send to;
    - ``erlang.open_mailbox()`` opens a mailbox whose pid is one of ``new_pid()``'s:
      ``deliver(pid, message)`` (from any thread) puts a message in it, converted as the BEAM
      converts it, as ``erlang.send`` to it does too; ``kill_mailbox(pid, reason)`` ends its
      "process";
    - ``erlang.state_*`` use ``state``, a store with the semantics of erlang_python's
      ``py_state``, bounded to ``state_max_keys`` keys;
    - records that ``erlang.ErlangHandler`` forwards (``erlang.setup_logging``) are appended to
      ``log_records`` as ``LogRecord`` entries, after the same native level threshold;
    - tracing is on (``tracing``, as after ``py:enable_tracing()``): each ``erlang.Span`` that
      finishes is appended to ``spans`` as the span map that ``py:get_traces()`` returns, as
      Python receives it (a dict of 11 str keys, see docs/logging.md#tracing), in completion
      order. ``trace_parent`` stands for ``py:with_trace_parent/2``: root spans started while
      it is set become children of that ``(trace_id, span_id)``.

    Registered functions belong to the mock and stay registered across activations; the state
    and the handles last one activation. ``state_get``, ``state_set``, ``state_delete``,
    ``state_keys``, ``state_clear``, ``state_incr`` and ``state_decr`` are registered from the
    start, as erlang_python registers them when it starts.
    """

    def __init__(
        self, *, max_depth: int = _native.DEFAULT_MAX_DEPTH, state_max_keys: int = 100_000
    ) -> None:
        """``max_depth`` bounds nesting, as the ``max_depth`` setting of erlang_python does;
        ``state_max_keys`` bounds the shared state, as its ``state_max_keys`` setting does."""
        if type(state_max_keys) is not int or state_max_keys < 1:
            raise ValueError(f"state_max_keys must be a positive int, not {state_max_keys!r}")
        self.max_depth = max_depth
        self.calls: list[tuple[str, list[Any]]] = []
        """Every ``erlang.call`` this mock served, in order: the name and the list of
        arguments as the function received them (unknown names included)."""
        self.sent: list[tuple[_native.Pid, Any]] = []
        """Every ``erlang.send`` while this mock was active, in order: the pid and the
        message after a trip to Erlang and back."""
        self._pids = 0
        self._mailboxes: dict[_native.Pid, _MockInbox] = {}
        self.log_records: list[LogRecord] = []
        """Every log record forwarded while this mock was active, in order."""
        self.spans: list[dict[str, Any]] = []
        """Every span finished while this mock was active and tracing, in completion order
        (a child before its parent), as ``py:get_traces()`` returns them."""
        self.trace_parent: tuple[int, int] | None = None
        """``(trace_id, span_id)``: the parent of root spans, as ``py:with_trace_parent/2``
        sets it for the requests of an Erlang process; None for none."""
        self._tracing = True
        self.state = MockState(self, state_max_keys)
        """The shared state that ``erlang.state_*`` read and write (see ``MockState``)."""
        self._handles: _native.MockHandles | None = None
        self._functions: dict[str, _Function] = {
            "state_get": _Function(self._state_get, builtin=True),
            "state_set": _Function(self._state_set, builtin=True),
            "state_delete": _Function(self._state_delete, builtin=True),
            "state_keys": _Function(self._state_keys, builtin=True),
            "state_clear": _Function(self._state_clear, builtin=True),
            "state_incr": _Function(self._state_incr, builtin=True),
            "state_decr": _Function(self._state_decr, builtin=True),
        }

    def __enter__(self) -> Self:
        if _native.IN_BEAM:
            raise RuntimeError(
                "erlang.testing.MockBeam is for plain Python; this code runs inside the BEAM, "
                "where erlang is the real thing"
            )
        with _names_lock:
            if self._handles is not None:
                raise RuntimeError("this MockBeam is already active")
            self._handles = _native.MockHandles(self.max_depth)
            _native.mock_enter(self)
            _publish_names()
            _publish_tracing()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _names_lock:
            handles, self._handles = self._handles, None
            _native.mock_exit(self)
            _publish_names()
            _publish_tracing()
        # erlang_python stopped: its state is gone, and Erlang dropped every handle.
        self.state._clear()
        if handles is not None:
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

    # Without `spread`, `fn` takes one list; with it, any positional arguments.
    @overload
    def register_function(
        self, name: str, fn: Callable[[list[Any]], object], *, spread: Literal[False] = False
    ) -> None: ...
    @overload
    def register_function(self, name: str, fn: Callable[..., object], *, spread: bool) -> None: ...
    def register_function(
        self, name: str, fn: Callable[..., object], *, spread: bool = False
    ) -> None:
        """Make ``fn`` the Erlang function ``name``, as ``py:register_function(Name, Fun)``
        does in Erlang (registering a name again replaces its function).

        ``fn`` receives **one list holding all positional arguments**, as the Erlang fun does:
        ``erlang.f()`` calls ``fn([])``, ``erlang.f(1, "a")`` calls ``fn([1, "a"])``, the
        arguments converted as Erlang receives them and back (a tuple stays a tuple, a set
        becomes a list). With ``spread=True`` it receives them as separate arguments
        (``fn(1, "a")``) instead. Its return value is what the call returns in Python, after the
        same conversion; return a ``Term`` to return an exact Erlang term.

        ``fn`` may be an ``async def`` function (or return any awaitable): a synchronous
        ``erlang.call`` awaits it on a private event loop, in a helper thread when the calling
        thread is running a loop. An ``ErlangException`` it raises fails the call with that
        class and reason; any other exception as an Erlang ``error`` (see
        ``ErlangException``). Both reach the caller as ``erlang.ErlangError``.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        with _names_lock:
            self._functions[name] = _Function(fn, spread=spread)
            if self._is_current():
                _publish_names()

    def unregister_function(self, name: str) -> None:
        """Forget ``name``, as ``py:unregister_function(Name)`` does (nothing happens when it
        is not registered): ``erlang.name`` raises ``AttributeError`` again, and calling it
        raises ``erlang.ErlangError`` (``not_found``)."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        with _names_lock:
            self._functions.pop(name, None)
            if self._is_current():
                _publish_names()

    @property
    def tracing(self) -> bool:
        """Whether finished spans are recorded, as between ``py:enable_tracing()`` and
        ``py:disable_tracing()`` (default True). While it is False, ``erlang.Span`` records
        nothing; ``spans`` keeps what was recorded."""
        return self._tracing

    @tracing.setter
    def tracing(self, enabled: bool) -> None:
        with _names_lock:
            self._tracing = bool(enabled)
            if self._is_current():
                _publish_tracing()

    def clear_spans(self) -> None:
        """Forget the recorded spans, as ``py:clear_traces()`` does."""
        self.spans.clear()

    def new_pid(self) -> _native.Pid:
        """A new ``erlang.Pid``, unequal to every other this mock made (of the node
        ``mock@beam``): a process to ``erlang.send`` to."""
        self._pids += 1
        node = b"mock@beam"
        etf = (
            bytes([131, 88, 119, len(node)])
            + node
            + self._pids.to_bytes(4, "big")
            + bytes(4)  # serial
            + bytes(4)  # creation
        )
        return _native._pid_from_bytes(etf)

    def deliver(self, pid: _native.Pid, message: object) -> bool:
        """Puts ``message`` in the open mailbox whose pid is ``pid``, converted both ways as
        the BEAM converts a message (raising what the BEAM raises), as ``Pid ! Message`` in
        Erlang would; callable from any thread. False (the message dropped, as Erlang's send
        drops it) when ``pid`` is no open mailbox's."""
        handles = self._active("deliver()")
        value = handles.binary_to_term(handles.term_to_binary(message))
        inbox = self._mailboxes.get(pid)
        return inbox is not None and inbox.put((True, value))

    def kill_mailbox(self, pid: _native.Pid, reason: str = "killed") -> None:
        """Ends the "process" of the open mailbox ``pid`` with ``reason`` (as Erlang prints
        it), as ``exit(Pid, Reason)`` would: its ``receive`` raises
        ``erlang.MailboxClosedError`` once the messages already there are taken."""
        inbox = self._mailboxes.pop(pid, None)
        if inbox is None:
            raise KeyError(f"no open mailbox has the pid {pid!r}")
        inbox.down(reason)

    @property
    def mailboxes(self) -> list[_native.Pid]:
        """The pids of the mailboxes open on this mock."""
        return list(self._mailboxes)

    def _mailbox_open(self) -> _MockInbox:
        """``erlang._native._mailbox_open()``, from the native backend."""
        self._active("erlang.open_mailbox()")
        pid = self.new_pid()
        inbox = _MockInbox(pid, lambda: self._mailboxes.pop(pid, None))
        self._mailboxes[pid] = inbox
        return inbox

    def to_erlang(self, value: object) -> Term:
        """The Erlang term that ``value`` becomes when Python hands it to Erlang."""
        return Term(self._active("to_erlang()").term_to_binary(value))

    def from_erlang(self, term: Term | bytes | bytearray) -> Any:
        """The Python value that an Erlang term (a ``Term``, or external term format bytes
        such as Erlang's ``term_to_binary/1`` gives) becomes when Erlang hands it to Python."""
        data = term.etf if isinstance(term, Term) else term
        return self._active("from_erlang()").binary_to_term(data)

    def roundtrip(self, value: object) -> Any:
        """``value`` after a trip to Erlang and back: what Python gets when Erlang returns the
        term it received (tuples stay tuples, sets come back as lists, atoms as str)."""
        handles = self._active("roundtrip()")
        return handles.binary_to_term(handles.term_to_binary(value))

    def _active(self, method: str) -> _native.MockHandles:
        handles = self._handles
        if handles is None:
            raise NotInBeamError(
                f"MockBeam.{method} needs an active mock: use it inside "
                "`with MockBeam() as beam:`, or the `beam` pytest fixture"
            )
        return handles

    def _record_log(self, level: int, logger: str, message: str, meta: dict[str, Any]) -> None:
        try:
            seen = self.roundtrip(meta)
        except (TypeError, ValueError):
            # The BEAM sends a value with no Erlang term as its repr().
            seen = {key: repr(value) for key, value in meta.items()}
        self.log_records.append(LogRecord(level, _erlang_level(level), logger, message, seen))

    def _record_span(self, span: dict[str, Any]) -> None:
        self.spans.append(span)

    def _is_current(self) -> bool:
        return self._handles is not None and _current() is self

    def _erlang_call(self, name: str, args: tuple[object, ...]) -> Any:
        """``erlang.call(name, *args)``, from the native backend: each argument becomes an
        Erlang term as the BEAM converts it (raising what the BEAM raises), the function runs,
        and its result comes back through the conversion rules."""
        handles, function, terms = self._prepare_call("erlang.call", name, args)
        try:
            result = self._invoke(handles, function, terms)
            if inspect.isawaitable(result):
                result = _wait_for(result)
        except ErlangException as exc:
            failure = _erlang_error(exc)
        except Exception as exc:
            failure = _native.mock_erlang_error("error", repr(exc), _stack(exc))
        else:
            return self._returned(handles, function, result)
        raise failure from None

    def _erlang_send(self, pid: _native.Pid, message: object) -> None:
        """``erlang.send(pid, message)``, from the native backend: the message is converted
        as the BEAM converts it (raising what the BEAM raises) and recorded in ``sent``."""
        handles = self._active("erlang.send")
        value = handles.binary_to_term(handles.term_to_binary(message))
        self.sent.append((pid, value))
        inbox = self._mailboxes.get(pid)
        if inbox is not None:
            inbox.put((True, value))

    def _erlang_async_call(
        self, name: str, args: tuple[object, ...], done: Callable[[bool, Any], object]
    ) -> _Cancellable:
        """``erlang.async_call(name, *args)``, from the native backend: as ``_erlang_call``,
        but the outcome goes to ``done(ok, value)``, from a task of the caller's running loop
        (cancelled with the call). As in the BEAM, where the Erlang function runs in a process
        of its own, a plain function runs in a thread of the loop's default executor, so the
        loop never waits for it; an ``async def`` function's coroutine runs on the loop."""
        import asyncio

        handles, function, terms = self._prepare_call("erlang.async_call", name, args)
        loop = asyncio.get_running_loop()

        async def run() -> None:
            try:
                result = await loop.run_in_executor(None, self._invoke, handles, function, terms)
                if inspect.isawaitable(result):
                    result = await result
                value = self._returned(handles, function, result)
            except ErlangException as exc:
                done(False, _erlang_error(exc))
            except Exception as exc:
                done(False, _native.mock_erlang_error("error", repr(exc), _stack(exc)))
            else:
                done(True, value)

        return loop.create_task(run())

    def _prepare_call(
        self, what: str, name: str, args: tuple[object, ...]
    ) -> tuple[_native.MockHandles, _Function, list[bytes]]:
        """The arguments as Erlang terms (recorded in ``calls``) and the function called;
        raises the ``ErlangError`` of an unregistered name."""
        handles = self._active(what)
        terms = [handles.term_to_binary(arg) for arg in args]
        self.calls.append((name, [handles.binary_to_term(term) for term in terms]))
        function = self._functions.get(name)
        if function is None:
            raise _native.mock_erlang_error("not_found", name, "")
        return handles, function, terms

    @staticmethod
    def _invoke(handles: _native.MockHandles, function: _Function, terms: list[bytes]) -> Any:
        if function.builtin:
            return function.fn(handles, terms)
        received = [handles.binary_to_term(term) for term in terms]
        return function.fn(*received) if function.spread else function.fn(received)

    @staticmethod
    def _returned(handles: _native.MockHandles, function: _Function, result: object) -> Any:
        """A function's result as Python receives it (a built-in's is already converted)."""
        if function.builtin:
            return result
        etf = result.etf if isinstance(result, Term) else handles.term_to_binary(result)
        return handles.binary_to_term(etf)

    # The state_* functions, as py_state defines them: each receives the argument list and
    # raises function_clause when it does not match.

    def _state_get(self, handles: _native.MockHandles, args: list[bytes]) -> Any:
        match args:
            case [key]:
                default = None
            case [key, term]:
                default = handles.binary_to_term(term)
            case _:
                raise _function_clause()
        value = self.state._fetch(key)
        return default if value is None else handles.binary_to_term(value)

    def _state_set(self, handles: _native.MockHandles, args: list[bytes]) -> None:
        match args:
            case [key, value]:
                self.state._store(key, value)
            case _:
                raise _function_clause()

    def _state_delete(self, handles: _native.MockHandles, args: list[bytes]) -> None:
        match args:
            case [key]:
                self.state._remove(key)
            case _:
                raise _function_clause()

    def _state_keys(self, handles: _native.MockHandles, args: list[bytes]) -> list[Any]:
        if args:
            raise _function_clause()
        return self.state._python_keys()

    def _state_clear(self, handles: _native.MockHandles, args: list[bytes]) -> None:
        if args:
            raise _function_clause()
        self.state._clear()

    def _state_incr(self, handles: _native.MockHandles, args: list[bytes]) -> int:
        key, n = _counter_args(handles, args)
        return self.state._incr(handles, key, n)

    def _state_decr(self, handles: _native.MockHandles, args: list[bytes]) -> int:
        key, n = _counter_args(handles, args)
        return self.state._incr(handles, key, -n)


def _counter_args(handles: _native.MockHandles, args: list[bytes]) -> tuple[bytes, int]:
    """``[Key]`` or ``[Key, N]`` with an integer ``N``, as ``state_incr/1`` matches them."""
    match args:
        case [key]:
            return key, 1
        case [key, term]:
            n = handles.binary_to_term(term)
            if type(n) is int:
                return key, n
    raise _function_clause()


def _erlang_error(exc: ErlangException) -> BaseException:
    """The ``erlang.ErlangError`` that the caller of a function raising ``exc`` gets."""
    stack = _stack(exc) if exc.stacktrace is None else exc.stacktrace
    return _native.mock_erlang_error(exc.erlang_class, exc.reason, stack)


def _stack(exc: BaseException) -> str:
    """The Python stack of ``exc`` below the mock's frame that caught it, as text."""
    tb = exc.__traceback__
    return "".join(traceback.format_tb(tb.tb_next if tb is not None else None))


def _current() -> object:
    """The active mock, or None."""
    try:
        return _native.mock_current("erlang.testing")
    except NotInBeamError:
        return None


class _Cancellable(Protocol):
    def cancel(self) -> bool: ...


def _publish_names() -> None:
    """Core's name registry (what ``erlang.<name>`` resolves) is process-wide, like the BEAM's:
    make it hold the current mock's names, or none. Called with ``_names_lock`` held."""
    current = _current()
    names = list(current._functions) if isinstance(current, MockBeam) else []
    _native.mock_names(names)


def _publish_tracing() -> None:
    """Core's tracing flag is process-wide: on while the current mock traces. Called with
    ``_names_lock`` held."""
    current = _current()
    _native.mock_tracing(isinstance(current, MockBeam) and current.tracing)


def _wait_for(awaitable: Awaitable[_T]) -> _T:
    """The result of an async registered function for a synchronous ``erlang.call``: awaited on
    a private event loop (never the caller's: a thread that runs a loop cannot run another, so
    the loop then runs in a helper thread while the caller waits, as a synchronous call into
    the BEAM blocks it)."""
    import asyncio

    async def wait() -> _T:
        return await awaitable

    def run() -> _T:
        # A loop factory keeps the loop private: the thread's current event loop is untouched.
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(wait())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    outcome: list[tuple[bool, Any]] = []

    def helper() -> None:
        try:
            outcome.append((True, run()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=helper, name="erlang.testing async function")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: _T = value
    return result
