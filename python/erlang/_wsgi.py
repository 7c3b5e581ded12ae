"""The WSGI (PEP 3333) runner behind ``py_wsgi`` (docs/web-frameworks.md).

``py_wsgi:run/3,4`` calls :func:`run` on an executor: the app's response is collected into
``(status, headers, body)``. ``py_wsgi:stream/6`` calls :func:`stream`, which calls the app
and answers with the events of its first output (the status and headers, the first body
chunk) and a stream that Erlang pulls for the rest (``py:stream_next``), one pull of the app's
iterable each time Erlang asks. Nothing runs on import.
"""

from __future__ import annotations

import contextvars
import importlib
import io
import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import Any

from erlang._web import check_header, check_text, resolve_app

__all__ = ["ErrorStream", "build_environ", "close", "run", "run_with_runner", "stream"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_errors_log = logging.getLogger("erlang.wsgi")

# The defaults of erlang_python 1.6 for the CGI variables the caller leaves out.
_DEFAULTS = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
}
_BOOL_KEYS = ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")


class ErrorStream(io.TextIOBase):
    """``wsgi.errors``: what the app writes goes, line by line, to the ``erlang.wsgi`` logger
    at level ERROR (and so to Erlang's ``logger`` once ``erlang.setup_logging`` is set up)."""

    def __init__(self) -> None:
        super().__init__()
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"wsgi.errors takes str, not {type(s).__name__}")
        lines = (self._partial + s).split("\n")
        self._partial = lines.pop()
        for line in lines:
            _errors_log.error("%s", line)
        return len(s)

    def flush(self) -> None:
        if self._partial:
            _errors_log.error("%s", self._partial)
            self._partial = ""


def _native(value: object, key: str) -> str:
    # Binaries that were valid UTF-8 arrive as str; PEP 3333 wants the bytes as latin-1.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("latin-1")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"WSGI environ {key} must be a binary, not {type(value).__name__}")


def build_environ(raw: object, body: object = None) -> dict[str, Any]:
    """The WSGI environ for the Erlang map ``raw``: CGI variables become native strings
    (the bytes as latin-1, PEP 3333) with erlang_python 1.6's defaults for those left out,
    ``wsgi.input`` a ``BytesIO`` of the body (``body``, else a binary given as
    ``wsgi.input``), ``wsgi.errors`` an :class:`ErrorStream`, ``wsgi.version`` ``(1, 0)``.
    Raises ``TypeError`` for a value of the wrong type."""
    if not isinstance(raw, dict):
        raise TypeError("expected map for WSGI environ")
    environ: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise TypeError(f"WSGI environ keys must be atoms or binaries, not {key!r}")
        if key.startswith("wsgi.") or "." in key:
            environ[key] = value
        else:
            environ[key] = _native(value, key)
    for key, default in _DEFAULTS.items():
        environ.setdefault(key, default)
    data = body if body is not None else environ.get("wsgi.input", b"")
    if isinstance(data, (str, bytes, bytearray)):
        payload = data.encode() if isinstance(data, str) else bytes(data)
        environ["wsgi.input"] = io.BytesIO(payload)
        environ.setdefault("CONTENT_LENGTH", str(len(payload)) if payload else "")
    elif not hasattr(data, "read"):
        raise TypeError(f"WSGI body must be a binary, not {type(data).__name__}")
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.url_scheme"] = _native(environ.get("wsgi.url_scheme", "http"), "url_scheme")
    environ["wsgi.errors"] = ErrorStream()
    for key in _BOOL_KEYS:
        environ[key] = bool(environ.get(key, key != "wsgi.run_once"))
    environ.setdefault("wsgi.input_terminated", True)
    if not environ.get("CONTENT_LENGTH"):
        environ.pop("CONTENT_LENGTH", None)
    return environ


def _status(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"WSGI status must be a str, not {type(value).__name__}")
    code = value.split(" ", 1)[0]
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"WSGI status must start with a 3-digit code, not {value!r}")
    status = value.encode("latin-1")
    check_text(status, "WSGI status")
    return status


def _headers(value: object) -> list[tuple[bytes, bytes]]:
    if not isinstance(value, list):
        raise TypeError(f"WSGI response headers must be a list, not {type(value).__name__}")
    headers = []
    for item in value:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
        ):
            raise TypeError(f"WSGI response header must be a (str, str) tuple, not {item!r}")
        name, val = item[0].encode("latin-1"), item[1].encode("latin-1")
        check_header(name, val, "WSGI")
        headers.append((name, val))
    return headers


class _Response:
    """``start_response`` and ``write`` for one request (PEP 3333)."""

    def __init__(self) -> None:
        self.status: bytes | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.sent = False  # True once the status line may have reached the client.
        self.written: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle through the frame.
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        self.status = _status(status)
        self.headers = _headers(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise RuntimeError("write() called before start_response")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"WSGI write() takes bytes, not {type(data).__name__}")
        self.sent = True
        self.written.append(bytes(data))

    def chunk(self, data: object) -> bytes:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"WSGI app yielded {type(data).__name__}, not bytes")
        if self.status is None:
            raise RuntimeError("WSGI app yielded body before calling start_response")
        if data:
            self.sent = True
        return bytes(data)


def _close(result: object) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _call(
    module: str, name: str, raw: object, opts: object
) -> tuple[dict[str, Any], _Response, Iterable[bytes]]:
    """Calls the app once: its environ (``opts``' ``body`` as ``wsgi.input``), the response
    ``start_response`` fills in, and the iterable it returned."""
    body = opts.get("body") if isinstance(opts, dict) else None
    app: WsgiApp = resolve_app(module, name)
    environ = build_environ(raw, body)
    response = _Response()
    return environ, response, app(environ, response.start_response)


def run(
    module: str, name: str, raw: object, opts: object = None
) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """``py_wsgi:run/4``: calls the app and returns ``(status, headers, body)``; the
    iterable's ``close()`` is called whatever happens."""
    environ, response, result = _call(module, name, raw, opts)
    try:
        chunks = response.written
        for data in result:
            chunks.append(response.chunk(data))
    finally:
        _finish(result, environ)
    if response.status is None:
        raise RuntimeError("WSGI app returned without calling start_response")
    return response.status, response.headers, b"".join(chunks)


Event = tuple[str, Any, Any]


class _Stream(Iterator[list[Event]]):
    """The response of one :func:`stream` request, one batch of events at a time. Each
    ``py:stream_next`` is a request of its own, which gets a fresh ``contextvars`` context,
    while the app (Flask's ``stream_with_context``) expects the context variables it set in
    one step in the next: every step runs in the stream's own context."""

    def __init__(self, generator: Generator[list[Event], None, None]) -> None:
        self._generator = generator
        self._context = contextvars.copy_context()

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> list[Event]:
        return self._context.run(next, self._generator)

    def close(self) -> None:
        self._context.run(self._generator.close)


def stream(
    module: str, name: str, raw: object, opts: object = None
) -> tuple[list[Event], _Stream | None]:
    """``py_wsgi:stream/6``: calls the app and returns the events of its first output, and
    the stream that gives the rest (``None`` when there is no rest).

    Events are ``('response_start', Status, Headers)``, then ``('response_body', Chunk,
    MoreBody)``; the last is ``('response_body', b'', False)``. They come in batches, one per
    pull of the app's iterable (each ``next()`` of the stream pulls it once, when Erlang
    asks): a batch holds what ``write()`` gave and the chunk the iterable gave, and the first
    also the response start, so a response of one chunk takes two requests. An app that
    returns a list or tuple has its whole response in the first batch. The iterable is
    closed before the batch that ends the response is handed over, or when the app fails,
    or when Erlang stops pulling (the stream is closed or collected)."""
    events = _Stream(_batches(module, name, raw, opts))
    first = next(events)
    done = first[-1] == ("response_body", b"", False)
    return first, None if done else events


def _batches(
    module: str, name: str, raw: object, opts: object
) -> Generator[list[Event], None, None]:
    environ, response, result = _call(module, name, raw, opts)
    finished = False
    try:
        iterator = iter(result)
        buffered: list[bytes] = []
        exhausted = False
        # The headers are final at the first body output, write() or chunk, or at the end
        # (PEP 3333): until then start_response may still replace them.
        while not response.written and not buffered and not exhausted:
            exhausted = _pull(iterator, response, buffered)
        if response.status is None:
            raise RuntimeError("WSGI app returned without calling start_response")
        batch: list[Event] = [("response_start", response.status, response.headers)]
        # A list or tuple holds its whole body already: taking the rest runs no code of the
        # app, so it all goes in one batch.
        whole = type(result) in (list, tuple)
        while True:
            # What write() gave while the iterable produced its chunk came first.
            out, response.written, buffered = response.written + buffered, [], []
            batch.extend(("response_body", chunk, True) for chunk in out)
            if exhausted:
                break
            if not whole:
                yield batch
                batch = []
            exhausted = _pull(iterator, response, buffered)
        finished = True
        _finish(result, environ)
        batch.append(("response_body", b"", False))
        yield batch
    finally:
        if not finished:
            _finish(result, environ)


def _finish(result: object, environ: dict[str, Any]) -> None:
    try:
        _close(result)
    finally:
        environ["wsgi.errors"].flush()


def _pull(iterator: Iterator[object], response: _Response, buffered: list[bytes]) -> bool:
    """Takes the iterable's next chunk into ``buffered``; ``True`` once it is exhausted."""
    try:
        data = next(iterator)
    except StopIteration:
        return True
    chunk = response.chunk(data)
    if chunk:
        buffered.append(chunk)
    return False


def close(generator: Iterator[object]) -> None:
    """Closes a :func:`stream` that Erlang stopped pulling (the iterable's ``close()`` runs
    now)."""
    close_method = getattr(generator, "close", None)
    if close_method is not None:
        close_method()


def run_with_runner(
    runner: str, module: str, name: str, raw: object, opts: object = None
) -> object:
    """``py_wsgi:run/4`` with erlang_python 1.6's ``runner`` option: the runner module's
    ``_run_wsgi_sync(module, callable, environ)`` with the environ built here."""
    body = opts.get("body") if isinstance(opts, dict) else None
    environ = build_environ(raw, body)
    runner_module: Any = importlib.import_module(runner)
    return runner_module._run_wsgi_sync(module, name, environ)
