"""``erlang.async_call``: coroutines calling Erlang functions without blocking their loop.

Tests marked ``embedded`` run against the mocked BEAM here and against the real one inside
erlang_python (py_embedded_SUITE), with functions registered through the ``erlang_funcs``
fixture (conftest.py); the others test the mock's own behaviour.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

import erlang
from erlang.testing import ErlangException, MockBeam

if TYPE_CHECKING:
    from conftest import ErlangFuncs

IN_BEAM = "erlang._native" in sys.builtin_module_names


# ------------------------------------------------------------------- both worlds


@pytest.mark.embedded
def test_result_and_conversions(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("ta_args", lambda args: args)
    erlang_funcs.register("ta_add", lambda args: args[0] + args[1])

    async def main() -> tuple[Any, ...]:
        return (
            await erlang.async_call("ta_add", 2, 3),
            await erlang.async_call("ta_args"),
            await erlang.async_call("ta_args", (1, "a"), b"\xff", {"k": [1.5]}),
        )

    added, empty, converted = asyncio.run(main())
    assert added == 5
    assert empty == []
    assert converted == [(1, "a"), b"\xff", {"k": [1.5]}]


@pytest.mark.embedded
def test_import_forms(erlang_funcs: ErlangFuncs) -> None:
    from erlang import async_call

    erlang_funcs.register("ta_one", lambda args: 1)
    assert async_call is erlang.async_call
    assert "async_call" in erlang.__all__
    assert asyncio.run(async_call("ta_one")) == 1


@pytest.mark.embedded
def test_gather_keeps_order(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("ta_square", lambda args: args[0] * args[0])

    async def main() -> list[Any]:
        return await asyncio.gather(*(erlang.async_call("ta_square", i) for i in range(50)))

    assert asyncio.run(main()) == [i * i for i in range(50)]


@pytest.mark.embedded
def test_failures_raise_erlang_error(erlang_funcs: ErlangFuncs) -> None:
    def fail(args: list[Any]) -> Any:
        raise ErlangException("throw", "nope")

    erlang_funcs.register("ta_fail", fail)

    async def main() -> None:
        with pytest.raises(erlang.ErlangError) as raised:
            await erlang.async_call("ta_fail")
        assert raised.value.erlang_class == "throw"
        with pytest.raises(erlang.ErlangError) as raised:
            await erlang.async_call("ta_not_registered")
        assert raised.value.erlang_class == "not_found"
        assert raised.value.reason == "ta_not_registered"

    asyncio.run(main())


@pytest.mark.embedded
def test_bad_arguments_raise_type_error(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("ta_ident", lambda args: args[0])

    async def main() -> None:
        with pytest.raises(TypeError, match="Function name must be a string"):
            await erlang.async_call(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await erlang.async_call()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            await erlang.async_call("ta_ident", "x", kw=1)  # type: ignore[call-arg]
        with pytest.raises(UnicodeEncodeError):
            await erlang.async_call("ta_ident", "\udc80")

    asyncio.run(main())


@pytest.mark.embedded
def test_cancelling_the_await(erlang_funcs: ErlangFuncs) -> None:
    release = threading.Event()

    def slow(args: list[Any]) -> Any:
        release.wait(5)
        return args[0]

    erlang_funcs.register("ta_slow", slow)

    async def main() -> Any:
        task = asyncio.ensure_future(erlang.async_call("ta_slow", 1))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        # The loop stays usable, and later calls get their own results.
        return await erlang.async_call("ta_slow", 2)

    try:
        assert asyncio.run(main()) == 2
    finally:
        release.set()


@pytest.mark.embedded
def test_loop_stays_responsive(erlang_funcs: ErlangFuncs) -> None:
    """While an Erlang function runs, the loop runs other tasks (the loop's thread never
    waits for Erlang)."""
    release = threading.Event()

    def wait_for_release(args: list[Any]) -> Any:
        return release.wait(10)

    erlang_funcs.register("ta_wait", wait_for_release)

    async def main() -> Any:
        call = asyncio.ensure_future(erlang.async_call("ta_wait"))
        ticks = 0
        while ticks < 5:  # Only reachable if the loop runs while the call is pending.
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()
        return await call

    try:
        assert asyncio.run(main()) is True
    finally:
        release.set()


@pytest.mark.embedded
def test_loops_in_several_threads(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("ta_echo", lambda args: args[0])
    results: dict[int, list[Any]] = {}

    def run(t: int) -> None:
        async def main() -> list[Any]:
            return await asyncio.gather(*(erlang.async_call("ta_echo", (t, i)) for i in range(20)))

        results[t] = asyncio.run(main())

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {t: [(t, i) for i in range(20)] for t in range(4)}


# ------------------------------------------------------------------- the mocked BEAM


def test_mock_awaits_async_functions_on_the_callers_loop(beam: MockBeam) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def double(args: list[Any]) -> Any:
        seen.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return args[0] * 2

    beam.register_function("double", double)

    async def main() -> tuple[Any, asyncio.AbstractEventLoop]:
        return await erlang.async_call("double", 21), asyncio.get_running_loop()

    value, loop = asyncio.run(main())
    assert value == 42
    assert seen == [loop]
    assert beam.calls == [("double", [21])]


def test_mock_async_function_failures(beam: MockBeam) -> None:
    async def fails(args: list[Any]) -> Any:
        await asyncio.sleep(0)
        raise ErlangException("exit", "gone")

    async def crashes(args: list[Any]) -> Any:
        raise ValueError("broken")

    beam.register_function("fails", fails)
    beam.register_function("crashes", crashes)

    async def main() -> None:
        with pytest.raises(erlang.ErlangError) as raised:
            await erlang.async_call("fails")
        assert (raised.value.erlang_class, raised.value.reason) == ("exit", "gone")
        with pytest.raises(erlang.ErlangError) as raised:
            await erlang.async_call("crashes")
        assert raised.value.erlang_class == "error"
        assert "ValueError" in raised.value.reason

    asyncio.run(main())


def test_mock_cancel_cancels_the_async_function(beam: MockBeam) -> None:
    cancelled = []

    async def forever(args: list[Any]) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    beam.register_function("forever", forever)

    async def main() -> None:
        task = asyncio.ensure_future(erlang.async_call("forever"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)

    asyncio.run(main())
    assert cancelled == [True]


def test_mock_state_functions_through_async_call(beam: MockBeam) -> None:
    async def main() -> Any:
        await erlang.async_call("state_set", "k", 1)
        return await erlang.async_call("state_incr", "k", 2)

    assert asyncio.run(main()) == 3
    assert beam.state["k"] == 3


@pytest.mark.skipif(IN_BEAM, reason="outside the BEAM only")
def test_outside_any_beam_raises_not_in_beam() -> None:
    async def main() -> None:
        await erlang.async_call("anything")

    with pytest.raises(erlang.NotInBeamError, match="async_call"):
        asyncio.run(main())
