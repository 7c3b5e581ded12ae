"""The WSGI runner behind py_wsgi (``erlang._wsgi``), standalone: environs, collected and
streamed responses, PEP 3333's start_response, write() and close()."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erlang import _wsgi

WEB = str(Path(__file__).resolve().parent.parent / "web")


@pytest.fixture(autouse=True)
def web_apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(WEB)
    yield
    if "edge_apps" in sys.modules:
        sys.modules["edge_apps"].reset()


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        ({"PATH_INFO": "/caf\u00e9"}, "PATH_INFO", "/caf\u00c3\u00a9"),
        ({"HTTP_X": b"\xff"}, "HTTP_X", "\u00ff"),
        ({"SERVER_PORT": 80}, "SERVER_PORT", "80"),
        ({}, "wsgi.version", (1, 0)),
        ({"wsgi.version": (2, 0)}, "wsgi.version", (1, 0)),
        ({}, "wsgi.url_scheme", "http"),
        ({}, "wsgi.multithread", True),
        ({}, "wsgi.multiprocess", True),
        ({}, "wsgi.run_once", False),
        ({"wsgi.run_once": True}, "wsgi.run_once", True),
    ],
)
def test_build_environ(raw: dict[str, Any], key: str, expected: object) -> None:
    assert _wsgi.build_environ(raw)[key] == expected


def test_build_environ_input_and_errors() -> None:
    environ = _wsgi.build_environ({"wsgi.input": "abc"})
    assert environ["wsgi.input"].read() == b"abc"
    assert environ["CONTENT_LENGTH"] == "3"
    assert isinstance(environ["wsgi.errors"], _wsgi.ErrorStream)
    assert _wsgi.build_environ({}, b"\xff")["wsgi.input"].read() == b"\xff"
    assert "CONTENT_LENGTH" not in _wsgi.build_environ({})


@pytest.mark.parametrize(
    ("raw", "body", "match"),
    [
        ([], None, "expected map for WSGI environ"),
        ({b"\xff": 1}, None, "keys must be atoms or binaries"),
        ({"PATH_INFO": [1]}, None, "PATH_INFO must be a binary, not list"),
        ({}, 1.5, "body must be a binary"),
    ],
)
def test_build_environ_errors(raw: object, body: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        _wsgi.build_environ(raw, body)


def test_run_flask_json() -> None:
    status, headers, body = _wsgi.run(
        "flask_app", "app", {"PATH_INFO": "/items/3", "QUERY_STRING": "q=x"}
    )
    assert status == b"200 OK"
    assert (b"Content-Type", b"application/json") in headers
    assert json.loads(body) == {"item_id": 3, "q": "x", "limit": 10}


def test_run_flask_body_and_500() -> None:
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/echo"}
    assert _wsgi.run("flask_app", "app", environ, {"body": b"\x00\xff"})[2] == b"\x00\xff"
    assert _wsgi.run("flask_app", "app", {"PATH_INFO": "/boom"})[0] == b"500 INTERNAL SERVER ERROR"


def test_run_write_then_iterable_and_close() -> None:
    import flask_app

    assert _wsgi.run("edge_apps", "wsgi_write", {})[2] == b"written,returned"
    assert _wsgi.run("flask_app", "closing_app", {"QUERY_STRING": "py"})[2] == b"first,second"
    assert flask_app.CLOSED[-1] == "py"


def test_run_exc_info() -> None:
    assert _wsgi.run("edge_apps", "wsgi_exc_info", {})[:1] == (b"500 Internal Server Error",)
    with pytest.raises(ValueError, match="too late"):
        _wsgi.run("edge_apps", "wsgi_exc_info_after_write", {})


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        ("wsgi_raise_before", KeyError, "before start_response"),
        ("wsgi_raise_after", LookupError, "while iterating"),
        ("wsgi_twice", RuntimeError, "called twice"),
        ("wsgi_no_start", RuntimeError, "before calling start_response"),
        ("wsgi_bad_chunk", TypeError, "yielded str, not bytes"),
    ],
)
def test_run_app_errors(app: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _wsgi.run("edge_apps", app, {})


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("a%0d%0aset-cookie:%20injected=1", "x-echo holds a control character"),
        ("a%00b", "x-echo holds a control character"),
        ("name=x-a:%20b", "is not an HTTP token"),
        ("name=caf%e9", "is not an HTTP token"),
        ("name=", "is not an HTTP token"),
        ("status=OK%0d%0ainjected:%201", "WSGI status holds a control character"),
    ],
)
def test_start_response_refuses_what_the_wire_cannot_carry(query: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _wsgi.run("edge_apps", "wsgi_echo_header", {"QUERY_STRING": query})
    status, headers, body = _wsgi.run("edge_apps", "wsgi_echo_header", {"QUERY_STRING": "a%09b"})
    assert (status, headers, body) == (b"200 OK", [(b"x-echo", b"a\tb")], b"echoed")


def test_iterable_closed_on_error() -> None:
    import edge_apps

    with pytest.raises(LookupError):
        _wsgi.run("edge_apps", "wsgi_raise_after", {})
    assert edge_apps.events() == ["closed"]


def test_errors_stream_to_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="erlang.wsgi"):
        _wsgi.run("edge_apps", "wsgi_errors", {})
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("erlang.wsgi", "first line"),
        ("erlang.wsgi", "second line"),
    ]
    with pytest.raises(TypeError):
        _wsgi.ErrorStream().write(b"bytes")  # type: ignore[arg-type]


def test_stream_steps_in_fresh_contexts() -> None:
    # Each py:stream_next runs in a fresh context: Flask's stream_with_context must still work.
    # The app's first output comes with the call; then one batch per pull of its iterable.
    first, stream = contextvars.Context().run(
        _wsgi.stream, "flask_app", "app", {"PATH_INFO": "/stream", "QUERY_STRING": "n=2"}
    )
    assert first[0][:2] == ("response_start", b"200 OK")
    assert first[1:] == [("response_body", b"chunk 0\n", True)]
    assert stream is not None
    batches = []
    while True:
        try:
            batches.append(contextvars.Context().run(next, stream))
        except StopIteration:
            break
    assert batches == [
        [("response_body", b"chunk 1\n", True)],
        [("response_body", b"", False)],
    ]


def test_stream_batches_what_one_pull_gives() -> None:
    import edge_apps

    # What write() gave comes first; an app that returns a list has its whole response in the
    # first batch (taking the list's items runs none of its code).
    first, stream = _wsgi.stream("edge_apps", "wsgi_write", {})
    assert first[0][0] == "response_start"
    assert first[1:] == [
        ("response_body", b"written,", True),
        ("response_body", b"returned", True),
        ("response_body", b"", False),
    ]
    assert stream is None
    # Any other iterable is pulled once per batch: what write() gave before the app returned
    # is its first output, the iterable's chunk comes with the next pull.
    first, stream = _wsgi.stream("edge_apps", "wsgi_write_iter", {})
    assert first[1:] == [("response_body", b"written,", True)]
    assert stream is not None
    assert list(stream) == [[("response_body", b"returned", True)], [("response_body", b"", False)]]
    # An iterable with no output: the whole response in the first batch, the iterable closed
    # before it is handed over, no stream left.
    del edge_apps.EVENTS[:]
    assert _wsgi.stream("edge_apps", "wsgi_empty", {}) == (
        [("response_start", b"204 No Content", []), ("response_body", b"", False)],
        None,
    )
    assert edge_apps.events() == ["closed"]
    # A failure after the first chunk: the batch before it is out, the pull raises, the
    # iterable is closed.
    del edge_apps.EVENTS[:]
    first, stream = _wsgi.stream("edge_apps", "wsgi_raise_after", {})
    assert first[1:] == [("response_body", b"one,", True)]
    assert stream is not None
    with pytest.raises(LookupError, match="while iterating"):
        next(stream)
    assert edge_apps.events() == ["closed"]


def test_stream_closes_the_iterable_before_the_last_batch() -> None:
    import flask_app

    del flask_app.CLOSED[:]
    first, stream = _wsgi.stream("flask_app", "closing_app", {"QUERY_STRING": "whole"})
    assert stream is not None
    while first[-1] != ("response_body", b"", False):
        assert flask_app.CLOSED == []
        first = next(stream)
    assert flask_app.CLOSED == ["whole"]
    with pytest.raises(StopIteration):
        next(stream)
    _wsgi.close(stream)
    assert flask_app.CLOSED == ["whole"]


def test_stream_close_closes_iterable() -> None:
    import flask_app

    first, stream = _wsgi.stream("flask_app", "closing_app", {"QUERY_STRING": "early"})
    assert first[0][0] == "response_start"
    assert first[1:] == [("response_body", b"first,", True)]
    assert stream is not None
    _wsgi.close(stream)
    assert flask_app.CLOSED[-1] == "early"


def test_stream_app_errors() -> None:
    with pytest.raises(KeyError):
        _wsgi.stream("edge_apps", "wsgi_raise_before", {})
    with pytest.raises(RuntimeError, match="body before calling start_response"):
        _wsgi.stream("edge_apps", "wsgi_no_start", {})


def test_error_stream_is_text() -> None:
    assert isinstance(_wsgi.ErrorStream(), io.TextIOBase)
