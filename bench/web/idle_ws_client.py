"""The client side of bench/web/idle_websockets.escript: opens N websockets to URL (each
checked with one echoed message), prints ``open``, holds them idle until its stdin closes or
gives a line, then closes them and prints ``closed``."""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.client import ClientConnection, connect


async def main(url: str, n: int) -> None:
    sockets: list[ClientConnection] = []
    for _ in range(n):
        ws = await connect(url, open_timeout=60, ping_interval=None)
        await ws.send("hi")
        if await ws.recv() != "hi":
            raise SystemExit("the echo did not answer")
        sockets.append(ws)
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in sockets))
    print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
