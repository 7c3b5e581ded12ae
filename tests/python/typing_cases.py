"""What the type stubs of ``erlang`` accept: checked by ``test_typing.py`` with ``mypy --strict``.

Every call that the runtime refuses with ``TypeError`` (or ``ValueError``) carries the
``# type: ignore[code]`` that mypy needs for it. ``warn_unused_ignores`` (part of ``--strict``)
makes a comment that is not needed an error, so a stub that grows loose again (say
``call(*args: Any, **kwargs: Any)``) fails the test; every other line must type-check, so a
stub that grows too strict fails it too. Never imported or run: the calls are for the checker.
"""

import logging
from typing import Any

import erlang
from erlang import testing


def python_calls_erlang() -> None:
    erlang.call("f")
    erlang.call("f", 1, "a", None, (1,), [1], {"k": b"v"}, object())
    result: int = erlang.call("f")
    erlang.call()  # type: ignore[call-arg]
    erlang.call(1)  # type: ignore[arg-type]
    erlang.call(b"f")  # type: ignore[arg-type]
    erlang.call("f", a=1)  # type: ignore[call-arg]
    erlang.call(name="f")  # type: ignore[call-arg]

    erlang.Function("f")(1, "a")
    erlang.Function("f")(a=1)  # type: ignore[call-arg]
    erlang.Function(1)  # type: ignore[arg-type]
    assert erlang.Function("f").name == result * "f"

    # A registered function as an attribute, or imported: a `Function`.
    erlang.double(21)
    erlang.double(x=21)  # type: ignore[call-arg]
    from erlang import double

    double(21)
    double(x=21)  # type: ignore[call-arg]


async def coroutines_call_erlang() -> None:
    await erlang.async_call("f", 1, "a")
    await erlang.async_call()  # type: ignore[call-arg]
    await erlang.async_call(1)  # type: ignore[arg-type]
    await erlang.async_call("f", a=1)  # type: ignore[call-arg]


def erlang_values(data: bytes) -> None:
    pid: erlang.Pid = erlang.binary_to_term(data)
    assert pid.to_bytes() == data
    erlang.Pid()  # type: ignore[call-arg]
    erlang.Ref()  # type: ignore[call-arg]
    erlang.term_to_binary({"a": (1, None)})
    erlang.term_to_binary(1, 2)  # type: ignore[call-arg]
    erlang.binary_to_term(bytearray(data))
    erlang.binary_to_term("text")  # type: ignore[arg-type]
    erlang.binary_to_term(memoryview(data))  # type: ignore[arg-type]


def shared_state() -> None:
    # Keys and values are any terms.
    erlang.state_set("hits", 1)
    erlang.state_set((1, "k"), [1.5])
    erlang.state_get(b"hits", 0)
    erlang.state_delete(1)
    hits: int = erlang.state_incr("hits")
    erlang.state_decr("hits", hits)
    erlang.state_incr("hits", 1.5)  # type: ignore[arg-type]
    erlang.state_incr("hits", "1")  # type: ignore[arg-type]
    keys: list[Any] = erlang.state_keys()
    erlang.state_keys(keys)  # type: ignore[call-arg]


def logging_and_tracing() -> None:
    handler: erlang.ErlangHandler = erlang.setup_logging(logging.INFO, "%(message)s")
    logging.getLogger().addHandler(erlang.ErlangHandler(logging.DEBUG, fmt=None))
    logging.getLogger().removeHandler(handler)
    erlang.setup_logging("INFO")  # type: ignore[arg-type]
    with erlang.Span("checkout", cart=42) as span:
        span.event("priced", total=99.5)
    erlang.Span(1)  # type: ignore[arg-type]
    erlang.Span(name="checkout")  # type: ignore[call-arg]

    @erlang.trace
    def traced(x: int) -> int:
        return x

    @erlang.trace("named")
    async def traced_async(x: int) -> int:
        return x

    traced(1)
    traced("1")  # type: ignore[arg-type]


def add(a: int, b: int) -> int:
    return a + b


def the_mocked_beam() -> None:
    with testing.MockBeam(state_max_keys=10) as beam:
        # Without spread=True the function gets one list of all the arguments.
        beam.register_function("f", lambda args: args[0])
        beam.register_function("add", add, spread=True)
        beam.register_function("add", add)  # type: ignore[arg-type]
        beam.register_function("f", 42)  # type: ignore[call-overload]
        beam.register_function(b"f", print)  # type: ignore[call-overload]
    testing.ErlangException("throw", "{not_found,42}")
    testing.ErlangException("oops", "reason")  # type: ignore[arg-type]
