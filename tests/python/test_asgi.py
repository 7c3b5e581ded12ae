"""The ASGI runner behind py_asgi (``erlang._asgi``), standalone: scopes, the collected
response, lifespan, and the streaming protocol against the mocked BEAM."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erlang import _asgi
from erlang.testing import MockBeam

WEB = str(Path(__file__).resolve().parent.parent / "web")


@pytest.fixture(autouse=True)
def web_apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(WEB)
    yield
    if "edge_apps" in sys.modules:
        sys.modules["edge_apps"].reset()


def run(
    scope: dict[str, Any], body: bytes = b"", module: str = "fastapi_app", app: str = "app"
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return asyncio.run(_asgi.run(module, app, scope, body, {"lifespan": True}))


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        ({}, "type", "http"),
        ({}, "asgi", {"version": "3.0", "spec_version": "2.4"}),
        ({}, "http_version", "1.1"),
        ({}, "method", "GET"),
        ({"method": "post"}, "method", "POST"),
        ({}, "scheme", "http"),
        ({}, "path", "/"),
        ({}, "raw_path", b"/"),
        ({"path": "/a b"}, "raw_path", b"/a b"),
        ({"raw_path": "/a%20b"}, "path", "/a b"),
        ({"raw_path": b"/x"}, "raw_path", b"/x"),
        ({}, "query_string", b""),
        ({"query_string": "a=1"}, "query_string", b"a=1"),
        ({}, "root_path", ""),
        ({}, "headers", []),
        (
            {"headers": [["Host", "h"], ("X-Bin", b"\xff")]},
            "headers",
            [(b"host", b"h"), (b"x-bin", b"\xff")],
        ),
        ({"server": ("h", 80)}, "server", ("h", 80)),
        ({"client": ["c", 9]}, "client", ("c", 9)),
        ({"client": None}, "client", None),
        ({}, "state", {}),
        ({"extensions": {"e": {}}}, "extensions", {"e": {}}),
        ({"type": "websocket"}, "scheme", "ws"),
        ({"custom": 1}, "custom", 1),
    ],
)
def test_build_scope(raw: dict[str, Any], key: str, expected: object) -> None:
    assert _asgi.build_scope(raw)[key] == expected


def test_build_scope_opts_merge_state_and_extensions() -> None:
    scope = _asgi.build_scope({"state": {"a": 1}}, {"state": {"b": 2}, "extensions": {"x": {}}})
    assert scope["state"] == {"a": 1, "b": 2}
    assert scope["extensions"] == {"x": {}}


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        ([], TypeError, "expected map for ASGI scope"),
        ({b"\xff": 1}, TypeError, "keys must be atoms or binaries"),
        ({"headers": "x"}, TypeError, "headers must be a list"),
        ({"headers": [["a"]]}, TypeError, r"pair, not \['a'\]"),
        ({"headers": [[1, 2]]}, TypeError, "header name must be a binary"),
        ({"server": ("h",)}, TypeError, "server must be a {Host, Port} tuple"),
        ({"server": ("h", True)}, TypeError, "server must be"),
        ({"path": "x"}, ValueError, "must start with /"),
        ({"type": "lifespan"}, ValueError, "http or websocket"),
        ({"http_version": "0.9"}, ValueError, "http_version"),
        ({"state": []}, TypeError, "state must be a map"),
        ({"method": 1}, TypeError, "method must be a binary"),
    ],
)
def test_build_scope_errors(raw: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _asgi.build_scope(raw)


def test_scope_handle_is_a_mapping_not_a_dict() -> None:
    handle = _asgi.scope_handle({"path": "/p"})
    assert not isinstance(handle, dict)
    assert handle["path"] == "/p"
    assert handle.data["raw_path"] == b"/p"


def test_run_fastapi_json() -> None:
    status, headers, body = run({"path": "/items/5", "query_string": b"q=a"})
    assert status == 200
    assert (b"content-type", b"application/json") in headers
    assert json.loads(body) == {"item_id": 5, "q": "a", "limit": 10}


def test_run_fastapi_validation_error() -> None:
    scope = {
        "path": "/items",
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
    }
    status, _, body = run(scope, b'{"name": "", "price": 1}')
    assert status == 422
    assert json.loads(body)["detail"][0]["loc"] == ["body", "name"]


def test_run_lifespan_state_reaches_requests() -> None:
    status, _, body = run({"path": "/state"})
    assert (status, json.loads(body)) == (200, {"greeting": "hello from lifespan", "started": 1})


def test_run_collects_streaming_response() -> None:
    status, _, body = run({"path": "/stream", "query_string": "n=3"})
    assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\n")


def test_run_500_after_response_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="erlang.asgi"):
        status, _, body = run({"path": "/boom"})
    assert (status, body) == (500, b"Internal Server Error")
    assert [r.getMessage() for r in caplog.records] == [
        "ASGI app raised after its response was complete"
    ]


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        ("raise_before_start", KeyError, "before start"),
        ("raise_after_start", LookupError, "after start"),
        ("no_response", RuntimeError, "without sending http.response.start"),
        ("bad_status", TypeError, "status must be an int"),
        ("bad_headers", TypeError, "header must be bytes"),
        ("body_first", RuntimeError, "before http.response.start"),
    ],
)
def test_run_app_errors(app: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        run({}, module="edge_apps", app=app)


def test_lifespan_once_per_loop_and_shutdown() -> None:
    import edge_apps

    async def main() -> list[bytes]:
        bodies = await asyncio.gather(
            *(_asgi.run("edge_apps", "lifespan_app", {}, b"") for _ in range(5))
        )
        assert await _asgi.shutdown("edge_apps", "lifespan_app") is True
        assert await _asgi.shutdown("edge_apps", "lifespan_app") is False
        return [body for _, _, body in bodies]

    before = edge_apps.lifespan_app.startups
    bodies = asyncio.run(main())
    n = before + 1
    assert set(bodies) == {repr(({"n": n}, n, before)).encode()}
    assert edge_apps.lifespan_app.shutdowns == before + 1


def test_startup_before_requests_and_servers_holding_the_lifespan() -> None:
    import edge_apps

    app = edge_apps.LifespanApp()
    edge_apps.held_by_test = app  # type: ignore[attr-defined]

    async def main() -> list[tuple[int, int]]:
        seen = []
        await _asgi.startup("edge_apps", "held_by_test")
        await _asgi.startup("edge_apps", "held_by_test")  # once only
        seen.append((app.startups, app.shutdowns))
        await _asgi.hold("edge_apps", "held_by_test")
        await _asgi.hold("edge_apps", "held_by_test")
        _, _, body = await _asgi.run("edge_apps", "held_by_test", {}, b"")
        assert body == repr(({"n": 1}, 1, 0)).encode()
        assert await _asgi.release("edge_apps", "held_by_test") is False
        seen.append((app.startups, app.shutdowns))
        assert await _asgi.release("edge_apps", "held_by_test") is True
        seen.append((app.startups, app.shutdowns))
        assert await _asgi.release("edge_apps", "held_by_test") is False
        return seen

    try:
        assert asyncio.run(main()) == [(1, 0), (1, 0), (1, 1)]
    finally:
        del edge_apps.held_by_test  # type: ignore[attr-defined]


def test_startup_errors() -> None:
    async def start(module: str, name: str) -> None:
        await _asgi.startup(module, name)

    with pytest.raises(ModuleNotFoundError):
        asyncio.run(start("ep_no_such_module", "app"))
    with pytest.raises(AttributeError):
        asyncio.run(start("edge_apps", "no_such_app"))
    with pytest.raises(RuntimeError, match="startup failed: no database"):
        asyncio.run(start("edge_apps", "failing_startup"))


def test_lifespan_startup_failed() -> None:
    with pytest.raises(RuntimeError, match="startup failed: no database"):
        run({}, module="edge_apps", app="failing_startup")


def test_run_with_runner_module() -> None:
    with pytest.raises(ModuleNotFoundError):
        _asgi.run_with_runner("no_such_runner_module", "m", "a", {}, b"")


# Streaming against the mocked BEAM -------------------------------------------------------------


def serve(
    beam: MockBeam,
    answer: Any,
    scope: dict[str, Any],
    *,
    module: str = "fastapi_app",
    body: bytes = b"",
    more: bool = False,
) -> tuple[str, list[Any]]:
    # Response events come in lists (the start with the first chunk); the events of a response
    # complete when the app returned come back in the result, as ("events", Events).
    events: list[Any] = []

    def event(args: list[Any]) -> object:
        alias, gate, evs = args
        assert (alias, gate) == ("alias", "gate")
        if evs == "request_body":
            events.append(evs)
            return answer(evs)
        for ev in evs:
            events.append(ev)
            reply = answer(ev)
            if reply != "ok":
                return reply
        return "ok"

    beam.register_function(_asgi.EVENT_FUNCTION, event)
    app = "app" if module == "fastapi_app" else scope.pop("app")
    result = asyncio.run(
        _asgi.serve(module, app, scope, body, more, "alias", "gate", {"lifespan": False})
    )
    if isinstance(result, tuple):
        # Not converted by the mock: shown as Erlang would see them (UTF-8 binaries as str).
        events.extend(_as_erlang(ev) for ev in result[1])
        return "ok", events
    return result, events


def _as_erlang(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, (list, tuple)):
        return type(value)(_as_erlang(v) for v in value)
    return value


def test_serve_events_in_order(beam: MockBeam) -> None:
    # Events cross as Erlang terms: binaries that are valid UTF-8 come back as str.
    result, events = serve(beam, lambda ev: "ok", {"path": "/stream", "query_string": "n=2"})
    assert result == "ok"
    assert events == [
        ("response_start", 200, [("content-type", "text/plain; charset=utf-8")]),
        ("response_body", "chunk 0\n", True),
        ("response_body", "chunk 1\n", True),
        ("response_body", "", False),
    ]


def test_serve_send_waits_for_erlang(beam: MockBeam) -> None:
    import edge_apps

    seen = []

    def answer(ev: Any) -> str:
        if ev[0] == "response_body" and ev[2]:
            seen.append((int(ev[1]), edge_apps.sent()))
        return "ok"

    result, _ = serve(beam, answer, {"app": "counting"}, module="edge_apps")
    assert result == "ok"
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_serve_disconnect_raises_oserror_in_app(beam: MockBeam) -> None:
    import edge_apps

    result, events = serve(
        beam,
        lambda ev: "disconnect" if ev[1] == "1" else "ok",
        {"app": "counting"},
        module="edge_apps",
    )
    assert result == "disconnected"
    assert len(events) == 3
    assert edge_apps.events() == [("oserror", "ClientDisconnected"), "finally"]


def test_serve_request_body_chunks(beam: MockBeam) -> None:
    chunks = iter([("body", b"bb", True), ("body", "cc", False)])

    def answer(ev: Any) -> object:
        return next(chunks) if ev == "request_body" else "ok"

    result, events = serve(
        beam, answer, {"app": "echo_chunks"}, module="edge_apps", body=b"a", more=True
    )
    assert result == "ok"
    assert events == [
        "request_body",
        "request_body",
        ("response_start", 200, [("x-sizes", "[1, 2, 2]")]),
        ("response_body", "abbcc", False),
    ]


def test_serve_request_body_disconnect(beam: MockBeam) -> None:
    import edge_apps

    result, _ = serve(
        beam, lambda ev: "disconnect", {"app": "echo_chunks"}, module="edge_apps", more=True
    )
    assert result == "ok" or result == "disconnected"
    assert edge_apps.events() == ["disconnect"]
