"""The same requests sent with httpx to two servers of the same app: the differences in status,
headers (apart from ``date``, ``server`` and the per-connection ``connection``) and bodies.

Used by tests/erlang/py_http_SUITE.erl to compare py_http with uvicorn (the FastAPI app) and
gunicorn (the Flask app); run inside the BEAM as a coroutine, so it holds no executor while the
server under test needs them."""

from __future__ import annotations

import asyncio
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


# Websockets: the same conversations with the `websockets' client; what the client saw (the
# messages, the subprotocol, the extensions negotiated and app headers, the close code and
# reason, a refusal's or denial response's status, headers and body).


async def _ws_echo(ws: Any) -> list[Any]:
    seen = []
    for message in ["hello", b"\x00\x01\xff", "h\u00e9llo \u65e5\u672c", b"y" * 100_000, ""]:
        await ws.send(message)
        answer = await ws.recv()
        seen.append(answer if len(answer) < 100 else (type(answer).__name__, hash(answer)))
    await ws.send(["frag", "ment", "ed"])  # one message in three frames
    seen.append(await ws.recv())
    await (await ws.ping(b"p"))  # waits for the pong
    seen.append("pong")
    return seen


async def _ws_close_asked(ws: Any) -> list[Any]:
    await ws.send("close")
    return [await ws.recv()]


async def _ws_recv(ws: Any) -> list[Any]:
    return [await ws.recv()]


async def _ws_first(ws: Any) -> list[Any]:
    seen = [await ws.recv() for _ in range(3)]
    await ws.send("four")
    seen.append(await ws.recv())
    return seen


# (path, subprotocols offered, the conversation, whether the client closes at its end: when
# not, the server does and the client waits for its close frame, whether the client offers
# permessage-deflate, as the `websockets' client does by default).
_WS: list[tuple[str, list[str], Any, bool, bool]] = [
    ("/ws/echo", [], _ws_echo, True, True),
    ("/ws/echo", [], _ws_echo, True, False),
    ("/ws/echo", ["chat", "other"], _ws_echo, True, True),
    ("/ws/echo", [], _ws_close_asked, False, True),
    ("/ws/closes", [], _ws_recv, False, True),
    ("/ws/first", [], _ws_first, True, True),
    ("/ws/reject", [], _ws_recv, False, True),
    ("/ws/deny", [], _ws_recv, False, True),
    ("/ws/no/such/route", [], _ws_recv, False, True),
]


async def _ws_conversation(
    base: str, path: str, protocols: list[str], talk: Any, deflate: bool
) -> list[Any]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    url = "ws" + base.removeprefix("http") + path
    seen: list[Any] = []
    try:
        async with connect(
            url,
            subprotocols=protocols or None,
            open_timeout=30,
            compression="deflate" if deflate else None,
        ) as ws:
            headers = ws.response.headers
            seen.append(
                (
                    "subprotocol",
                    ws.subprotocol,
                    headers.get("x-ws"),
                    headers.get("sec-websocket-extensions"),
                )
            )
            try:
                seen.extend(await talk(ws))
                await ws.recv()  # until the server closes, or our close below
            except ConnectionClosed as exc:
                seen.append(
                    (
                        "closed",
                        exc.rcvd.code if exc.rcvd else None,
                        exc.rcvd.reason if exc.rcvd else None,
                    )
                )
            else:
                seen.append("no close")
    except InvalidStatus as exc:
        response = exc.response
        seen.append(
            (
                "refused",
                response.status_code,
                response.headers.get("content-type"),
                response.headers.get("x-why"),
                response.body,
            )
        )
    return seen


async def compare_ws(ours: str, theirs: str) -> tuple[int, list[str]]:
    """The websocket conversations of ``_WS`` with both servers; returns how many there were
    and the differences."""
    differences = []
    for path, protocols, talk, client_closes, deflate in _WS:
        results = []
        for base in (ours, theirs):
            try:
                conversation = _ws_conversation(
                    base, path, protocols, _closing(talk) if client_closes else talk, deflate
                )
                results.append(await asyncio.wait_for(conversation, 30))
            except TimeoutError:
                results.append(["no answer within 30 s"])
        if results[0] != results[1]:
            differences.append(
                f"{path} {protocols} deflate={deflate}: {results[0]!r} != {results[1]!r}"
            )
    return len(_WS), differences


def _closing(talk: Any) -> Any:
    async def run(ws: Any) -> list[Any]:
        seen = await talk(ws)
        await ws.close(code=1000, reason="client done")
        seen.append(("client closed", ws.close_code, ws.close_reason))
        return seen

    return run
