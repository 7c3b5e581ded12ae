"""Small raw ASGI and WSGI apps for the edge cases of py_asgi and py_wsgi: apps that misbehave,
record what happened to them, or echo what they were given."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

# What the apps saw or did, for the tests to look at (reset with `reset()`).
EVENTS: list[Any] = []
SENT = 0


# Whether `linger` may return (set by `release_linger`).
LINGER = {"released": False}


def reset() -> None:
    global SENT
    EVENTS.clear()
    SENT = 0
    LINGER["released"] = False


def release_linger() -> None:
    LINGER["released"] = True


def events() -> list[Any]:
    return list(EVENTS)


def sent() -> int:
    return SENT


async def scope_types(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the type of each scope value (in a stable text form)."""
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")
    lines = []
    for key in sorted(scope):
        value = scope[key]
        if key == "headers":
            text = repr([(type(n).__name__, type(v).__name__) for n, v in value]) + repr(value)
        elif key in ("server", "client"):
            text = repr(value)
        else:
            text = f"{type(value).__name__} {value!r}"
        lines.append(f"{key}: {text}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": "\n".join(lines).encode()})


async def addresses(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's client and server, with a length (a kept-alive connection)."""
    if scope["type"] == "lifespan":
        return
    body = repr((scope["client"], scope["server"])).encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def linger(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers at once, then runs on until `release_linger()`: its response must reach the
    client before it returns."""
    if scope["type"] == "lifespan":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    await send({"type": "http.response.body", "body": b"early"})
    EVENTS.append("answered")
    for _ in range(6000):  # 30 s at most: a test that never releases it fails, not hangs.
        if LINGER["released"]:
            EVENTS.append("returned")
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("linger was never released")


# Tasks `late_reader` leaves behind, kept until they end.
LATE: set[asyncio.Task[None]] = set()


async def late_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers after the first body chunk, leaving a task that asks for the next one once
    `release_linger()` is called, after the request is over; records what it got."""
    if scope["type"] == "lifespan":
        return
    await receive()

    async def read_late() -> None:
        for _ in range(6000):  # 30 s at most, as `linger`.
            if LINGER["released"]:
                message = await receive()
                EVENTS.append(("late", message["type"]))
                return
            await asyncio.sleep(0.005)
        EVENTS.append(("late", "never released"))

    task = asyncio.get_running_loop().create_task(read_late())
    LATE.add(task)
    task.add_done_callback(LATE.discard)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def echo_header(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the query string into a response header, named `x-echo` or, with `name=` first,
    named by what follows: an app that trusts its input."""
    if scope["type"] == "lifespan":
        return
    query = unquote_to_bytes(scope["query_string"])
    name, value = (query[5:], b"v") if query.startswith(b"name=") else (b"x-echo", query)
    await send({"type": "http.response.start", "status": 200, "headers": [(name, value)]})
    await send({"type": "http.response.body", "body": b"echoed"})


def wsgi_echo_header(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """echo_header for WSGI; `status=` puts the query in the status line's reason instead."""
    query = unquote_to_bytes(environ["QUERY_STRING"]).decode("latin-1")
    if query.startswith("status="):
        start_response("200 " + query[7:], [])
    elif query.startswith("name="):
        start_response("200 OK", [(query[5:], "v")])
    else:
        start_response("200 OK", [("x-echo", query)])
    return [b"echoed"]


async def raise_before_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    raise KeyError("before start")


async def raise_after_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    raise LookupError("after start")


async def no_response(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


async def bad_status(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": "200", "headers": []})


async def bad_headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [("a", "b")]})


async def body_first(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.body", "body": b"x"})


async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sends five chunks, counting each send that returned; records how it ended."""
    global SENT
    if scope["type"] == "lifespan":
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": i < 4})
            SENT += 1
        EVENTS.append("finished")
    except OSError as exc:
        EVENTS.append(("oserror", type(exc).__name__))
        raise
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise
    finally:
        EVENTS.append("finally")


async def endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Streams until the client goes away; records how it ended."""
    if scope["type"] == "lifespan":
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
    except OSError as exc:
        EVENTS.append(("oserror", type(exc).__name__))
        raise
    finally:
        EVENTS.append("finally")


async def nap(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers after a short sleep (a request in flight during a graceful stop)."""
    if scope["type"] == "lifespan":
        return
    EVENTS.append("napping")
    await asyncio.sleep(0.3)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
    )
    await send({"type": "http.response.body", "body": b"rested"})


async def sleeper(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Never answers; records its cancellation."""
    if scope["type"] == "lifespan":
        return
    EVENTS.append("sleeping")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise


async def echo_chunks(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the request body chunk by chunk, then answers with the chunks' sizes and bytes."""
    if scope["type"] == "lifespan":
        return
    sizes, body = [], b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            EVENTS.append("disconnect")
            return
        sizes.append(len(message["body"]))
        body += message["body"]
        if not message.get("more_body", False):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-sizes", repr(sizes).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LifespanApp:
    """Counts its lifespan startups and shutdowns; its requests answer with the state."""

    def __init__(self) -> None:
        self.startups = 0
        self.shutdowns = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.startups += 1
                    await asyncio.sleep(0.01)  # requests arriving meanwhile wait for it
                    scope["state"]["n"] = self.startups
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.shutdowns += 1
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = repr((scope["state"], self.startups, self.shutdowns)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


lifespan_app = LifespanApp()
# Only py_http_SUITE:app_started_before_listening serves this one.
held_app = LifespanApp()


def held_counts() -> list[int]:
    return [held_app.startups, held_app.shutdowns]


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"unreachable"})


# WSGI ----------------------------------------------------------------------------------------

StartResponse = Callable[..., Callable[[bytes], None]]


def wsgi_environ(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answers with the type and value of each environ entry."""
    lines = []
    for key in sorted(environ):
        value = environ[key]
        shown = type(value).__name__ if key in ("wsgi.input", "wsgi.errors") else repr(value)
        lines.append(f"{key}: {type(value).__name__} {shown}")
    lines.append("input: " + repr(environ["wsgi.input"].read()))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]


def wsgi_raise_before(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    raise KeyError("before start_response")


class _Failing:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"one,"
        raise LookupError("while iterating")

    def close(self) -> None:
        EVENTS.append("closed")


def wsgi_raise_after(environ: dict[str, Any], start_response: StartResponse) -> _Failing:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Failing()


def wsgi_exc_info(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Replaces its status with exc_info before any body went out (PEP 3333's error path)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("late failure")
    except ValueError:
        import sys

        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"replaced"]


def wsgi_exc_info_after_write(
    environ: dict[str, Any], start_response: StartResponse
) -> list[bytes]:
    """exc_info after the body started: start_response re-raises the exception."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"already out")
    try:
        raise ValueError("too late")
    except ValueError:
        import sys

        start_response("500 Internal Server Error", [], sys.exc_info())
    return [b"unreachable"]


def wsgi_twice(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [])
    start_response("201 Created", [])
    return [b""]


class _Empty:
    """An iterable with no output whose close() is recorded."""

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        EVENTS.append("closed")


def wsgi_empty(environ: dict[str, Any], start_response: StartResponse) -> _Empty:
    start_response("204 No Content", [])
    return _Empty()


def wsgi_write(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written,")
    return [b"returned"]


def wsgi_write_iter(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """As wsgi_write, with an iterator in place of the list."""
    return iter(wsgi_write(environ, start_response))


def wsgi_no_start(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    return [b"nothing"]


def wsgi_bad_chunk(environ: dict[str, Any], start_response: StartResponse) -> list[str]:
    start_response("200 OK", [])
    return ["text is not bytes"]


def wsgi_errors(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    environ["wsgi.errors"].write("first line\nsecond ")
    environ["wsgi.errors"].write("line\n")
    start_response("200 OK", [])
    return [b"logged"]


class Capture(logging.Handler):
    """Collects the messages of the erlang.wsgi / erlang.asgi loggers into EVENTS."""

    def emit(self, record: logging.LogRecord) -> None:
        EVENTS.append((record.name, record.levelname, record.getMessage()))


_capture = Capture()


def capture_logs() -> None:
    for name in ("erlang.wsgi", "erlang.asgi"):
        logger = logging.getLogger(name)
        if _capture not in logger.handlers:
            logger.addHandler(_capture)
        logger.propagate = False


# Websocket apps ------------------------------------------------------------------------------


async def ws_raise_before_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await receive()
    raise KeyError("before accept")


async def ws_raise_after_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise LookupError("after accept")


async def ws_never_accepts(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    EVENTS.append("waiting")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise


async def ws_returns_without_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await receive()


async def ws_returns_after_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "only this"})


async def ws_recorder(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, echoes, and records what it received (the disconnect's code and reason)."""
    if scope["type"] == "lifespan":
        return
    EVENTS.append((await receive())["type"])
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(("disconnect", message["code"], message.get("reason", "")))
            return
        key = "text" if message.get("text") is not None else "bytes"
        EVENTS.append((key, len(message[key])))
        await send({"type": "websocket.send", key: message[key]})


async def ws_ignores_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts and never receives or ends: the server cancels it after its client left."""
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    EVENTS.append("accepted")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise


async def ws_flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sends without receiving until its send raises (the client left)."""
    global SENT
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    try:
        while True:
            await send({"type": "websocket.send", "bytes": b"x" * 1000})
            SENT += 1
    except OSError as exc:
        EVENTS.append(("oserror", type(exc).__name__))


async def ws_deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the handshake with a 418 of its own, its body in two parts (the
    websocket.http.response extension); `/raise` raises after the first part, `/big` sends
    2000 bytes."""
    if scope["type"] == "lifespan":
        return
    await receive()
    EVENTS.append(("extensions", sorted(scope.get("extensions", {}))))
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 418,
            "headers": [(b"content-type", b"text/plain"), (b"x-why", b"teapot")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": b"short ", "more_body": True})
    if scope["path"] == "/raise":
        raise LookupError("in the middle of a denial")
    body = b"x" * 2000 if scope["path"] == "/big" else b"and stout"
    await send({"type": "websocket.http.response.body", "body": body})
    EVENTS.append("denied")


def release() -> None:
    """Lets ws_lazy start receiving."""
    EVENTS.append("go")


async def ws_lazy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, receives nothing until `release()`, then echoes every text message (prefixed
    with its number) until the client leaves."""
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while "go" not in EVENTS:
        await asyncio.sleep(0.01)
    n = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(("received", n))
            return
        n += 1
        await send({"type": "websocket.send", "text": f"{n} {message['text']}"})
