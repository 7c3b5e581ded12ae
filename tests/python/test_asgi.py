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
from hypothesis import assume, given
from hypothesis import strategies as st

from erlang import _asgi, _native
from erlang._native import binary_to_term, term_to_binary
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
        # Binaries that are not valid UTF-8 arrive as bytes: the checked paths beside the
        # fast ones for str give the same values.
        ({"type": b"http"}, "type", "http"),
        ({"http_version": b"2"}, "http_version", "2"),
        ({"method": b"get"}, "method", "GET"),
        ({"scheme": b"https"}, "scheme", "https"),
        ({"path": b"/p"}, "path", "/p"),
        ({"path": "/p", "raw_path": "/q%20"}, "raw_path", b"/q%20"),
        ({"path": "/p", "raw_path": b"/\xff"}, "raw_path", b"/\xff"),
        ({"query_string": b"\xff"}, "query_string", b"\xff"),
        ({"root_path": b"/r"}, "root_path", "/r"),
        ({"server": (b"h", 80)}, "server", ("h", 80)),
        ({"state": {"k": 1}}, "state", {"k": 1}),
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
        ({"state": None}, TypeError, "state must be a map"),
        ({"server": ("h", 1.5)}, TypeError, "server must be"),
        ({"client": ("h", "80")}, TypeError, "client must be"),
        ({"path": 1}, TypeError, "path must be a binary"),
        ({"raw_path": 1}, TypeError, "raw_path must be a binary"),
        ({"path": "/", "raw_path": 1}, TypeError, "raw_path must be a binary"),
        ({"query_string": 1}, TypeError, "query_string must be a binary"),
        ({"root_path": 1}, TypeError, "root_path must be a binary"),
        ({"scheme": 1}, TypeError, "scheme must be a binary"),
        ({"asgi": 1}, TypeError, "asgi must be a map"),
    ],
)
def test_build_scope_errors(raw: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _asgi.build_scope(raw)


def test_build_scope_copies_and_accepts_a_dict_subclass() -> None:
    class Raw(dict[str, Any]):
        pass

    raw = {"path": "/p", "headers": [("Host", "h")], "server": ("h", 80), "state": {"a": 1}}
    scope = _asgi.build_scope(raw)
    assert _asgi.build_scope(Raw(raw)) == scope
    assert scope["state"] == raw["state"]
    assert scope["state"] is not raw["state"]
    assert raw == {"path": "/p", "headers": [("Host", "h")], "server": ("h", 80), "state": {"a": 1}}


_NAME = st.sampled_from(["host", "Host", "X-Odd", "a\udcff", "é"])
_VALUE = st.one_of(st.sampled_from(["", "v", "\udcff", "é"]), st.text(max_size=3))
# A scope as a server gives it (the keys of py_http's; binaries as str, addresses as tuples).
_SERVER_SCOPE = st.fixed_dictionaries(
    {
        "type": st.just("http"),
        "http_version": st.sampled_from(["1.0", "1.1", "2", "3"]),
        "method": st.sampled_from(["GET", "post", "Patch"]),
        "scheme": st.sampled_from(["http", "https"]),
        "path": st.sampled_from(["/", "/a b", "/é", "/\udcff"]),
        "raw_path": st.sampled_from(["/", "/a%20b", "/\udcff"]),
        "query_string": st.sampled_from(["", "x=1", "é", "\udcff"]),
        "root_path": st.sampled_from(["", "/api"]),
        "headers": st.lists(st.tuples(_NAME, _VALUE), max_size=3),
        "server": st.one_of(st.none(), st.tuples(st.just("127.0.0.1"), st.integers(0, 65535))),
        "client": st.one_of(st.none(), st.tuples(st.just("::1"), st.integers(0, 65535))),
    }
)
# What may stand in a server scope's place instead: other types, other shapes, bad values.
_ODD = {
    "type": st.sampled_from(["websocket", "HTTP", "", b"http", None]),
    "http_version": st.sampled_from(["9", "", b"1.1", None, 1]),
    "method": st.sampled_from([b"GET", 1, None, ""]),
    "scheme": st.sampled_from([b"http", 1, None]),
    "path": st.sampled_from(["", "a", b"/", None]),
    "raw_path": st.sampled_from([b"/", b"\xff", None, 1]),
    "query_string": st.sampled_from([b"x", b"\xff", None, 1]),
    "root_path": st.sampled_from([b"/r", None, 1]),
    "headers": st.one_of(
        st.sampled_from(["h", None, (("a", "b"),), [["a", "b"]], [("a",)], [(b"a", "b")]]),
        st.sampled_from([[("a", b"\xff")], [("a", 1)], [("a", "b", "c")], [1]]),
    ),
    "server": st.sampled_from([["h", 1], ("h", True), (b"h", 1), ("h",), ("h", "1"), "h"]),
    "client": st.sampled_from([["h", 1], ("h", True), (b"h", 1), ("h", 1.5)]),
}


@st.composite
def _server_like_scope(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = draw(_SERVER_SCOPE)
    for key in draw(st.lists(st.sampled_from(sorted(_ODD)), max_size=2, unique=True)):
        raw[key] = draw(_ODD[key])
    return raw


def _scope_outcome(raw: dict[str, Any], opts: object) -> object:
    try:
        return _asgi.build_scope(raw, opts)
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc))


@given(_server_like_scope())
def test_build_scope_of_a_server_scope_as_the_general_rules(raw: dict[str, Any]) -> None:
    # A scope with the keys a server gives takes a shorter path when its values have the usual
    # types; empty options send the same scope down the general path: same scope, same error.
    assert _scope_outcome(dict(raw), None) == _scope_outcome(dict(raw), {})


def _as_term(value: object) -> object:
    """The Python form of a scope value as the term Erlang would send (a ``str`` with lone
    surrogates is the binary, not UTF-8, that it stands for)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape") if not value.isascii() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_as_term(item) for item in value)
    return value


def _encoded_outcome(data: bytes) -> object:
    try:
        return _asgi._encoded_scope(data)
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc))


def _decoded_outcome(data: bytes) -> object:
    try:
        return _asgi.build_scope(binary_to_term(data))
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc))


@given(_server_like_scope())
def test_encoded_server_scope_as_the_general_rules(raw: dict[str, Any]) -> None:
    # What py_asgi:stream/6 sends for a server's scope (the map in the external format) is read
    # straight into the scope when its values have the usual types; decoded as an argument
    # would be and built by the general rules, it gives the same scope or the same error.
    data = term_to_binary({key: _as_term(value) for key, value in raw.items()})
    assert _encoded_outcome(data) == _decoded_outcome(data)


@given(_SERVER_SCOPE)
def test_encoded_server_scope_is_read_natively(raw: dict[str, Any]) -> None:
    # A path that is not UTF-8 (percent-decoded from %FF) is left to the general path.
    assume(raw["path"].isascii() or raw["path"] == "/é")
    data = term_to_binary({key: _as_term(value) for key, value in raw.items()})
    scope = _native._asgi_scope(data, _asgi._ASGI)
    assert scope is not None
    assert scope == _asgi.build_scope(binary_to_term(data))


# A server's scope as Python receives it (binaries that are not UTF-8 as str with surrogates),
# and the ASGI scope built of it.
_A_SERVER_SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "get",
    "scheme": "http",
    "path": "/a b",
    "raw_path": "/a%20b",
    "query_string": "x=\udcff",
    "root_path": "",
    "headers": [("Host", "h"), ("X-Raw", "\udcff"), ("accept", "*/*")],
    "server": ("127.0.0.1", 8000),
    "client": None,
}
_ITS_ASGI_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/a b",
    "raw_path": b"/a%20b",
    "query_string": b"x=\xff",
    "root_path": "",
    "headers": [(b"host", b"h"), (b"x-raw", b"\xff"), (b"accept", b"*/*")],
    "server": ("127.0.0.1", 8000),
    "client": None,
    "state": {},
}


def test_encoded_server_scope() -> None:
    term = {key: _as_term(value) for key, value in _A_SERVER_SCOPE.items()}
    data = term_to_binary(term)
    expected = _ITS_ASGI_SCOPE
    scope = _native._asgi_scope(data, _asgi._ASGI)
    assert scope == expected
    assert scope is not None
    # Each request gets dicts of its own.
    assert scope["asgi"] is not _asgi._ASGI
    assert _native._asgi_scope(data, _asgi._ASGI)["state"] is not scope["state"]  # type: ignore[index]
    # Anything else is left to the general path: another key, a value of another kind, a
    # method that is not ASCII, bytes that are not one term.
    for other in (
        {**term, "state": {}},
        {**term, "type": "websocket"},
        {**term, "method": "ß"},
        {**term, "headers": [["a", "b"]]},
        {**term, "client": ["h", 1]},
        {**term, "server": ("h", 2**40)},
    ):
        assert _native._asgi_scope(term_to_binary(other), _asgi._ASGI) is None
    assert _native._asgi_scope(data[:-1], _asgi._ASGI) is None
    assert _native._asgi_scope(data + b"j", _asgi._ASGI) is None
    assert _native._asgi_scope(b"", _asgi._ASGI) is None
    assert _asgi._encoded_scope(term_to_binary({**term, "method": "ß"}))["method"] == "SS"
    with pytest.raises(TypeError, match="expected map for ASGI scope"):
        _asgi._encoded_scope(term_to_binary(["not", "a", "map"]))
    with pytest.raises(ValueError, match="truncated"):
        _asgi._encoded_scope(data[:-1])


def test_build_scope_of_a_server_scope() -> None:
    assert _asgi.build_scope(dict(_A_SERVER_SCOPE)) == _ITS_ASGI_SCOPE


def test_resolve_app_imports_like_import_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from erlang._web import resolve_app

    monkeypatch.delitem(sys.modules, "fastapi_app", raising=False)
    app = resolve_app("fastapi_app", "app")
    assert app is sys.modules["fastapi_app"].app
    assert resolve_app("fastapi_app", "app") is app
    # An entry of None in sys.modules stops the import, as import_module does.
    monkeypatch.setitem(sys.modules, "blocked_mod", None)
    with pytest.raises(ModuleNotFoundError):
        resolve_app("blocked_mod", "app")
    with pytest.raises(TypeError, match="is not callable"):
        resolve_app("fastapi_app", "__name__")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"a", b"1")], [(b"a", b"1")]),
        (((b"a", b"1"), [b"b", bytearray(b"2")]), [(b"a", b"1"), (b"b", b"2")]),
        ([(bytearray(b"c"), b"3")], [(b"c", b"3")]),
        (iter([(b"d", b"4")]), [(b"d", b"4")]),
        ({(b"e", b"5"): None}, [(b"e", b"5")]),
        ([], []),
    ],
)
def test_response_headers(headers: object, expected: list[tuple[bytes, bytes]]) -> None:
    result = _asgi._response_headers(headers)
    assert result == expected
    assert all(type(h) is tuple and type(h[0]) is bytes and type(h[1]) is bytes for h in result)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ("ab", "must be an iterable"),
        (b"ab", "must be an iterable"),
        (1, "must be an iterable"),
        ([(b"a", b"1", b"2")], "must be a \\(name, value\\) pair"),
        ([b"ab"], "must be a \\(name, value\\) pair"),
        ([("a", "b")], "must be bytes"),
        ([(b"a", "b")], "must be bytes"),
    ],
)
def test_response_headers_errors(headers: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        _asgi._response_headers(headers)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ([(b"x-echo", b"a\r\nset-cookie: injected=1")], "x-echo holds a control character"),
        ([[b"x-echo", bytearray(b"a\nb")]], "x-echo holds a control character"),
        ([(b"x-echo", b"a\x00b")], "x-echo holds a control character"),
        ([(b"x-echo", b"a\x7fb")], "x-echo holds a control character"),
        ([(b"x-a: b", b"1")], "name b'x-a: b' is not an HTTP token"),
        ([(b"", b"1")], "is not an HTTP token"),
        ([(b"caf\xe9", b"1")], "is not an HTTP token"),
        ([(b"a\r\nb", b"1")], "is not an HTTP token"),
    ],
)
def test_response_headers_refuse_what_the_wire_cannot_carry(headers: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _asgi._response_headers(headers)
    # A tab, obs-text (bytes of 0x80 and over) and every token character are fine.
    fine = [(b"x-echo", b"a\tb \x80\xff"), (b"!#$%&'*+-.^_`|~09AZaz", b"")]
    assert _asgi._response_headers(fine) == fine


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


def test_lifespan_startup_failed_fails_every_request_of_the_loop() -> None:
    async def twice() -> list[str]:
        errors = []
        for _ in range(2):  # The second finds the failed startup already over.
            with pytest.raises(RuntimeError, match="startup failed: no database") as info:
                await _asgi.run("edge_apps", "failing_startup", {}, b"", {"lifespan": True})
            errors.append(str(info.value))
        return errors

    assert len(asyncio.run(twice())) == 2


def test_lifespan_state_reaches_every_request_of_the_loop() -> None:
    async def twice() -> list[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        return [
            await _asgi.run("fastapi_app", "app", {"path": "/state"}, b"", {"lifespan": True})
            for _ in range(2)
        ]

    first, second = asyncio.run(twice())
    # One startup for the loop: the second request gets the same state by the fast path.
    expected = {"greeting": "hello from lifespan", "started": 1}
    assert (first[0], json.loads(first[2])) == (200, expected)
    assert (second[0], json.loads(second[2])) == (200, expected)


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
        peer, evs = args
        assert peer == "peer"
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
    result = asyncio.run(_asgi.serve(module, app, scope, body, more, "peer", {"lifespan": False}))
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


def test_serve_hands_over_a_complete_response_while_the_app_runs_on(beam: MockBeam) -> None:
    # linger answers, then waits for release_linger(): the events must reach Erlang in the
    # meantime (the release comes from the event function, so the test cannot pass otherwise).
    import edge_apps

    def answer(ev: Any) -> str:
        edge_apps.release_linger()
        return "ok"

    result, events = serve(beam, answer, {"app": "linger"}, module="edge_apps")
    assert result == "ok"
    assert events == [
        ("response_start", 200, [("content-length", "5")]),
        ("response_body", "early", False),
    ]
    assert edge_apps.events() == ["answered", "returned"]


def test_serve_complete_in_one_step_makes_no_call(beam: MockBeam) -> None:
    # The whole response comes back with the result: the event function is never called.
    calls: list[Any] = []
    result, events = serve(beam, lambda ev: calls.append(ev) or "ok", {"path": "/"})
    assert result == "ok"
    assert calls == []
    assert [ev[0] for ev in events] == ["response_start", "response_body"]


@pytest.mark.parametrize("shared", [True, False])
def test_serve_kicks_of_one_step_share_a_callback(
    beam: MockBeam, monkeypatch: pytest.MonkeyPatch, shared: bool
) -> None:
    # Five requests answer in the same loop step and run on until every response reached
    # Erlang: each needs its kick, and one callback serves them all (or, on a loop that takes
    # no attribute, one callback each).
    delivered: list[Any] = []
    everyone = asyncio.Event()

    def event(args: list[Any]) -> object:
        delivered.append(args[1])
        if len(delivered) == 5:
            everyone.set()
        return "ok"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
        await asyncio.wait_for(everyone.wait(), 5)

    calls: list[int] = []
    kick_all = _asgi._kick_all

    def counting(kicks: list[Any]) -> None:
        calls.append(len(kicks))
        kick_all(kicks)

    monkeypatch.setattr(_asgi, "_kick_all", counting)
    if not shared:
        monkeypatch.setattr(_asgi, "_kick_list", lambda loop: None)
    monkeypatch.setattr(_asgi, "resolve_app", lambda module, name: app)
    beam.register_function(_asgi.EVENT_FUNCTION, event)

    async def one(i: int) -> object:
        opts = {"lifespan": False}
        return await _asgi.serve("m", "app", {"path": f"/{i}"}, b"", False, "p", opts)

    async def main() -> list[object]:
        return await asyncio.gather(*(one(i) for i in range(5)))

    assert asyncio.run(main()) == ["ok"] * 5
    assert sorted(events[1][1] for events in delivered) == ["/0", "/1", "/2", "/3", "/4"]
    assert calls == ([5] if shared else [])


def test_response_waiters_are_independent() -> None:
    async def main() -> list[str]:
        response = _asgi._Response()
        seen: list[str] = []

        async def waiter(name: str) -> None:
            await response.wait()
            seen.append(name)

        first = asyncio.ensure_future(waiter("first"))
        second = asyncio.ensure_future(waiter("second"))
        await asyncio.sleep(0)
        first.cancel()  # Cancelling one waiter leaves the other waiting.
        await asyncio.sleep(0)
        assert not second.done()
        response.check({"type": "http.response.start", "status": 200})
        response.check({"type": "http.response.body", "body": b""})
        await second
        await response.wait()  # Complete: returns at once.
        assert first.cancelled()
        return seen

    assert asyncio.run(main()) == ["second"]


def test_freeze_heap() -> None:
    import gc

    from erlang import _web

    gc.unfreeze()
    try:
        frozen = _web.freeze_heap()
        assert frozen > 0
        assert frozen == gc.get_freeze_count()
    finally:
        gc.unfreeze()


# Websocket sessions against the mocked BEAM ----------------------------------------------------


class WsSession:
    """Drives ``_asgi.websocket`` as ``py_asgi:websocket/4`` does: the app's events are what it
    sent to the owner's pid; the client's frames, the disconnect and acks go to its mailbox."""

    def __init__(self, beam: MockBeam, module: str, app: str, scope: dict[str, Any], **opts: Any):
        self.beam = beam
        self.owner = beam.new_pid()
        opts.setdefault("lifespan", False)
        self.task = asyncio.ensure_future(
            _asgi.websocket(module, app, {"type": "websocket", **scope}, self.owner, "tag", opts)
        )
        self.seen = 0
        self.mailbox: Any = None

    def _mine(self) -> list[Any]:
        return [message for pid, message in self.beam.sent if pid == self.owner]

    async def until(self, predicate: Any) -> None:
        # Polls a condition with a bound, as py_test_util:wait_until/2 does.
        for _ in range(5000):
            if predicate():
                return
            await asyncio.sleep(0.001)
        raise AssertionError("condition not reached")

    async def start(self) -> None:
        await self.until(lambda: self._mine() or self.task.done())
        tag, (kind, pid) = self._mine()[0]
        assert (tag, kind) == ("tag", "mailbox")
        self.mailbox, self.seen = pid, 1

    async def event(self) -> Any:
        await self.until(lambda: len(self._mine()) > self.seen or self.task.done())
        if len(self._mine()) <= self.seen:
            raise AssertionError(f"the session ended: {self.task!r}")
        tag, event = self._mine()[self.seen]
        assert tag == "tag"
        self.seen += 1
        return event

    def pending(self) -> list[Any]:
        return self._mine()[self.seen :]

    def deliver(self, message: Any) -> None:
        assert self.beam.deliver(self.mailbox, message)


def ws(
    beam: MockBeam, script: Any, module: str, app: str, scope: dict[str, Any], **opts: Any
) -> Any:
    async def main() -> Any:
        session = WsSession(beam, module, app, scope, **opts)
        await session.start()
        await script(session)
        return await asyncio.wait_for(session.task, 10)

    return asyncio.run(main())


def test_websocket_echo_with_subprotocol(beam: MockBeam) -> None:
    async def script(s: WsSession) -> None:
        assert await s.event() == ("accept", "chat", [("x-ws", "echo")])
        s.deliver(("text", "h\u00e9"))
        assert await s.event() == ("text", "h\u00e9")
        s.deliver("ack")
        s.deliver(("binary", b"\xff\x00"))
        assert await s.event() == ("binary", b"\xff\x00")
        s.deliver(("binary", "ascii"))  # a binary that is valid UTF-8 arrives as str
        assert await s.event() == ("binary", "ascii")
        s.deliver(("text", b"\xff"))  # not UTF-8: replaced
        assert await s.event() == ("text", "\ufffd")
        s.deliver(("disconnect", 1001, "gone"))

    scope = {"path": "/ws/echo", "subprotocols": ["other", "chat"]}
    assert ws(beam, script, "fastapi_app", "app", scope) == "ok"


def test_websocket_close_with_code_and_refusal(beam: MockBeam) -> None:
    async def asked(s: WsSession) -> None:
        assert (await s.event())[0] == "accept"
        s.deliver(("text", "close"))
        assert await s.event() == ("close", 4000, "asked to close")

    async def refused(s: WsSession) -> None:
        assert await s.event() == ("close", 1008, "")

    async def first(s: WsSession) -> None:
        assert (await s.event())[0] == "accept"
        assert [await s.event() for _ in range(3)] == [
            ("text", '{"tick":0}'),
            ("text", '{"tick":1}'),
            ("text", '{"tick":2}'),
        ]
        s.deliver(("disconnect", 1006, ""))

    assert ws(beam, asked, "fastapi_app", "app", {"path": "/ws/echo"}) == "ok"
    assert ws(beam, refused, "fastapi_app", "app", {"path": "/ws/reject"}) == "ok"
    assert ws(beam, first, "fastapi_app", "app", {"path": "/ws/first"}) == "ok"


def test_websocket_window_holds_sends_until_acked(beam: MockBeam) -> None:
    import edge_apps

    async def script(s: WsSession) -> None:
        assert (await s.event())[0] == "accept"
        await s.until(lambda: len(s.pending()) == 2)
        for _ in range(20):  # the app gets every chance to send a third
            await asyncio.sleep(0)
        assert len(s.pending()) == 2
        assert edge_apps.sent() == 2  # the third send waits
        s.deliver("ack")
        await s.until(lambda: len(s.pending()) == 3)
        s.deliver(("disconnect", 1006, ""))

    assert ws(beam, script, "edge_apps", "ws_flood", {}, window=2) == "ok"
    assert edge_apps.events() == [("oserror", "ClientDisconnected")]


def test_websocket_disconnect_reaches_receive(beam: MockBeam) -> None:
    import edge_apps

    async def script(s: WsSession) -> None:
        assert await s.event() == ("accept", None, [])
        s.deliver(("text", "abc"))
        assert await s.event() == ("text", "abc")
        s.deliver(("disconnect", 4002, "bye"))

    assert ws(beam, script, "edge_apps", "ws_recorder", {}) == "ok"
    assert edge_apps.events() == ["websocket.connect", ("text", 3), ("disconnect", 4002, "bye")]


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        ("ws_raise_before_accept", KeyError, "before accept"),
        ("ws_returns_without_accept", RuntimeError, "without accepting or closing"),
    ],
)
def test_websocket_app_errors(beam: MockBeam, app: str, error: type[Exception], match: str) -> None:
    async def script(s: WsSession) -> None:
        pass

    with pytest.raises(error, match=match):
        ws(beam, script, "edge_apps", app, {})


async def _bad_sender(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(scope["state"]["message"])


@pytest.mark.parametrize(
    ("message", "error", "match"),
    [
        ({"type": "websocket.send", "text": "x"}, RuntimeError, "expected ASGI message"),
        ({"type": "websocket.accept", "subprotocol": 1}, TypeError, "subprotocol"),
        ({"type": "websocket.accept", "headers": [("a", "b")]}, TypeError, "bytes"),
        ({"type": "websocket.close", "code": 999}, ValueError, "1000-4999"),
        ({"type": "websocket.close", "reason": "x" * 124}, ValueError, "123 bytes"),
    ],
)
def test_websocket_bad_messages(
    beam: MockBeam,
    monkeypatch: pytest.MonkeyPatch,
    message: Any,
    error: type[Exception],
    match: str,
) -> None:
    import edge_apps

    monkeypatch.setattr(edge_apps, "bad_sender", _bad_sender, raising=False)

    async def script(s: WsSession) -> None:
        pass

    with pytest.raises(error, match=match):
        ws(beam, script, "edge_apps", "bad_sender", {"state": {"message": message}})


def test_websocket_send_checks(beam: MockBeam, monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_apps

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for bad in [
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send", "bytes": "str"},
            {"type": "websocket.accept"},
        ]:
            with pytest.raises((TypeError, RuntimeError)):
                await send(bad)
        await send({"type": "websocket.close"})
        with pytest.raises(RuntimeError, match=r"after websocket\.close"):
            await send({"type": "websocket.send", "text": "late"})

    monkeypatch.setattr(edge_apps, "checked", app, raising=False)

    async def script(s: WsSession) -> None:
        assert (await s.event())[0] == "accept"
        assert await s.event() == ("close", 1000, "")

    assert ws(beam, script, "edge_apps", "checked", {}) == "ok"


DENIAL = {"extensions": {"websocket.http.response": {}}}


def test_websocket_denial_response(beam: MockBeam) -> None:
    import edge_apps

    async def script(s: WsSession) -> None:
        assert await s.event() == (
            "response",
            418,
            [("content-type", "text/plain"), ("x-why", "teapot")],
        )
        assert await s.event() == ("response_body", "short ", True)
        # The second part waits for the first one's ack (window=1).
        for _ in range(20):
            await asyncio.sleep(0)
        assert s.pending() == []
        s.deliver("ack")
        assert await s.event() == ("response_body", "and stout", False)

    assert ws(beam, script, "edge_apps", "ws_deny", dict(DENIAL), window=1) == "ok"
    assert edge_apps.events() == [("extensions", ["websocket.http.response"]), "denied"]


def test_websocket_denial_needs_the_extension(beam: MockBeam) -> None:
    async def script(s: WsSession) -> None:
        pass

    with pytest.raises(RuntimeError, match=r"websocket\.http\.response extension"):
        ws(beam, script, "edge_apps", "ws_deny", {})


def test_websocket_denial_ending_early_raises(
    beam: MockBeam, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_apps

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 400})
        await send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})

    monkeypatch.setattr(edge_apps, "half_denial", app, raising=False)

    async def script(s: WsSession) -> None:
        assert await s.event() == ("response", 400, [])
        assert await s.event() == ("response_body", "a", True)

    with pytest.raises(RuntimeError, match="last body of its websocket denial response"):
        ws(beam, script, "edge_apps", "half_denial", dict(DENIAL))


@pytest.mark.parametrize(
    ("messages", "error", "match"),
    [
        ([{"type": "websocket.http.response.start", "status": 101}], ValueError, "other than 101"),
        ([{"type": "websocket.http.response.start", "status": "200"}], ValueError, "100-599"),
        ([{"type": "websocket.http.response.start", "status": True}], ValueError, "100-599"),
        ([{"type": "websocket.http.response.start", "status": 99}], ValueError, "100-599"),
        (
            [{"type": "websocket.http.response.start", "status": 400, "headers": [("a", "b")]}],
            TypeError,
            "bytes",
        ),
        (
            [
                {"type": "websocket.http.response.start", "status": 400},
                {"type": "websocket.http.response.body", "body": "text"},
            ],
            TypeError,
            "must be bytes",
        ),
        (
            [
                {"type": "websocket.http.response.start", "status": 400},
                {"type": "websocket.http.response.body", "body": b"", "more_body": 1},
            ],
            TypeError,
            "more_body must be a bool",
        ),
        (
            [
                {"type": "websocket.http.response.start", "status": 400},
                {"type": "websocket.accept"},
            ],
            RuntimeError,
            "expected ASGI message websocket.http.response.body",
        ),
        (
            [
                {"type": "websocket.http.response.start", "status": 400},
                {"type": "websocket.http.response.body", "body": b""},
                {"type": "websocket.http.response.body", "body": b""},
            ],
            RuntimeError,
            "after websocket.close",
        ),
    ],
)
def test_websocket_denial_bad_messages(
    beam: MockBeam,
    monkeypatch: pytest.MonkeyPatch,
    messages: list[Any],
    error: type[Exception],
    match: str,
) -> None:
    import edge_apps

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for message in messages:
            await send(message)

    monkeypatch.setattr(edge_apps, "bad_denial", app, raising=False)

    async def script(s: WsSession) -> None:
        pass  # The window (16) lets every message through without an ack.

    with pytest.raises(error, match=match):
        ws(beam, script, "edge_apps", "bad_denial", dict(DENIAL))


def test_scope_types_are_served_by_their_own_runner() -> None:
    with pytest.raises(ValueError, match="served by py_asgi:websocket/4"):
        run({"type": "websocket"})
    with pytest.raises(TypeError, match="subprotocols"):
        _asgi.build_scope({"type": "websocket", "subprotocols": "chat"})
    assert _asgi.build_scope({"type": "websocket"})["subprotocols"] == []


def test_websocket_pause_and_resume(beam: MockBeam) -> None:
    import edge_apps

    async def script(s: WsSession) -> None:
        assert (await s.event())[0] == "accept"
        for i in range(_asgi.WS_PAUSE):
            s.deliver(("text", str(i)))
        assert await s.event() == ("pause",)
        edge_apps.release()
        seen = [await s.event() for _ in range(_asgi.WS_PAUSE + 1)]
        assert seen.count(("resume",)) == 1
        # Resumed once the app received all but WS_RESUME of them.
        assert seen.index(("resume",)) == _asgi.WS_PAUSE - _asgi.WS_RESUME - 1
        s.deliver(("disconnect", 1000, ""))

    assert ws(beam, script, "edge_apps", "ws_lazy", {}, window=1000) == "ok"
    assert edge_apps.events() == ["go", ("received", _asgi.WS_PAUSE)]
