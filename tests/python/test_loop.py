"""``erlang.ErlangEventLoop``, ``erlang.new_event_loop``, ``erlang.ErlangEventLoopPolicy``,
``erlang.run`` and the erlang_python 1.6 module ``erlang_loop``.

Tests marked ``embedded`` run here and again inside the BEAM (py_embedded_SUITE), on an
executor thread, where no Python code runs on the main thread. CPython's own asyncio tests run
against the loop in tests/erlang/py_asyncio_conformance_SUITE.erl.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import erlang
from erlang.testing import MockBeam

if TYPE_CHECKING:
    from conftest import ErlangFuncs

IN_BEAM = "erlang._native" in sys.builtin_module_names

# ------------------------------------------------------------------- the names


@pytest.mark.embedded
def test_names_and_types() -> None:
    loop = erlang.new_event_loop()
    try:
        assert isinstance(loop, erlang.ErlangEventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not loop.is_running()
        assert "ErlangEventLoop" in repr(loop)
    finally:
        loop.close()
    assert loop.is_closed()
    for name in ("ErlangEventLoop", "ErlangEventLoopPolicy", "new_event_loop", "run"):
        assert name in erlang.__all__
    policy = erlang.ErlangEventLoopPolicy()
    made = policy.new_event_loop()
    try:
        assert isinstance(made, erlang.ErlangEventLoop)
    finally:
        made.close()


@pytest.mark.embedded
def test_run_returns_and_raises() -> None:
    async def where() -> tuple[str, int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__name__, 42

    assert erlang.run(where()) == ("ErlangEventLoop", 42)

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        erlang.run(fails())

    async def nested() -> None:
        coro = where()
        try:
            erlang.run(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="running event loop"):
        erlang.run(nested())


@pytest.mark.embedded
def test_run_debug_mode() -> None:
    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert erlang.run(debug(), debug=True) is True
    assert erlang.run(debug(), debug=False) is False


@pytest.mark.embedded
def test_erlang_loop_module_of_1_6() -> None:
    import erlang_loop

    assert erlang_loop.ErlangEventLoop is erlang.ErlangEventLoop
    policy = erlang_loop.get_event_loop_policy()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, erlang.ErlangEventLoop)
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        loop.close()


def test_install_policy_and_back() -> None:
    from erlang import _loop

    before = asyncio.get_event_loop_policy()
    assert not isinstance(before, erlang.ErlangEventLoopPolicy)
    try:
        _loop.install_policy(True)
        _loop.install_policy(True)  # twice: nothing more
        assert _loop.policy_installed()

        async def kind() -> str:
            return type(asyncio.get_running_loop()).__name__

        assert asyncio.run(kind()) == "ErlangEventLoop"
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, erlang.ErlangEventLoop)
        finally:
            loop.close()
    finally:
        _loop.install_policy(False)
    assert asyncio.get_event_loop_policy() is before
    assert not _loop.policy_installed()


@pytest.mark.skipif(not IN_BEAM, reason="the application installs the policy")
@pytest.mark.embedded
def test_policy_installed_in_the_beam() -> None:
    async def kind() -> str:
        return type(asyncio.get_running_loop()).__name__

    assert asyncio.run(kind()) == "ErlangEventLoop"


# ------------------------------------------------------------------- the loop API


@pytest.mark.embedded
def test_callbacks_timers_and_threadsafe_wakeup() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        done = loop.create_future()
        loop.call_later(0.02, seen.append, "later")
        loop.call_at(loop.time() + 0.01, seen.append, "at")
        loop.call_soon(seen.append, "soon")
        threading.Thread(target=loop.call_soon_threadsafe, args=(done.set_result, "t")).start()
        seen.append(await done)
        await asyncio.sleep(0.05)
        return seen

    seen = erlang.run(main())
    assert seen[0] == "soon"
    assert sorted(seen) == ["at", "later", "soon", "t"]
    assert seen.index("at") < seen.index("later")


@pytest.mark.embedded
def test_tcp_server_and_streams() -> None:
    async def main() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello\n")
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
        return line

    assert erlang.run(main()) == b"hello\n"


@pytest.mark.embedded
def test_unix_socket_udp_and_sock_api(tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")

    async def main() -> tuple[bytes, bytes, bytes]:
        loop = asyncio.get_running_loop()

        async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.read(100)).upper())
            writer.close()

        server = await asyncio.start_unix_server(upper, path)
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"unix")
            unix = await reader.read(100)
            writer.close()

        received: asyncio.Future[bytes] = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                received.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.setblocking(False)
        await loop.sock_sendto(sender, b"udp", transport.get_extra_info("sockname"))
        udp = await received
        transport.close()
        sender.close()

        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"pair")
        pair = await loop.sock_recv(b, 100)
        a.close()
        b.close()
        return unix, udp, pair

    assert erlang.run(main()) == (b"UNIX", b"udp", b"pair")


@pytest.mark.embedded
def test_subprocess_and_executor() -> None:
    async def main() -> tuple[bytes, int, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        out, _ = await proc.communicate(b"child")
        summed = await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2, 3])
        return out, proc.returncode or 0, summed

    assert erlang.run(main()) == (b"CHILD", 0, 6)


@pytest.mark.embedded
def test_tls_server_and_client(tmp_path: Any) -> None:
    # The certificates of CPython's own asyncio tests (its `test` package).
    test_utils = pytest.importorskip("test.test_asyncio.utils")

    server_ctx = test_utils.simple_server_sslcontext()
    client_ctx = test_utils.simple_client_sslcontext()

    async def main() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname=""
            )
            assert isinstance(writer.get_extra_info("ssl_object"), ssl.SSLObject)
            writer.write(b"secret\n")
            line = await reader.readline()
            writer.close()
        return line

    assert erlang.run(main()) == b"secret\n"


@pytest.mark.embedded
def test_loops_on_threads_are_isolated() -> None:
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        async def main() -> list[str]:
            loop = asyncio.get_running_loop()
            seen: list[str] = []
            await loop.run_in_executor(None, barrier.wait)
            for i in range(50):
                loop.call_soon(seen.append, f"{name}{i}")
                await asyncio.sleep(0)
            return seen

        results[name] = erlang.run(main())

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"] == [f"a{i}" for i in range(50)]
    assert results["b"] == [f"b{i}" for i in range(50)]


# ------------------------------------------------------------------- faults


@pytest.mark.embedded
def test_wrong_thread_raises() -> None:
    async def main() -> tuple[str, str, str]:
        loop = asyncio.get_running_loop()
        errors: list[str] = []

        def intruder() -> None:
            for call in (
                lambda: loop.call_soon(print),
                lambda: loop.call_later(1, print),
                lambda: loop.call_at(loop.time() + 1, print),
            ):
                try:
                    call()
                except RuntimeError as exc:
                    errors.append(str(exc))

        thread = threading.Thread(target=intruder)
        thread.start()
        await loop.run_in_executor(None, thread.join)
        assert not loop._ready  # type: ignore[attr-defined]  # nothing was queued
        return errors[0], errors[1], errors[2]

    errors = erlang.run(main())
    assert all("Non-thread-safe operation" in e for e in errors)
    assert all("call_soon_threadsafe" in e for e in errors)


@pytest.mark.embedded
def test_not_running_loop_accepts_any_thread() -> None:
    loop = erlang.new_event_loop()
    try:
        seen: list[int] = []
        thread = threading.Thread(target=loop.call_soon, args=(seen.append, 1))
        thread.start()
        thread.join()
        loop.run_until_complete(asyncio.sleep(0))
        assert seen == [1]
    finally:
        loop.close()


@pytest.mark.embedded
def test_signal_handler_off_the_main_thread() -> None:
    errors: list[BaseException] = []

    def off_main() -> None:
        loop = erlang.new_event_loop()
        try:
            loop.add_signal_handler(2, print)
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
    assert "BEAM" in str(errors[0])


@pytest.mark.embedded
def test_raising_callback_goes_to_the_exception_handler() -> None:
    contexts: list[dict[str, Any]] = []

    async def main() -> str:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: contexts.append(context))

        def bad() -> None:
            raise KeyError("cb")

        loop.call_soon(bad)
        loop.call_later(0.001, bad)
        await asyncio.sleep(0.02)
        return "still running"

    assert erlang.run(main()) == "still running"
    assert len(contexts) == 2
    assert all(isinstance(c["exception"], KeyError) for c in contexts)


@pytest.mark.embedded
def test_close_with_pending_work(caplog: pytest.LogCaptureFixture) -> None:
    loop = erlang.new_event_loop()
    ran: list[int] = []
    loop.call_soon(ran.append, 1)
    loop.call_later(10, ran.append, 2)

    async def forever() -> None:
        await asyncio.sleep(3600)

    task = loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))  # the task starts and waits
    assert ran == [1]
    with pytest.raises(RuntimeError, match="running event loop"):
        loop.run_until_complete(_close_running(loop))
    loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(ran.append, 3)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()
    assert not task.done()
    assert ran == [1]
    loop.close()  # twice: nothing more
    del task


async def _close_running(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()


@pytest.mark.embedded
def test_fd_closed_while_registered() -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        fd = a.fileno()
        loop.add_reader(fd, print)
        a.close()  # closed behind the loop's back
        await asyncio.sleep(0.01)
        removed = loop.remove_reader(fd)
        # A new fd may reuse the number: it registers afresh.
        c, d = socket.socketpair()
        got: asyncio.Future[bytes] = loop.create_future()
        loop.add_reader(c.fileno(), lambda: got.set_result(c.recv(10)))
        d.send(b"x")
        data = await got
        loop.remove_reader(c.fileno())
        for s in (b, c, d):
            s.close()
        return removed, data == b"x"

    removed, reused = erlang.run(main())
    assert removed is True
    assert reused


@pytest.mark.embedded
def test_transport_written_after_close(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        transport.close()
        await asyncio.sleep(0)
        for _ in range(6):
            transport.write(b"late")
        b.close()
        await asyncio.sleep(0)
        return transport.is_closing()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        assert erlang.run(main()) is True
    assert any("socket.send() raised exception" in r.getMessage() for r in caplog.records)


@pytest.mark.embedded
def test_cancelled_while_awaiting_erlang(erlang_funcs: ErlangFuncs) -> None:
    release = threading.Event()
    erlang_funcs.register("tl_slow", lambda args: release.wait(30))

    async def main() -> bool:
        task = asyncio.ensure_future(erlang.async_call("tl_slow"))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        finally:
            release.set()
        return False

    assert erlang.run(main()) is True


@pytest.mark.embedded
def test_async_call_reply_through_the_loops_inbox(erlang_funcs: ErlangFuncs) -> None:
    """Inside the BEAM each loop gets an inbox on its first erlang.async_call, which the reply
    reaches directly, and which closes with the loop; the mocked BEAM has none (its replies
    come through call_soon_threadsafe) and the same loop class works with it."""
    erlang_funcs.register("tl_echo", lambda args: args[0])

    async def main() -> tuple[object, object]:
        loop = asyncio.get_running_loop()
        value = await erlang.async_call("tl_echo", 7)
        return value, loop._erlang_inbox  # type: ignore[attr-defined]

    loop = erlang.new_event_loop()
    try:
        value, inbox = loop.run_until_complete(main())
    finally:
        loop.close()
    assert value == 7
    assert loop._erlang_inbox is False  # type: ignore[attr-defined]
    if IN_BEAM:
        assert type(inbox).__name__ == "LoopInbox"
        with pytest.raises(RuntimeError, match="closed"):
            inbox.fileno()  # type: ignore[attr-defined]
    else:
        assert inbox is False


def test_no_loop_inbox_outside_the_beam() -> None:
    assert erlang._native._loop_inbox() is None
    with MockBeam():
        assert erlang._native._loop_inbox() is None


def test_async_call_with_the_mock_on_the_loop() -> None:
    with MockBeam() as beam:
        beam.register_function("tl_add", lambda args: args[0] + args[1])

        async def main() -> tuple[int, str]:
            value = await erlang.async_call("tl_add", 2, 3)
            return value, type(asyncio.get_running_loop()).__name__

        assert erlang.run(main()) == (5, "ErlangEventLoop")


def test_idle_loop_does_not_wake_up() -> None:
    """An idle loop waits in one selector call with no timeout: no periodic wake-ups."""
    loop = erlang.new_event_loop()
    selects: list[float | None] = []
    real_select = loop._selector.select  # type: ignore[attr-defined]

    def select(timeout: float | None = None) -> Any:
        selects.append(timeout)
        return real_select(timeout)

    loop._selector.select = select  # type: ignore[attr-defined]
    stopper = threading.Timer(0.3, loop.call_soon_threadsafe, args=(loop.stop,))
    # Started by the loop: once it has run, nothing is ready and no timer is scheduled.
    loop.call_soon(stopper.start)
    try:
        loop.run_forever()
    finally:
        stopper.join()
        loop.close()
    assert selects[1] is None  # waited with no timeout at all, however long it took
    # Only the wake-up from the other thread came after: no periodic wake-ups.
    assert len(selects) <= 4


class _FakeInbox:
    """Stands for a loop's inbox in the selector's tests: ``spin`` answers as told and records
    the timeouts it was given."""

    def __init__(self, fd: int, answer: bool) -> None:
        self.fd = fd
        self.answer = answer
        self.spins: list[float | None] = []

    def fileno(self) -> int:
        return self.fd

    def spin(self, timeout: float | None = None) -> bool:
        self.spins.append(timeout)
        return self.answer


@pytest.mark.embedded
def test_selector_reports_the_inbox_after_a_spin() -> None:
    """A reply handed to a loop spinning for it writes no byte to the inbox's socket: the
    selector then reports the inbox readable itself, once (also when a byte came too). A spin
    in vain leaves the wait to the selector; a poll (timeout 0) or a selector with no inbox
    never spins; an inbox nobody watches any more is not reported."""
    from erlang._loop import _Selector

    quiet, quiet_peer = socket.socketpair()
    loud, loud_peer = socket.socketpair()
    selector = _Selector()
    try:
        selector.register(quiet, selectors.EVENT_READ, "quiet")
        selector.register(loud, selectors.EVENT_READ, "loud")
        assert selector.select(0) == []
        inbox = _FakeInbox(quiet.fileno(), True)
        selector.erlang_inbox = inbox
        ready = selector.select(None)
        assert [(key.data, events) for key, events in ready] == [("quiet", selectors.EVENT_READ)]
        assert selector.select(0) == []
        assert inbox.spins == [None]
        quiet_peer.send(b"x")
        assert [key.data for key, _ in selector.select(5.0)] == ["quiet"]
        inbox.answer = False
        loud_peer.send(b"y")
        assert sorted(key.data for key, _ in selector.select(5.0)) == ["loud", "quiet"]
        assert inbox.spins == [None, 5.0, 5.0]
        selector.unregister(quiet)
        inbox.answer = True
        assert [key.data for key, _ in selector.select(5.0)] == ["loud"]
    finally:
        selector.close()
        for sock in (quiet, quiet_peer, loud, loud_peer):
            sock.close()


@pytest.mark.embedded
def test_async_call_one_by_one_and_the_selector(erlang_funcs: ErlangFuncs) -> None:
    """Calls awaited one by one each get their own value, on a loop with erlang_python's
    selector (inside the BEAM, the loop's inbox is the selector's while the loop lives, so the
    wait for a reply may spin) and on a loop given a selector of its own (which never spins)."""
    erlang_funcs.register("tl_echo", lambda args: args[0])

    async def main(n: int) -> tuple[list[object], bool]:
        loop: Any = asyncio.get_running_loop()
        got = [await erlang.async_call("tl_echo", i) for i in range(n)]
        inbox = loop._erlang_inbox
        selector = loop._erlang_selector
        watched = selector is not None and selector.erlang_inbox is inbox and inbox is not False
        return got, watched

    for own in (False, True):
        loop: Any = erlang.ErlangEventLoop(selectors.SelectSelector() if own else None)
        try:
            got, watched = loop.run_until_complete(main(200))
        finally:
            loop.close()
        assert got == list(range(200))
        assert watched is (IN_BEAM and not own)
        assert (loop._erlang_selector is None) is own
        if not own:
            assert loop._erlang_selector.erlang_inbox is None


@pytest.mark.embedded
def test_async_loop_of_py_async_call_is_ours() -> None:
    from erlang import _aio

    loop = _aio.loop()
    assert isinstance(loop, erlang.ErlangEventLoop)


# ------------------------------------------------------------------- erlang.send


@pytest.mark.embedded
def test_send_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"erlang\.Pid, not str"):
        erlang.send("<0.1.0>", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        erlang.send()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        erlang.send(1, 2, 3)  # type: ignore[call-arg]
    assert "send" in erlang.__all__


def test_send_records_in_the_mock() -> None:
    with MockBeam() as beam:
        a, b = beam.new_pid(), beam.new_pid()
        assert a != b
        assert isinstance(a, erlang.Pid)
        erlang.send(a, {"k": (1, "two")})
        erlang.send(b, [a, b"\xff"])
        assert beam.sent == [(a, {"k": (1, "two")}), (b, [a, b"\xff"])]


def test_send_unconvertible_raises_in_the_mock() -> None:
    with MockBeam(max_depth=5) as beam:
        pid = beam.new_pid()
        deep: list[Any] = []
        for _ in range(10):
            deep = [deep]
        with pytest.raises(ValueError, match="deeper than 5"):
            erlang.send(pid, deep)
        assert beam.sent == []


def test_send_outside_the_beam() -> None:
    with MockBeam() as beam:
        pid = beam.new_pid()
    with pytest.raises(erlang.NotInBeamError, match=r"erlang\.send"):
        erlang.send(pid, 1)


def test_send_from_a_coroutine_on_the_loop() -> None:
    with MockBeam() as beam:
        pid = beam.new_pid()

        async def main() -> None:
            for i in range(3):
                erlang.send(pid, i)
                await asyncio.sleep(0)

        erlang.run(main())
        assert beam.sent == [(pid, 0), (pid, 1), (pid, 2)]


# ------------------------------------------------------------------- mailboxes


@pytest.mark.embedded
def test_mailbox_send_and_receive(erlang_funcs: ErlangFuncs) -> None:
    async def main() -> tuple[list[Any], bool]:
        async with await erlang.open_mailbox() as mailbox:
            assert isinstance(mailbox.pid, erlang.Pid)
            erlang.send(mailbox.pid, ("one", 1))
            erlang.send(mailbox.pid, {"two": [2.5, b"\xff"]})
            erlang.send(mailbox.pid, mailbox.pid)
            got = [await mailbox.receive(timeout=10) for _ in range(3)]
            return got, got[2] == mailbox.pid

    got, same_pid = erlang.run(main())
    assert got[:2] == [("one", 1), {"two": [2.5, b"\xff"]}]
    assert same_pid


@pytest.mark.embedded
def test_mailbox_open_timeout(erlang_funcs: ErlangFuncs) -> None:
    async def main() -> str:
        for bad in (0, -1.0, float("nan")):
            with pytest.raises(ValueError, match="positive number of seconds"):
                await erlang.open_mailbox(timeout=bad)
        async with await erlang.open_mailbox(timeout=10) as mailbox:
            erlang.send(mailbox.pid, "in time")
            return str(await mailbox.receive(timeout=10))

    assert erlang.run(main()) == "in time"


@pytest.mark.embedded
def test_mailbox_timeout_and_cancel(erlang_funcs: ErlangFuncs) -> None:
    async def main() -> str:
        async with await erlang.open_mailbox() as mailbox:
            with pytest.raises(TimeoutError):
                await mailbox.receive(timeout=0.01)
            task = asyncio.ensure_future(mailbox.receive())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            erlang.send(mailbox.pid, "after")
            return str(await mailbox.receive(timeout=10))

    assert erlang.run(main()) == "after"


@pytest.mark.embedded
def test_mailbox_async_for_ends_on_close(erlang_funcs: ErlangFuncs) -> None:
    async def main() -> tuple[list[int], bool]:
        mailbox = await erlang.open_mailbox()
        got: list[int] = []

        async def consume() -> None:
            async for message in mailbox:
                got.append(message)
                if len(got) == 3:
                    mailbox.close()

        consumer = asyncio.ensure_future(consume())
        for i in range(3):
            erlang.send(mailbox.pid, i)
        await asyncio.wait_for(consumer, 10)
        erlang.send(mailbox.pid, 99)  # a closed mailbox's process is gone: silently dropped
        with pytest.raises(erlang.MailboxClosedError, match="closed"):
            await mailbox.receive()
        mailbox.close()  # twice: nothing more
        return got, mailbox.closed

    assert erlang.run(main()) == ([0, 1, 2], True)


@pytest.mark.embedded
def test_mailbox_one_receiver(erlang_funcs: ErlangFuncs) -> None:
    async def main() -> None:
        async with await erlang.open_mailbox() as mailbox:
            first = asyncio.ensure_future(mailbox.receive())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="already receiving"):
                await mailbox.receive()
            erlang.send(mailbox.pid, 1)
            assert await asyncio.wait_for(first, 10) == 1

    erlang.run(main())


@pytest.mark.embedded
def test_mailbox_closed_with_its_loop(erlang_funcs: ErlangFuncs) -> None:
    loop = erlang.new_event_loop()
    try:
        mailbox = loop.run_until_complete(erlang.open_mailbox())
        assert not mailbox.closed
    finally:
        loop.close()
    assert mailbox.closed
    assert "closed" in repr(mailbox)


def test_mailbox_in_the_mock() -> None:
    with MockBeam() as beam:

        async def main() -> list[Any]:
            mailbox = await erlang.open_mailbox()
            assert beam.mailboxes == [mailbox.pid]
            thread = threading.Thread(target=beam.deliver, args=(mailbox.pid, ("t", [1])))
            thread.start()
            thread.join()
            erlang.send(mailbox.pid, "sent")
            got = [await mailbox.receive(timeout=10), await mailbox.receive(timeout=10)]
            beam.deliver(mailbox.pid, "last")
            beam.kill_mailbox(mailbox.pid, "killed")
            got.append(await mailbox.receive())  # what arrived before the kill
            with pytest.raises(erlang.MailboxClosedError, match="killed") as info:
                await mailbox.receive()
            assert info.value.reason == "killed"
            with pytest.raises(erlang.MailboxClosedError):
                async for _ in mailbox:  # a killed process ends an async for with the error
                    pass
            assert not beam.deliver(mailbox.pid, "gone")
            assert beam.mailboxes == []
            return got

        assert erlang.run(main()) == [("t", [1]), "sent", "last"]
        assert beam.sent[-1][1] == "sent"
        with pytest.raises(KeyError):
            beam.kill_mailbox(beam.new_pid())


def test_forgotten_mailbox_is_collected() -> None:
    """A mailbox dropped without close() is not kept alive by its loop: it is collected, its
    process ends (the mock forgets it) and the loop stops watching its fd, as after close()."""
    with MockBeam() as beam:

        async def main() -> None:
            loop = asyncio.get_running_loop()
            readers = len(loop._selector.get_map())  # type: ignore[attr-defined]
            mailbox = await erlang.open_mailbox()
            assert len(beam.mailboxes) == 1
            gone = weakref.ref(mailbox)
            del mailbox
            gc.collect()
            assert gone() is None
            assert beam.mailboxes == []
            assert len(loop._selector.get_map()) == readers  # type: ignore[attr-defined]
            kept = await erlang.open_mailbox()
            kept.close()
            assert beam.mailboxes == []
            assert len(loop._selector.get_map()) == readers  # type: ignore[attr-defined]

        erlang.run(main())


def test_mailbox_outside_the_beam() -> None:
    async def main() -> None:
        await erlang.open_mailbox()

    with pytest.raises(erlang.NotInBeamError, match="open_mailbox"):
        erlang.run(main())


# ------------------------------------------- CPython's asyncio tests in the mock


def test_cpython_asyncio_tests_pass_on_the_loop_in_the_mock() -> None:
    """The loop-generic tests of CPython's ``test.test_asyncio`` (the ones
    py_asyncio_conformance_SUITE runs inside the BEAM) pass on ``ErlangEventLoop`` in plain
    Python with a ``MockBeam`` active, run off the main thread as on an executor: the same
    class, with only the BEAM mocked. A child process, since the run sets asyncio's policy
    and child watchers."""
    code = (
        "import sys, threading\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import asyncio_conformance as conformance\n"
        "from erlang.testing import MockBeam\n"
        "reports = []\n"
        "def main():\n"
        "    with MockBeam():\n"
        "        reports.extend(conformance.run())\n"
        "thread = threading.Thread(target=main, name='executor-like')\n"
        "thread.start()\n"
        "thread.join()\n"
        "print(conformance.summary(reports))\n"
        "for r in reports:\n"
        "    for test, text in conformance.unexpected(r):\n"
        "        print(f'FAILED {r[\"module\"]}.{test}:\\n{text}')\n"
        "sys.exit(1 if any(conformance.unexpected(r) for r in reports) or not reports else 0)\n"
    )
    here = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", code, here], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) >= 8, out.stdout
    for line in lines:
        # Every module ran tests, and every loop it made was an ErlangEventLoop.
        rest = line.partition(": ")[2]
        assert " 0 run," not in f" {rest}", line
        assert "'ErlangEventLoop'" in rest, line
        assert "SelectorEventLoop" not in rest, line
