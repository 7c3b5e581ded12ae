"""Event loop benchmarks: ``erlang.ErlangEventLoop`` beside asyncio's default loop and uvloop.

Every workload runs on each loop in turn, in one run on the same Python, and prints one row per
loop (docs/asyncio.md, "Performance"). Nothing here is a test: no number is checked.

    python bench/loop_bench.py                      # everything (about a minute)
    python bench/loop_bench.py --quick              # 10x smaller counts and durations
    python bench/loop_bench.py --only call_soon,echo
    python bench/loop_bench.py --rounds 3           # each section 3 times, loops taking turns

Sections: ``call_soon`` (1M callbacks scheduled from the running loop, in batches of 1000),
``timers`` (100k ``call_later`` with delays spread over 0.1 s, until the last fired), ``echo``
(TCP echo of 1 KiB messages over 50 connections for 10 s, the client in a separate OS process on
asyncio's default loop: round trips per second), ``idle`` (1,000 open idle connections: the
server process's CPU time over 10 s). uvloop is measured when it is installed
(``pip install uvloop``; it is not a dependency of erlang_python).

Run it with the build's venv (``make pyext`` installs ``erlang``); ``make bench-loop`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

MESSAGE = b"x" * 1024


def factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    import erlang

    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.SelectorEventLoop,
        "ErlangEventLoop": erlang.new_event_loop,
    }
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        loops["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    return loops


def bench_call_soon(loop: asyncio.AbstractEventLoop, n: int) -> str:
    """``n`` callbacks scheduled with ``call_soon`` from the running loop, in batches of 1000
    (each batch's last callback schedules the next batch), until the last one ran."""
    batch = 1000

    async def main() -> float:
        done = loop.create_future()
        left = n

        def noop() -> None:
            pass

        def schedule() -> None:
            nonlocal left
            count = min(batch, left)
            left -= count
            call_soon = loop.call_soon
            for _ in range(count - 1):
                call_soon(noop)
            call_soon(schedule if left else finish)

        def finish() -> None:
            done.set_result(None)

        start = time.perf_counter()
        loop.call_soon(schedule)
        await done
        return time.perf_counter() - start

    seconds = loop.run_until_complete(main())
    return f"{n} call_soon: {seconds:.3f} s ({n / seconds / 1e6:.2f} M/s)"


def bench_timers(loop: asyncio.AbstractEventLoop, n: int) -> str:
    async def main() -> float:
        done = loop.create_future()
        left = n

        def fired() -> None:
            nonlocal left
            left -= 1
            if not left:
                done.set_result(None)

        start = time.perf_counter()
        for i in range(n):
            loop.call_later((i % 1000) / 10000, fired)
        await done
        return time.perf_counter() - start

    seconds = loop.run_until_complete(main())
    return f"{n} timers (0-0.1 s) scheduled and fired: {seconds:.3f} s"


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _client(port: int, conns: int, seconds: float, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--client", mode, str(port), str(conns), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def bench_echo(loop: asyncio.AbstractEventLoop, conns: int, seconds: float) -> str:
    async def main() -> str:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = _client(port, conns, seconds, "echo")
        out, _ = await loop.run_in_executor(None, client.communicate)
        server.close()
        await server.wait_closed()
        trips = int(out.split()[0])
        return (
            f"TCP echo, 1 KiB, {conns} connections, {seconds:g} s: "
            f"{trips / seconds:,.0f} round trips/s"
        )

    return loop.run_until_complete(main())


def bench_idle(loop: asyncio.AbstractEventLoop, conns: int, seconds: float) -> str:
    async def main() -> str:
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=conns)
        port = server.sockets[0].getsockname()[1]
        client = _client(port, conns, seconds + 2, "idle")
        await asyncio.sleep(2)  # the client connects
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu
        out, _ = await loop.run_in_executor(None, client.communicate)
        server.close()
        await server.wait_closed()
        return (
            f"{out.split()[0]} idle connections, {seconds:g} s: "
            f"{cpu * 1000:.1f} ms CPU in the server process"
        )

    return loop.run_until_complete(main())


def client_main(mode: str, port: int, conns: int, seconds: float) -> None:
    """The client process: ``echo`` counts round trips, ``idle`` holds connections open."""

    async def echo() -> int:
        deadline = time.monotonic() + seconds
        trips = 0

        async def one() -> None:
            nonlocal trips
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while time.monotonic() < deadline:
                writer.write(MESSAGE)
                await reader.readexactly(len(MESSAGE))
                trips += 1
            writer.close()

        await asyncio.gather(*(one() for _ in range(conns)))
        return trips

    async def idle() -> int:
        socks = []
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
        await asyncio.sleep(seconds)
        for s in socks:
            s.close()
        return len(socks)

    print(asyncio.run(echo() if mode == "echo" else idle()))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--client"]:
        client_main(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="call_soon,timers,echo,idle")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each section, the loops taking turns"
    )
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    only = args.only.split(",")
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} CPUs, pid {os.getpid()}")
    sections: list[tuple[str, Callable[[asyncio.AbstractEventLoop], str]]] = [
        ("call_soon", lambda loop: bench_call_soon(loop, 1_000_000 // scale)),
        ("timers", lambda loop: bench_timers(loop, 100_000 // scale)),
        ("echo", lambda loop: bench_echo(loop, 50, 10 / scale)),
        ("idle", lambda loop: bench_idle(loop, 1000, 10 / scale)),
    ]
    for name, run in sections:
        if name not in only:
            continue
        for round_ in range(1, args.rounds + 1):
            for label, factory in factories().items():
                loop = factory()
                try:
                    print(f"{name:10} {label:16} {run(loop)}  (round {round_})", flush=True)
                finally:
                    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
