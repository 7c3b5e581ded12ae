"""The same requests sent with httpx to two servers of the same app: the differences in status,
headers (apart from ``date``, ``server`` and the per-connection ``connection``) and bodies.

Used by tests/erlang/py_http_SUITE.erl to compare py_http with uvicorn (the FastAPI app) and
gunicorn (the Flask app); run inside the BEAM as a coroutine, so it holds no executor while the
server under test needs them."""

from __future__ import annotations

from typing import Any

import httpx

# Hop-by-hop or per-server headers (RFC 9110 7.6.1): not part of the app's response.
_IGNORED = frozenset({"date", "server", "connection", "keep-alive"})

_UPLOAD = bytes(range(256)) * 4

_COMMON: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/", {}),
    ("GET", "/items/5?q=tea&limit=2", {}),
    ("POST", "/items", {"json": {"name": "tea", "price": 2.5, "tags": ["a"]}}),
    ("POST", "/items", {"json": {"name": "", "price": -1}}),
    ("POST", "/items", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("POST", "/form", {"data": {"name": "J\u00fcrgen", "age": "41"}}),
    ("POST", "/upload", {"files": {"file": ("a.bin", _UPLOAD)}, "data": {"note": "hi"}}),
    ("GET", "/cookies/set", {}),
    ("GET", "/cookies/read", {"headers": {"cookie": "session=xyz"}}),
    ("GET", "/redirect", {}),
    ("GET", "/teapot/earl", {}),
    ("GET", "/boom", {}),
    ("GET", "/stream?n=4", {}),
    ("GET", "/sse", {}),
    ("PUT", "/echo", {"content": bytes(range(256))}),
    ("PUT", "/echo", {"content": b"x" * 200_000}),
    ("GET", "/no/such/route", {}),
    ("HEAD", "/", {}),
]

REQUESTS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "fastapi": [
        *_COMMON,
        ("GET", "/items/notanint", {}),
        ("GET", "/missing", {}),
        ("GET", "/state", {}),
        ("POST", "/background?word=cmp", {}),
    ],
    "flask": [*_COMMON, ("GET", "/errors", {})],
}


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted(
        (k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in _IGNORED
    )


async def compare(app: str, ours: str, theirs: str) -> tuple[int, list[str]]:
    """Sends each request of ``REQUESTS[app]`` to both base URLs; returns how many were sent
    and the differences (an empty list when every response is the same)."""
    differences = []
    for method, url, kwargs in REQUESTS[app]:
        # A client per request: a server may close a kept-alive connection after an app
        # error (uvicorn after /boom), and httpx does not retry a request on a closed one.
        async with httpx.AsyncClient(base_url=ours) as a, httpx.AsyncClient(base_url=theirs) as b:
            what = f"{method} {url}"
            try:
                ra = await a.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                differences.append(f"{what}: ours failed: {exc!r}")
                continue
            try:
                rb = await b.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                differences.append(f"{what}: theirs failed: {exc!r}")
                continue
            if ra.status_code != rb.status_code:
                differences.append(f"{what}: status {ra.status_code} != {rb.status_code}")
            if _headers(ra) != _headers(rb):
                differences.append(f"{what}: headers {_headers(ra)} != {_headers(rb)}")
            if ra.content != rb.content:
                differences.append(f"{what}: body {ra.content[:200]!r} != {rb.content[:200]!r}")
    return len(REQUESTS[app]), differences
