"""Python's half of examples/web.escript: a FastAPI app and a Flask app served by the BEAM.

The stock lives in Erlang (an ETS table the escript owns); the apps read and change it through
``erlang.call`` and ``erlang.async_call``, so the web layer is Python and the state is Erlang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from flask import Flask, jsonify
from pydantic import BaseModel, Field

import erlang

api = FastAPI(title="shop")


class Order(BaseModel):
    """A JSON order body; FastAPI answers 422 for anything else."""

    item: str = Field(min_length=1)
    quantity: int = Field(gt=0)


@api.get("/items/{name}")
async def item(name: str) -> dict[str, Any]:
    """The stock of one item, asked of Erlang without blocking the event loop."""
    stock = await erlang.async_call("shop_stock", name)
    if stock is None:
        raise HTTPException(status_code=404, detail=f"no item {name!r}")
    return {"item": name, "stock": stock}


@api.post("/orders", status_code=201)
async def order(body: Order) -> dict[str, Any]:
    """Takes ``quantity`` of an item out of the Erlang stock; 409 when there is not enough."""
    left = await erlang.async_call("shop_take", body.item, body.quantity)
    if left is None:
        raise HTTPException(status_code=409, detail="not enough stock")
    return {"item": body.item, "left": left}


@api.get("/countdown/{n}")
async def countdown(n: int) -> StreamingResponse:
    """A streamed response: one line per step, sent as it is produced."""

    async def lines() -> AsyncIterator[bytes]:
        for i in range(n, 0, -1):
            await asyncio.sleep(0.01)
            yield f"{i}\n".encode()
        yield b"liftoff\n"

    return StreamingResponse(lines(), media_type="text/plain")


legacy = Flask("legacy")


@legacy.get("/health")
def health() -> Any:
    """A WSGI app beside the ASGI one, asking Erlang synchronously."""
    return jsonify(status="ok", items=erlang.call("shop_count"))
