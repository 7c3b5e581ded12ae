"""The apps of the web benchmark (bench/web/run.sh): FastAPI and Flask JSON hellos, and a
websocket echo (bench/web/idle_websockets.escript)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from flask import Flask, jsonify

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


@app.get("/big")
async def big(mb: int = 100) -> StreamingResponse:
    """``mb`` MiB in 64 KiB chunks: memory must stay flat on both sides."""
    chunk = b"x" * 65536

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(mb * 16):
            yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


wsgi = Flask(__name__)


@wsgi.get("/")
def wsgi_hello():  # type: ignore[no-untyped-def]
    return jsonify(message="hello")


_RAW_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"19")],
}
_RAW_BODY = {"type": "http.response.body", "body": b'{"message":"hello"}'}


async def raw(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The same JSON hello as a bare ASGI app (no framework): what serving costs by itself."""
    if scope["type"] != "http":
        raise RuntimeError("no lifespan")  # served without one
    await send(_RAW_START)
    await send(_RAW_BODY)
