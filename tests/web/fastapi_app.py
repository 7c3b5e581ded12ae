"""A FastAPI app of the usual kinds of routes, served by py_asgi in the tests (and by uvicorn for
comparison): path and query parameters, JSON bodies with validation errors, forms and uploads,
cookies, redirects, custom exception handlers, a 500, streaming, server-sent events, a
background task, lifespan state, and websockets (an echo, a route that closes with a code, one
that refuses the handshake, one that answers it with a 401 of its own, one that sends
first)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import (
    BackgroundTasks,
    FastAPI,
    File,
    Form,
    HTTPException,
    Request,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field

# What background tasks did, for the tests to look at.
DONE: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan", "started": 1}


app = FastAPI(lifespan=lifespan)


class Teapot(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


@app.exception_handler(Teapot)
async def teapot_handler(request: Request, exc: Teapot) -> JSONResponse:
    return JSONResponse(status_code=418, content={"teapot": exc.name})


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "hello"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, Any]:
    return {"created": item.model_dump(), "total": item.price * 2}


@app.post("/form")
async def form(name: Annotated[str, Form()], age: Annotated[int, Form()]) -> dict[str, Any]:
    return {"name": name, "age": age}


@app.post("/upload")
async def upload(
    file: Annotated[UploadFile, File()], note: Annotated[str, Form()] = ""
) -> dict[str, Any]:
    data = await file.read()
    return {"filename": file.filename, "size": len(data), "head": data[:8].hex(), "note": note}


@app.get("/cookies/set")
async def set_cookie() -> JSONResponse:
    response = JSONResponse({"set": True})
    response.set_cookie("session", "abc123", httponly=True)
    return response


@app.get("/cookies/read")
async def read_cookie(request: Request) -> dict[str, Any]:
    return {"session": request.cookies.get("session")}


@app.get("/redirect")
async def redirect() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@app.get("/teapot/{name}")
async def teapot(name: str) -> None:
    raise Teapot(name)


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(status_code=404, detail="no such thing", headers={"x-reason": "gone"})


@app.get("/boom")
async def boom() -> None:
    raise ValueError("boom")


@app.get("/stream")
async def stream(n: int = 5) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(n):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/sse")
async def sse() -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        for i in range(3):
            yield f'id: {i}\nevent: tick\ndata: {{"n": {i}}}\n\n'

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/background")
async def background(tasks: BackgroundTasks, word: str = "hi") -> dict[str, bool]:
    tasks.add_task(DONE.append, word)
    return {"queued": True}


@app.get("/background/done")
async def background_done() -> dict[str, list[str]]:
    return {"done": DONE}


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"greeting": request.state.greeting, "started": request.state.started}


@app.get("/headers")
async def headers(request: Request) -> dict[str, Any]:
    return {
        "user_agent": request.headers.get("user-agent"),
        "x_multi": request.headers.getlist("x-multi"),
        "query": str(request.url.query),
        "client": list(request.client) if request.client else None,
    }


@app.put("/echo")
async def echo(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(body, headers={"x-length": str(len(body))})


@app.get("/slow")
async def slow(seconds: float = 60) -> dict[str, bool]:
    await asyncio.sleep(seconds)
    return {"slept": True}


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    """Echoes text and bytes; offers the `chat' subprotocol when asked; the text `close' makes
    it close with 4000."""
    chat = "chat" if "chat" in websocket.scope.get("subprotocols", []) else None
    await websocket.accept(subprotocol=chat, headers=[(b"x-ws", b"echo")])
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text == "close":
                await websocket.close(code=4000, reason="asked to close")
                return
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/ws/closes")
async def ws_closes(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("bye soon")
    await websocket.close(code=4001, reason="done here")


@app.websocket("/ws/reject")
async def ws_reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


@app.websocket("/ws/deny")
async def ws_deny(websocket: WebSocket) -> None:
    # The denial response extension: an HTTP answer of the app's own instead of the handshake.
    await websocket.send_denial_response(
        JSONResponse({"detail": "no entry"}, status_code=401, headers={"x-why": "denied"})
    )


@app.websocket("/ws/first")
async def ws_first(websocket: WebSocket) -> None:
    """Sends before anything is received, then answers each message with its length."""
    await websocket.accept()
    for i in range(3):
        await websocket.send_json({"tick": i})
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_text(str(len(data)))
    except WebSocketDisconnect:
        return
