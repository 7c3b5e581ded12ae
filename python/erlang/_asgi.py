"""The ASGI 3.0 runner behind ``py_asgi`` (docs/web-frameworks.md).

``py_asgi:run/4,5`` calls :func:`run`, a coroutine that erlang_python finishes on its asyncio
loop: the app gets the request body in one ``http.request`` message and its response is
collected into ``(status, headers, body)``. ``py_asgi:stream/6`` calls :func:`serve`, which
hands each response message to the Erlang process that asked (and asks it for more request
body) with ``erlang.async_call``: the app's ``send`` returns only once Erlang took the chunk,
so a slow client slows the app down instead of filling memory. ``py_asgi:build_scope/1,2``
calls :func:`scope_handle`.

The first request for an app runs its lifespan startup (once, shared by the requests that
arrive meanwhile); ``py_asgi:shutdown/2`` runs its shutdown. Nothing runs on import.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, cast
from urllib.parse import unquote

from erlang._native import _ASGI_SERVER_KEYS, _asgi_scope, binary_to_term
from erlang._web import check_header, resolve_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "ClientDisconnected",
    "ScopeHandle",
    "build_scope",
    "hold",
    "release",
    "run",
    "run_with_runner",
    "scope_handle",
    "serve",
    "shutdown",
    "startup",
    "websocket",
]

_log = logging.getLogger("erlang.asgi")

# The name py_asgi registers its event function under (py_asgi:stream/6).
EVENT_FUNCTION = "_py_asgi_event"

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})


class ClientDisconnected(OSError):
    """Raised by ``send`` once the Erlang side reported that the client went away (the ASGI
    spec asks servers for an ``OSError`` subclass there)."""


class ScopeHandle(collections.UserDict[str, Any]):
    """What ``py_asgi:build_scope/1,2`` returns to Erlang: an opaque handle (a ``dict`` would
    be converted back into a map) that reads like the scope dict; ``.data`` is the dict."""


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    raise TypeError(f"ASGI scope {what} must be a binary, not {type(value).__name__}")


def _bytes(value: object, what: str) -> bytes:
    # Erlang binaries that are valid UTF-8 arrive as str: encoding gives back the same bytes.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"ASGI scope {what} must be a binary, not {type(value).__name__}")


def _headers(value: object) -> list[tuple[bytes, bytes]]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"ASGI scope headers must be a list, not {type(value).__name__}")
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    for item in value:
        if type(item) is tuple and len(item) == 2:
            # What a server's {Name, Value} of UTF-8 binaries becomes: no checks to make.
            name, val = item
            if type(name) is str and type(val) is str:
                append(
                    (
                        name.encode("utf-8", "surrogateescape").lower(),
                        val.encode("utf-8", "surrogateescape"),
                    )
                )
                continue
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"ASGI header must be a [Name, Value] pair, not {item!r}")
        headers.append((_bytes(item[0], "header name").lower(), _bytes(item[1], "header value")))
    return headers


def _address(value: object, what: str) -> tuple[str, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    ):
        host = value[0]
        return (host if type(host) is str else _text(host, what + " host"), value[1])
    raise TypeError(f"ASGI scope {what} must be a {{Host, Port}} tuple, not {value!r}")


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"ASGI scope {what} must be a map, not {type(value).__name__}")
    return value


# The keys of the scope an HTTP server gives (py_http's): such a scope, with the usual types,
# takes _server_scope (the native reader of the scope's bytes reads the same keys).
_SERVER_KEYS = frozenset(_ASGI_SERVER_KEYS)


def _server_scope(raw: dict[str, Any]) -> dict[str, Any] | None:
    """What :func:`build_scope` makes of ``raw``, an ``http`` scope with the keys of
    ``_SERVER_KEYS`` whose values have the types a server gives (binaries as ``str``,
    ``{Host, Port}`` tuples or none); ``None`` when any value is of another kind, for the
    general path to check (and give the same result or error)."""
    kind, version, method, scheme, path, raw_path, query, root_path, headers, server, client = (
        raw["type"],
        raw["http_version"],
        raw["method"],
        raw["scheme"],
        raw["path"],
        raw["raw_path"],
        raw["query_string"],
        raw["root_path"],
        raw["headers"],
        raw["server"],
        raw["client"],
    )
    if not (
        kind == "http"
        and type(kind) is str
        and type(method) is str
        and type(scheme) is str
        and type(path) is str
        and type(raw_path) is str
        and type(query) is str
        and type(root_path) is str
        and type(version) is str
        and version in _HTTP_VERSIONS
        and path.startswith("/")
        and (server is None or _plain_address(server))
        and (client is None or _plain_address(client))
    ):
        return None
    # Everything the general path checks before the headers has passed: _headers gives the
    # same pairs, or raises the same error, as it would there.
    pairs = _headers(headers)
    return {
        "type": "http",
        "http_version": version,
        "method": method.upper(),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path.encode("utf-8", "surrogateescape"),
        "query_string": query.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "headers": pairs,
        "server": server,
        "client": client,
        "asgi": dict(_ASGI),
        "state": {},
    }


def _plain_address(value: object) -> bool:
    """Whether ``value`` is a ``(str, int)`` pair, an address that needs no conversion."""
    return (
        type(value) is tuple and len(value) == 2 and type(value[0]) is str and type(value[1]) is int
    )


def build_scope(raw: object, opts: object = None) -> dict[str, Any]:
    """The ASGI ``http`` (or ``websocket``) scope dict for the Erlang map ``raw``.

    Missing keys get the defaults of erlang_python 1.6; ``headers`` become
    ``[(bytes, bytes)]`` with lowercased names (given as ``[N, V]`` or ``{N, V}``),
    ``query_string`` and ``raw_path`` are bytes, ``server``/``client`` ``(host, port)`` tuples.
    ``opts`` may carry ``state`` and ``extensions`` maps, merged in. Raises ``TypeError`` for
    a value of the wrong type.
    """
    if type(raw) is dict and opts is None and raw.keys() == _SERVER_KEYS:
        plain = _server_scope(raw)
        if plain is not None:
            return plain
    if not isinstance(raw, dict):
        raise TypeError("expected map for ASGI scope")
    # The common values (what py_http and most callers give: str for binaries, tuples for
    # pairs) take the `type(...) is` fast paths; anything else goes through the checks of
    # _text, _bytes and _address, which give the same results and errors.
    scope: dict[str, Any] = dict(raw) if type(raw) is dict else dict(raw.items())
    for key in scope:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"ASGI scope keys must be atoms or binaries, not {key!r}")
    if opts is not None:
        for key, value in _dict(opts, "options").items():
            if key in ("state", "extensions"):
                scope[key] = {**_dict(scope.get(key, {}), key), **_dict(value, key)}
    get = scope.get
    kind = get("type", "http")
    if type(kind) is not str:
        kind = _text(kind, "type")
    if kind != "http" and kind != "websocket":
        raise ValueError(f"ASGI scope type must be http or websocket, not {kind!r}")
    scope["type"] = kind
    asgi = get("asgi")
    scope["asgi"] = dict(_ASGI) if asgi is None else {**_ASGI, **_dict(asgi, "asgi")}
    version = get("http_version", "1.1")
    if type(version) is not str:
        version = _text(version, "http_version")
    if version not in _HTTP_VERSIONS:
        raise ValueError(f"ASGI scope http_version must be one of 1.0, 1.1, 2, 3, not {version!r}")
    scope["http_version"] = version
    if kind == "http":
        method = get("method", "GET")
        scope["method"] = (method if type(method) is str else _text(method, "method")).upper()
    else:
        protocols = get("subprotocols", [])
        if not isinstance(protocols, (list, tuple)):
            raise TypeError("ASGI scope subprotocols must be a list of binaries")
        scope["subprotocols"] = [_text(p, "subprotocol") for p in protocols]
    scheme = get("scheme", "http" if kind == "http" else "ws")
    scope["scheme"] = scheme if type(scheme) is str else _text(scheme, "scheme")
    if "path" in scope:
        path = scope["path"]
        if type(path) is not str:
            path = scope["path"] = _text(path, "path")
        raw_path = get("raw_path")
        if type(raw_path) is str:
            scope["raw_path"] = raw_path.encode("utf-8", "surrogateescape")
        elif raw_path is not None:
            scope["raw_path"] = _bytes(raw_path, "raw_path")
        else:
            scope["raw_path"] = path.encode()
    else:
        scope["raw_path"] = _bytes(get("raw_path", b"/"), "raw_path")
        path = scope["path"] = unquote(scope["raw_path"].decode("latin-1"))
    if not path.startswith("/"):
        raise ValueError(f"ASGI scope path must start with /, not {path!r}")
    query = get("query_string", b"")
    scope["query_string"] = (
        query.encode("utf-8", "surrogateescape")
        if type(query) is str
        else _bytes(query, "query_string")
    )
    root_path = get("root_path", "")
    scope["root_path"] = root_path if type(root_path) is str else _text(root_path, "root_path")
    scope["headers"] = _headers(get("headers", []))
    for key in ("server", "client"):
        if key in scope:
            value = scope[key]
            if not _plain_address(value):
                scope[key] = _address(value, key)
    state = get("state")
    scope["state"] = {} if state is None and "state" not in scope else dict(_dict(state, "state"))
    if "extensions" in scope:
        scope["extensions"] = _dict(scope["extensions"], "extensions")
    return scope


def _encoded_scope(data: bytes) -> dict[str, Any]:
    """:func:`build_scope` of the term ``data`` encodes (what ``py_asgi:stream/6`` sends): a
    server's scope is read straight into the dict (``erlang._native._asgi_scope``), anything
    else is decoded and goes through the general rules, which give the same scope or raise."""
    scope = _asgi_scope(data, _ASGI)
    return build_scope(binary_to_term(data)) if scope is None else scope


def scope_handle(raw: object, opts: object = None) -> ScopeHandle:
    """``py_asgi:build_scope/2``: the scope of :func:`build_scope` as an opaque handle."""
    return ScopeHandle(build_scope(raw, opts))


# Lifespan ------------------------------------------------------------------------------------


class _Lifespan:
    """The lifespan of one app: a task on the loop, alive from startup until shutdown."""

    def __init__(self, app: App) -> None:
        self.state: dict[str, Any] = {}
        # The servers serving the app (hold/release); 0 when only requests started it.
        self.holders = 0
        self.supported = True
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._events.put_nowait({"type": "lifespan.startup"})
        self.task = asyncio.ensure_future(self._main(app))

    async def _main(self, app: App) -> None:
        scope = {"type": "lifespan", "asgi": dict(_ASGI), "state": self.state}
        try:
            await app(scope, self._events.get, self._send)
        except BaseException as exc:  # The app's exception decides what lifespan means.
            if not self.started.done():
                # An app that does not speak lifespan raises on its scope: serve without it.
                _log.debug("ASGI app has no lifespan support: %r", exc)
                self.supported = False
                self.started.set_result(None)
            if not self.stopped.done():
                self.stopped.set_exception(RuntimeError(f"lifespan ended: {exc!r}"))
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            return
        if not self.started.done():
            self.supported = False
            self.started.set_result(None)
        if not self.stopped.done():
            self.stopped.set_result(None)

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and not self.started.done():
            self.started.set_result(None)
        elif kind == "lifespan.startup.failed" and not self.started.done():
            msg = message.get("message", "")
            self.started.set_exception(RuntimeError(f"ASGI lifespan startup failed: {msg}"))
        elif kind == "lifespan.shutdown.complete" and not self.stopped.done():
            self.stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed" and not self.stopped.done():
            msg = message.get("message", "")
            self.stopped.set_exception(RuntimeError(f"ASGI lifespan shutdown failed: {msg}"))
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")

    async def shutdown(self) -> None:
        await self.started
        if self.supported and not self.stopped.done():
            self._events.put_nowait({"type": "lifespan.shutdown"})
        try:
            await self.stopped
        finally:
            await asyncio.wait({self.task})


# Per loop (erlang_python runs one; tests run many), then per app.
_lifespans: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], _Lifespan]
] = weakref.WeakKeyDictionary()


def _registry() -> dict[tuple[str, str], _Lifespan]:
    loop = asyncio.get_running_loop()
    # get() first: setdefault() makes a weak reference to the loop on every call.
    registry = _lifespans.get(loop)
    return registry if registry is not None else _lifespans.setdefault(loop, {})


def _started_state(module: str, name: str) -> dict[str, Any] | None:
    """The lifespan state of an app whose startup is over (every request but the first), with
    no coroutine made and awaited; ``None`` while its startup has not begun or still runs.
    Raises what a failed startup raised."""
    lifespan = _registry().get((module, name))
    if lifespan is None or not lifespan.started.done():
        return None
    lifespan.started.result()
    return lifespan.state


async def _state(module: str, name: str, app: App) -> dict[str, Any]:
    """The lifespan state of the app (its startup run by the first request)."""
    state = _started_state(module, name)
    if state is not None:
        return state
    key = (module, name)
    registry = _registry()
    lifespan = registry.get(key)
    if lifespan is None:
        lifespan = registry[key] = _Lifespan(app)
    # Shielded: a request that gives up does not stop the startup the others wait for.
    await asyncio.shield(lifespan.started)
    return lifespan.state


async def shutdown(module: str, name: str) -> bool:
    """``py_asgi:shutdown/2``: runs the app's lifespan shutdown; ``False`` if it never started."""
    lifespan = _registry().pop((module, name), None)
    if lifespan is None:
        return False
    await lifespan.shutdown()
    return True


async def startup(module: str, name: str) -> None:
    """``py_asgi:startup/2``: imports the app and runs its lifespan startup now, unless it
    already ran; raises what the import or a failed startup raised."""
    await _state(module, name, resolve_app(module, name))


async def hold(module: str, name: str) -> None:
    """A server (py_http) starts serving the app: :func:`startup`, then one more holder of
    its lifespan."""
    await startup(module, name)
    lifespan = _registry().get((module, name))
    if lifespan is not None:
        lifespan.holders += 1


async def release(module: str, name: str) -> bool:
    """A server that held the app stops: its lifespan shutdown runs once no server holds it
    (``True`` then, as :func:`shutdown`), else ``False``."""
    lifespan = _registry().get((module, name))
    if lifespan is None:
        return False
    lifespan.holders -= 1
    if lifespan.holders > 0:
        return False
    return await shutdown(module, name)


# HTTP ----------------------------------------------------------------------------------------


def _response_headers(value: object) -> list[tuple[bytes, bytes]]:
    # A list or tuple (what frameworks send) needs no ABC check; a (bytes, bytes) tuple, the
    # usual header, is kept as it is: (bytes(name), bytes(val)) would be an equal copy.
    if not isinstance(value, (list, tuple)) and (
        not isinstance(value, Iterable) or isinstance(value, (str, bytes))
    ):
        raise TypeError("ASGI response headers must be an iterable of [name, value] pairs")
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    for item in cast("Iterable[object]", value):
        if type(item) is tuple and len(item) == 2:
            name, val = item
            if type(name) is bytes and type(val) is bytes:
                check_header(name, val, "ASGI")
                append(item)
                continue
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"ASGI response header must be a (name, value) pair, not {item!r}")
        name, val = item
        if not isinstance(name, (bytes, bytearray)) or not isinstance(val, (bytes, bytearray)):
            raise TypeError(f"ASGI response header must be bytes, not {item!r}")
        pair = (bytes(name), bytes(val))
        check_header(*pair, "ASGI")
        append(pair)
    return headers


class _Response:
    """Checks the order of the app's ``http.response.*`` messages."""

    __slots__ = ("_waiters", "complete", "started")

    def __init__(self) -> None:
        self.started = False
        self.complete = False
        # Futures of the tasks in wait(); made only when one waits (most requests never do).
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        """Returns once the response is complete, or :meth:`wake` was called; each waiter
        has a future of its own, so cancelling one waiter leaves the others waiting."""
        if self.complete:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)

    def wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def check(self, message: Message) -> tuple[str, Any, Any]:
        kind = message.get("type")
        if self.complete:
            raise RuntimeError(f"ASGI message {kind!r} sent after the response was complete")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI http.response.start sent twice")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status < 600:
                raise TypeError(f"ASGI response status must be an int 100-599, not {status!r}")
            self.started = True
            return ("response_start", status, _response_headers(message.get("headers", [])))
        if kind == "http.response.body":
            if not self.started:
                raise RuntimeError("ASGI http.response.body sent before http.response.start")
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray)):
                raise TypeError(f"ASGI response body must be bytes, not {type(body).__name__}")
            more = bool(message.get("more_body", False))
            if not more:
                self.complete = True
                self.wake()
            return ("response_body", bytes(body), more)
        raise RuntimeError(f"unexpected ASGI message {kind!r} for an http scope")


def _prepared(
    module: str,
    name: str,
    raw_scope: object,
    opts: object,
    kind: str = "http",
    encoded: bool = False,
) -> tuple[App, dict[str, Any], bool]:
    """The app and the scope of a request, with no coroutine made, and whether the scope is
    ready: false when its lifespan state is still to come (the app's startup has not run,
    :func:`_prepare` waits for it). ``encoded``: ``raw_scope`` is the term in the external
    format (bytes). Raises what a bad scope or a failed startup raised."""
    app: App = resolve_app(module, name)
    if opts is None:
        options: dict[str, Any] = {}
    elif type(opts) is dict:
        options = opts
    else:
        options = _dict(opts, "options")
    if encoded:
        scope = _encoded_scope(cast("bytes", raw_scope))
    # A dict is no ScopeHandle: no ABC check for the usual scope.
    elif type(raw_scope) is not dict and isinstance(raw_scope, ScopeHandle):
        scope = dict(raw_scope.data)
        scope["state"] = dict(scope.get("state", {}))
    else:
        scope = build_scope(raw_scope)
    if scope["type"] != kind:
        other = "py_asgi:websocket/4" if kind == "http" else "py_asgi:run/5 or stream/6"
        raise ValueError(f"an ASGI {scope['type']} scope is served by {other}, not here")
    if options.get("lifespan", True):
        state = _started_state(module, name)
        if state is None:
            return app, scope, False
        _merge_state(scope, state)
    return app, scope, True


def _merge_state(scope: dict[str, Any], state: dict[str, Any]) -> None:
    """Gives the request a shallow copy of the app's lifespan ``state``, under what its own
    scope's state already holds."""
    scope["state"] = {**state, **scope["state"]}


async def _add_state(module: str, name: str, app: App, scope: dict[str, Any]) -> None:
    """:func:`_merge_state` once the app's lifespan startup (run by this request if it is the
    first) is over."""
    _merge_state(scope, await _state(module, name, app))


async def _prepare(
    module: str, name: str, raw_scope: object, opts: object, kind: str = "http"
) -> tuple[App, dict[str, Any]]:
    """:func:`_prepared`, waiting for the app's lifespan startup if it has not run yet."""
    app, scope, ready = _prepared(module, name, raw_scope, opts, kind)
    if not ready:
        await _add_state(module, name, app, scope)
    return app, scope


async def run(
    module: str, name: str, raw_scope: object, body: object, opts: object = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``py_asgi:run/5``: calls the app once with the whole request body and returns the
    response it sends as ``(status, headers, body)``. An app that raises, or returns before
    its response is complete, raises."""
    app, scope = await _prepare(module, name, raw_scope, opts)
    request = {"type": "http.request", "body": _bytes(body, "body"), "more_body": False}
    response = _Response()
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    pending: list[Message] = [request]

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await response.wait()  # Nobody disconnects before the response is complete.
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        event = response.check(message)
        if event[0] == "response_start":
            status, headers = event[1], event[2]
        elif event[1]:
            chunks.append(event[1])

    try:
        await app(scope, receive, send)
    except Exception:
        if not response.complete:
            raise
        # Starlette's error middleware sends its 500 and then re-raises: the client has its
        # answer, as with uvicorn; the exception goes to the log.
        _log.exception("ASGI app raised after its response was complete")
    if not response.started:
        raise RuntimeError("ASGI app returned without sending http.response.start")
    if not response.complete:
        raise RuntimeError("ASGI app returned before its response body was complete")
    return status, headers, b"".join(chunks)


def run_with_runner(runner: str, module: str, name: str, raw_scope: object, body: object) -> object:
    """``py_asgi:run/5`` with erlang_python 1.6's ``runner`` option: the runner module's
    ``_run_asgi_sync(module, callable, scope, body)`` with the scope built here."""
    scope = dict(raw_scope.data) if isinstance(raw_scope, ScopeHandle) else build_scope(raw_scope)
    runner_module: Any = importlib.import_module(runner)
    return runner_module._run_asgi_sync(module, name, scope, _bytes(body, "body"))


class _Stream(_Response):
    """One request of :func:`serve`: the app's ``receive`` and ``send``, and the response
    events waiting to be handed to the Erlang side.

    Events wait in ``pending`` until they are handed over, several in one call: the start goes
    with the first body chunk, and a complete response made in one loop step (the common case)
    goes back as the coroutine's result, with no call and no task at all: the start and the
    last chunk only schedule a check for the next loop step (:meth:`kick`), which starts a
    delivery if the app is still running then. The requests that need that check in one loop
    step share one callback (:func:`_kick_all`): under load a loop step runs many requests,
    and a callback each cost about 2 us of the loop's thread per request."""

    __slots__ = (
        "body_pending",
        "deliveries",
        "delivering",
        "first",
        "gone",
        "kick_scheduled",
        "kicks",
        "loop",
        "peer",
        "pending",
        "settled",
    )

    def __init__(self, peer: object, body: object, more_body: bool) -> None:
        super().__init__()
        self.peer = peer
        self.loop = asyncio.get_running_loop()
        self.body_pending = bool(more_body)
        self.first: Message | None = {
            "type": "http.request",
            "body": _bytes(body, "body"),
            "more_body": self.body_pending,
        }
        # True once Erlang reported that the client went away (the waiters woken).
        self.gone = False
        self.pending: list[tuple[str, Any, Any]] = []
        self.delivering: asyncio.Lock | None = None
        self.deliveries: list[asyncio.Task[None]] = []
        self.kick_scheduled = False
        self.kicks = _kick_list(self.loop)
        self.settled = False

    def disconnected(self) -> None:
        self.gone = True
        self.wake()

    async def receive(self) -> Message:
        first = self.first
        if first is not None:
            self.first = None
            return first
        if self.body_pending and not self.gone:
            reply = await _async_call()(EVENT_FUNCTION, self.peer, "request_body")
            if isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "body":
                self.body_pending = bool(reply[2])
                chunk = _bytes(reply[1], "request body chunk")
                return {"type": "http.request", "body": chunk, "more_body": self.body_pending}
            self.disconnected()
            return {"type": "http.disconnect"}
        # The whole body is in: the next message is the disconnect, after the response.
        while not self.complete and not self.gone:
            await self.wait()
        return {"type": "http.disconnect"}

    async def flush(self) -> None:
        if self.delivering is None:
            self.delivering = asyncio.Lock()
        async with self.delivering:
            if not self.pending or self.gone:
                return
            events = self.pending[:]
            self.pending.clear()
            reply = await _async_call()(EVENT_FUNCTION, self.peer, events)
            if reply != "ok":
                self.disconnected()

    def kick(self) -> None:
        self.kick_scheduled = False
        if self.pending and not self.settled:
            self.deliveries.append(self.loop.create_task(self.flush()))

    async def send(self, message: Message) -> None:
        if self.gone:
            raise ClientDisconnected("the client disconnected")
        event = self.check(message)
        self.pending.append(event)
        if event[0] == "response_start" or self.complete:
            # Held for one loop step: a body chunk or the app's return may follow at once.
            if not self.kick_scheduled:
                self.kick_scheduled = True
                kicks = self.kicks
                if kicks is None:
                    self.loop.call_soon(self.kick)
                else:
                    kicks.append(self)
                    if len(kicks) == 1:
                        self.loop.call_soon(_kick_all, kicks)
            return
        await self.flush()
        if self.gone:
            raise ClientDisconnected("the client disconnected")

    async def settle(self) -> str | tuple[str, list[tuple[str, Any, Any]]]:
        self.settled = True
        for task in self.deliveries:
            if not task.done():
                delivering = self.delivering
                if self.pending and (delivering is None or not delivering.locked()):
                    task.cancel()  # Not started: the events go back with the result.
                else:
                    await task
        if self.gone:
            return "disconnected"
        if self.pending:
            return ("events", self.pending)
        return "ok"


def _kick_list(loop: asyncio.AbstractEventLoop) -> list[_Stream] | None:
    """The requests of ``loop`` whose :meth:`_Stream.kick` is due at its next step (kept on
    the loop); ``None`` for a loop that takes no attribute (each request then schedules its
    own)."""
    try:
        kicks: list[_Stream] = loop._erlang_asgi_kicks  # type: ignore[attr-defined]
    except AttributeError:
        kicks = []
        try:
            loop._erlang_asgi_kicks = kicks  # type: ignore[attr-defined]
        except AttributeError:
            return None
    return kicks


def _kick_all(kicks: list[_Stream]) -> None:
    """Runs the due :meth:`_Stream.kick` of each request in ``kicks`` (emptied: the next
    request to need one schedules this again)."""
    due = kicks[:]
    kicks.clear()
    for stream in due:
        stream.kick()


# erlang.async_call, imported on first use (erlang imports this module's package).
_async_call_fn: Callable[..., Awaitable[object]] | None = None


def _async_call() -> Callable[..., Awaitable[object]]:
    global _async_call_fn
    if _async_call_fn is None:
        from erlang import async_call

        _async_call_fn = async_call
    return _async_call_fn


async def serve(
    module: str,
    name: str,
    raw_scope: object,
    body: object,
    more_body: bool,
    peer: object,
    opts: object = None,
) -> str | tuple[str, list[tuple[str, Any, Any]]]:
    """``py_asgi:stream/6``: calls the app, handing its response events (lists of them) to the
    Erlang process ``peer`` names (and asking it for the next request body chunk while
    ``more_body`` is true) with ``erlang.async_call``; a ``send`` of a body chunk with more to
    come returns when Erlang answered. ``peer`` is opaque here, handed back with each call
    (``py_asgi:stream/6`` encodes in it where the events go and how a call that comes after the
    request's end is answered). ``raw_scope`` is a scope as for :func:`build_scope`, a
    :class:`ScopeHandle`, or bytes: the scope term in the external format, as
    ``py_asgi:stream/6`` sends a server's. Returns ``'ok'``, ``('events', Events)`` with the
    events not handed over yet, or ``'disconnected'`` when Erlang reported that the client went
    away."""
    app, scope, ready = _prepared(module, name, raw_scope, opts, encoded=type(raw_scope) is bytes)
    if not ready:
        await _add_state(module, name, app, scope)
    stream = _Stream(peer, body, more_body)
    try:
        await app(scope, stream.receive, stream.send)
    except ClientDisconnected:
        await stream.settle()
        return "disconnected"
    except Exception:
        if stream.complete:
            _log.exception("ASGI app raised after its response was complete")
            return await stream.settle()
        stream.settled = True
        for task in stream.deliveries:
            task.cancel()
        if stream.gone:
            # The app failed on its way out after the client left: nobody to answer.
            _log.debug("ASGI app raised after the client disconnected", exc_info=True)
            return "disconnected"
        raise
    if not stream.started and not stream.gone:
        raise RuntimeError("ASGI app returned without sending http.response.start")
    if not stream.complete and not stream.gone:
        raise RuntimeError("ASGI app returned before its response body was complete")
    return await stream.settle()


# Websocket -----------------------------------------------------------------------------------

# How many websocket.send messages may wait for the Erlang side's ack (py_asgi:websocket/4's
# `window' option).
WS_WINDOW = 16
# Client messages the app has not received yet: at WS_PAUSE of them the owner is asked to stop
# reading from its client (a `pause' event), at WS_RESUME to go on (`resume').
WS_PAUSE = 64
WS_RESUME = 16


class _WebSocket:
    """One websocket session of ``py_asgi:websocket/4``: the app's messages go to the owner
    (an Erlang process) with ``erlang.send``, tagged; the owner's (client frames, the
    disconnect, acks) come through a mailbox, read by one task, so the app may send while
    nothing is received and receive while it sends."""

    def __init__(
        self, mailbox: Any, owner: object, tag: object, window: int, denial: bool = False
    ) -> None:
        from erlang import _native

        self._send_to_owner = _native.send
        self.mailbox = mailbox
        self.owner = owner
        self.tag = tag
        # Whether the owner answers websocket.http.response.* (the scope's extensions name
        # "websocket.http.response").
        self.denial = denial
        # "connecting", then "accepted", "responding" (a denial response started) or
        # "closed" (by the app: its close, or the denial response's last body).
        self.state = "connecting"
        self.connect_sent = False
        self.disconnect: Message | None = None  # once the client (or owner) is gone
        self.credit = window
        self.paused = False
        self.inbox: collections.deque[Message] = collections.deque()
        self.wake = asyncio.Event()  # set when inbox, credit or disconnect changed
        self.reader = asyncio.ensure_future(self._read())

    def emit(self, event: tuple[Any, ...]) -> None:
        self._send_to_owner(self.owner, (self.tag, event))  # type: ignore[arg-type]

    async def _read(self) -> None:
        from erlang._mailbox import MailboxClosedError

        try:
            while self.disconnect is None:
                message = await self.mailbox.receive()
                self._take(message)
                self.wake.set()
        except MailboxClosedError as exc:
            if self.disconnect is None:
                self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
                _log.debug("websocket mailbox closed: %s", exc.reason)
            self.wake.set()

    def _take(self, message: object) -> None:
        if message == "ack":
            self.credit += 1
        elif isinstance(message, tuple) and len(message) == 2 and message[0] == "text":
            text = message[1]
            if isinstance(text, (bytes, bytearray)):  # Not UTF-8: the server did not check.
                text = bytes(text).decode("utf-8", "replace")
            self.inbox.append({"type": "websocket.receive", "text": text})
        elif isinstance(message, tuple) and len(message) == 2 and message[0] == "binary":
            data = _bytes(message[1], "binary frame")
            self.inbox.append({"type": "websocket.receive", "bytes": data})
        elif (
            isinstance(message, tuple)
            and len(message) == 3
            and message[0] == "disconnect"
            and isinstance(message[1], int)
        ):
            reason = message[2]
            if isinstance(reason, (bytes, bytearray)):
                reason = bytes(reason).decode("utf-8", "replace")
            self.disconnect = {
                "type": "websocket.disconnect",
                "code": message[1],
                "reason": reason if isinstance(reason, str) else "",
            }
        else:
            _log.warning("websocket session ignored an unexpected message %r", message)
            return
        if len(self.inbox) >= WS_PAUSE and not self.paused:
            self.paused = True
            self.emit(("pause",))

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            if self.inbox:
                message = self.inbox.popleft()
                if self.paused and len(self.inbox) <= WS_RESUME and self.disconnect is None:
                    self.paused = False
                    self.emit(("resume",))
                return message
            if self.disconnect is not None:
                return dict(self.disconnect)
            self.wake.clear()
            await self.wake.wait()

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.state == "connecting":
            if kind == "websocket.accept":
                subprotocol = message.get("subprotocol")
                if subprotocol is not None and not isinstance(subprotocol, str):
                    raise TypeError(
                        f"ASGI websocket subprotocol must be a str, not {subprotocol!r}"
                    )
                headers = _response_headers(message.get("headers", []))
                if self.disconnect is not None:
                    raise ClientDisconnected("the client disconnected")
                self.state = "accepted"
                self.emit(("accept", subprotocol, headers))
                return
            if kind == "websocket.close":
                self.state = "closed"
                self.emit(("close", *self._close_args(message)))
                return
            if kind == "websocket.http.response.start":
                if not self.denial:
                    raise RuntimeError(
                        "ASGI message websocket.http.response.start needs the server's "
                        "websocket.http.response extension, which this scope does not name"
                    )
                status = message.get("status")
                if (
                    not isinstance(status, int)
                    or isinstance(status, bool)
                    or not 100 <= status <= 599
                    or status == 101
                ):
                    raise ValueError(
                        "ASGI websocket.http.response.start status must be an int 100-599 "
                        f"other than 101, not {status!r}"
                    )
                headers = _response_headers(message.get("headers", []))
                if self.disconnect is not None:
                    raise ClientDisconnected("the client disconnected")
                self.state = "responding"
                self.emit(("response", status, headers))
                return
            raise RuntimeError(
                "expected ASGI message websocket.accept, websocket.close or "
                f"websocket.http.response.start, not {kind!r}"
            )
        if self.state == "responding":
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"expected ASGI message websocket.http.response.body, not {kind!r}"
                )
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise TypeError(
                    "ASGI websocket.http.response.body body must be bytes, "
                    f"not {type(body).__name__}"
                )
            more = message.get("more_body", False)
            if not isinstance(more, bool):
                raise TypeError(
                    f"ASGI websocket.http.response.body more_body must be a bool, not {more!r}"
                )
            await self._take_credit()
            if not more:
                self.state = "closed"
            self.emit(("response_body", bytes(body), more))
            return
        if self.state == "closed":
            raise RuntimeError(f"ASGI message {kind!r} sent after websocket.close")
        if kind == "websocket.send":
            data = message.get("bytes")
            text = message.get("text")
            if (data is None) == (text is None):
                raise TypeError("ASGI websocket.send needs exactly one of bytes and text")
            if data is not None and not isinstance(data, (bytes, bytearray)):
                raise TypeError(
                    f"ASGI websocket.send bytes must be bytes, not {type(data).__name__}"
                )
            if text is not None and not isinstance(text, str):
                raise TypeError(
                    f"ASGI websocket.send text must be a str, not {type(text).__name__}"
                )
            await self._take_credit()
            self.emit(("text", text) if text is not None else ("binary", bytes(data or b"")))
            return
        if kind == "websocket.close":
            self.state = "closed"
            if self.disconnect is None:
                self.emit(("close", *self._close_args(message)))
            return
        raise RuntimeError(f"expected ASGI message websocket.send or websocket.close, not {kind!r}")

    async def _take_credit(self) -> None:
        """Waits until fewer than ``window`` sends wait for the owner's ack, and takes one;
        raises ``ClientDisconnected`` once the client is gone."""
        while self.credit <= 0 and self.disconnect is None:
            self.wake.clear()
            await self.wake.wait()
        if self.disconnect is not None:
            raise ClientDisconnected("the client disconnected")
        self.credit -= 1

    @staticmethod
    def _close_args(message: Message) -> tuple[int, str]:
        code = message.get("code", 1000)
        if code is None:
            code = 1000
        if not isinstance(code, int) or isinstance(code, bool) or not 1000 <= code <= 4999:
            raise ValueError(f"ASGI websocket close code must be an int 1000-4999, not {code!r}")
        reason = message.get("reason") or ""
        if not isinstance(reason, str):
            raise TypeError(f"ASGI websocket close reason must be a str, not {reason!r}")
        if len(reason.encode()) > 123:
            raise ValueError("ASGI websocket close reason must fit in 123 bytes of UTF-8")
        return code, reason


async def websocket(
    module: str, name: str, raw_scope: object, owner: object, tag: object, opts: object = None
) -> str:
    """``py_asgi:websocket/4``: runs a websocket session of the app. Sends
    ``(tag, ("mailbox", Pid))`` to the Erlang process ``owner`` first (where its client
    frames, disconnect and acks go), then ``(tag, Event)`` for each of the app's messages:
    ``("accept", Subprotocol, Headers)``, ``("text", Str)``, ``("binary", Bytes)``,
    ``("close", Code, Reason)`` (before an accept: the handshake is refused), and
    ``("pause",)``/``("resume",)`` when ``WS_PAUSE`` client messages wait for the app (the
    owner stops reading from its client) and when they are down to ``WS_RESUME``. When the
    scope's ``extensions`` name ``websocket.http.response``, the app may answer the handshake
    with an HTTP response instead: ``("response", Status, Headers)`` then
    ``("response_body", Bytes, MoreBody)`` until ``MoreBody`` is false. At most ``window``
    sends (and response bodies) wait for their ack; more wait in ``send``. Returns ``'ok'``
    when the app returned after accepting, closing or completing its response, or after the
    client left; raises when the app raised before the client left, or returned without
    doing one of those."""
    from erlang._mailbox import open_mailbox

    app, scope = await _prepare(module, name, raw_scope, opts, kind="websocket")
    options = _dict(opts, "options") if opts is not None else {}
    window = options.get("window", WS_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"websocket window must be a positive int, not {window!r}")
    mailbox = await open_mailbox()
    denial = "websocket.http.response" in scope.get("extensions", {})
    session = _WebSocket(mailbox, owner, tag, window, denial)
    try:
        session.emit(("mailbox", mailbox.pid))
        try:
            await app(scope, session.receive, session.send)
        except ClientDisconnected:
            return "ok"
        except Exception:
            if session.disconnect is not None:
                # Raised on its way out after the client left: nobody to tell.
                _log.debug("ASGI websocket app raised after the client left", exc_info=True)
                return "ok"
            raise
        if session.state == "connecting" and session.disconnect is None:
            raise RuntimeError("ASGI app returned without accepting or closing the websocket")
        if session.state == "responding" and session.disconnect is None:
            raise RuntimeError(
                "ASGI app returned before the last body of its websocket denial response"
            )
        return "ok"
    finally:
        session.reader.cancel()
        mailbox.close()
