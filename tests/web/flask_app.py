"""A Flask app of the usual kinds of routes, served by py_wsgi in the tests (and by gunicorn for
comparison): path and query parameters, JSON bodies with validation errors, forms and uploads,
cookies, redirects, custom error handlers, a 500, streaming, server-sent events and
``wsgi.errors``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, make_response, redirect, request, stream_with_context

app = Flask(__name__)

# Iterables closed by the server, for the tests to look at.
CLOSED: list[str] = []


class Teapot(Exception):
    pass


@app.errorhandler(Teapot)
def teapot_handler(exc: Teapot) -> tuple[Any, int]:
    return jsonify(teapot=str(exc)), 418


@app.errorhandler(404)
def not_found(exc: Exception) -> tuple[Any, int]:
    return jsonify(error="not found", path=request.path), 404


@app.get("/")
def root() -> Any:
    return jsonify(message="hello")


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> Any:
    return jsonify(
        item_id=item_id, q=request.args.get("q"), limit=request.args.get("limit", 10, type=int)
    )


@app.post("/items")
def create_item() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        return jsonify(error="name is required"), 422
    price = data.get("price")
    if not isinstance(price, (int, float)) or price <= 0:
        return jsonify(error="price must be positive"), 422
    return jsonify(created=data, total=price * 2), 201


@app.post("/form")
def form() -> Any:
    return jsonify(name=request.form["name"], age=int(request.form["age"]))


@app.post("/upload")
def upload() -> Any:
    file = request.files["file"]
    data = file.read()
    return jsonify(
        filename=file.filename,
        size=len(data),
        head=data[:8].hex(),
        note=request.form.get("note", ""),
    )


@app.get("/cookies/set")
def set_cookie() -> Any:
    response = make_response(jsonify(set=True))
    response.set_cookie("session", "abc123", httponly=True)
    return response


@app.get("/cookies/read")
def read_cookie() -> Any:
    return jsonify(session=request.cookies.get("session"))


@app.get("/redirect")
def go() -> Any:
    return redirect("/", code=302)


@app.get("/teapot/<name>")
def teapot(name: str) -> Any:
    raise Teapot(name)


@app.get("/boom")
def boom() -> Any:
    raise ValueError("boom")


@app.get("/stream")
def stream() -> Response:
    n = request.args.get("n", 5, type=int)

    def chunks() -> Iterator[str]:
        for i in range(n):
            yield f"chunk {i}\n"

    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.get("/sse")
def sse() -> Response:
    def events() -> Iterator[str]:
        for i in range(3):
            yield f'id: {i}\nevent: tick\ndata: {{"n": {i}}}\n\n'

    return Response(events(), mimetype="text/event-stream")


@app.get("/headers")
def headers() -> Any:
    return jsonify(
        user_agent=request.headers.get("User-Agent"),
        x_multi=request.headers.getlist("X-Multi"),
        query=request.query_string.decode(),
    )


@app.put("/echo")
def echo() -> Response:
    body = request.get_data()
    return Response(body, mimetype="text/plain", headers={"X-Length": str(len(body))})


@app.get("/errors")
def errors() -> Any:
    request.environ["wsgi.errors"].write("something went wrong\n")
    return jsonify(logged=True)


@app.get("/slow")
def slow() -> Any:
    time.sleep(request.args.get("seconds", 60.0, type=float))
    return jsonify(slept=True)


class _Closing:
    """An iterable with close(), to check that the server calls it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __iter__(self) -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    def close(self) -> None:
        CLOSED.append(self.name)


def closing_app(environ: dict[str, Any], start_response: Any) -> Any:
    """A bare WSGI app returning an iterable with close()."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Closing(environ.get("QUERY_STRING", ""))
