"""Python calls Erlang: ``erlang.call``, ``erlang.<name>``, ``erlang.Function``, ``ErlangError``.

Tests marked ``embedded`` run against the mocked BEAM here and against the real one inside
erlang_python (py_embedded_SUITE), with functions registered through the ``erlang_funcs``
fixture (conftest.py); the others test the mock's own API (``beam.register_function``,
``beam.calls``, async functions).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import erlang
from erlang import _errors
from erlang.testing import ErlangException, MockBeam, Term

if TYPE_CHECKING:
    # conftest is not importable inside the BEAM (importlib import mode).
    from conftest import ErlangFuncs

IN_BEAM = "erlang._native" in sys.builtin_module_names

# term_to_binary(c:pid(0, 85, 0)) on a node without a name.
PID_85 = b"\x83Xd\x00\rnonode@nohost\x00\x00\x00U\x00\x00\x00\x00\x00\x00\x00\x00"


def echo(args: list[Any]) -> Any:
    return args[0]


# ------------------------------------------------------------------- calling (both worlds)


@pytest.mark.embedded
def test_the_function_gets_one_list_of_arguments(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_args", lambda args: args)
    assert erlang.call("t_args") == []
    assert erlang.call("t_args", 1, "a") == [1, "a"]
    assert erlang.call("t_args", [1, 2]) == [[1, 2]]


@pytest.mark.embedded
def test_every_way_of_calling(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_add", lambda args: args[0] + args[1])
    from erlang import t_add

    assert erlang.call("t_add", 2, 3) == 5
    assert erlang.t_add(2, 3) == 5
    assert t_add(2, 3) == 5
    assert isinstance(t_add, erlang.Function)
    assert t_add.name == "t_add"
    assert erlang.Function("t_add")(2, 3) == 5
    assert getattr(erlang, "t_add")(2, 3) == 5  # noqa: B009


@pytest.mark.embedded
def test_names_that_are_not_identifiers(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t-dash", lambda args: "dash")
    erlang_funcs.register("__t_dunder", lambda args: "dunder")
    assert erlang.call("t-dash") == "dash"
    assert getattr(erlang, "t-dash")() == "dash"
    assert erlang.call("__t_dunder") == "dunder"
    # Names starting with `__` never resolve as attributes.
    assert not hasattr(erlang, "__t_dunder")


@pytest.mark.embedded
def test_registering_again_replaces(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_version", lambda args: 1)
    erlang_funcs.register("t_version", lambda args: 2)
    assert erlang.call("t_version") == 2


@pytest.mark.embedded
def test_keyword_arguments_are_refused(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_kw", lambda args: args)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        erlang.call("t_kw", x=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        erlang.Function("t_kw")(x=1)  # type: ignore[call-arg]


# ------------------------------------------------------------------- the registry


@pytest.mark.embedded
def test_only_registered_names_resolve(erlang_funcs: ErlangFuncs) -> None:
    assert not hasattr(erlang, "t_later")
    with pytest.raises(AttributeError, match="has no attribute 't_later'"):
        _ = erlang.t_later
    erlang_funcs.register("t_later", lambda args: "here")
    assert hasattr(erlang, "t_later")
    kept = erlang.t_later
    erlang_funcs.unregister("t_later")
    assert not hasattr(erlang, "t_later")
    with pytest.raises(ImportError):
        from erlang import t_later  # noqa: F401
    # A Function kept from before calls by name: the name is gone.
    with pytest.raises(erlang.ErlangError, match="Function 't_later' not registered"):
        kept()


@pytest.mark.embedded
def test_unknown_names_raise_not_found(erlang_funcs: ErlangFuncs) -> None:
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_no_such_function", 1)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert str(err) == "Function 't_no_such_function' not registered"
    assert err.erlang_class == "not_found"
    assert err.reason == "t_no_such_function"
    assert err.stacktrace == ""


@pytest.mark.embedded
def test_unregistering_an_unknown_name_is_fine(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.unregister("t_never_registered")
    assert not hasattr(erlang, "t_never_registered")


# ------------------------------------------------------------------- conversion


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("argument", "back"),
    [
        pytest.param([], [], id="empty-list"),
        pytest.param([1, [2]], [1, [2]], id="list"),
        pytest.param((1, "a"), (1, "a"), id="tuple"),
        pytest.param((), (), id="empty-tuple"),
        pytest.param({"k": 1, 2: (3,)}, {"k": 1, 2: (3,)}, id="dict"),
        pytest.param({}, {}, id="empty-dict"),
        pytest.param(2**100, 2**100, id="bigint"),
        pytest.param(-(2**70), -(2**70), id="negative-bigint"),
        pytest.param(1.5, 1.5, id="float"),
        pytest.param(float("inf"), "infinity", id="infinity-is-an-atom"),
        pytest.param(None, None, id="none"),
        pytest.param(True, True, id="true"),
        pytest.param("héllo", "héllo", id="str"),
        pytest.param("", "", id="empty-str"),
        pytest.param(b"abc", "abc", id="utf8-bytes-come-back-str"),
        pytest.param(b"\xff", b"\xff", id="bytes"),
        pytest.param(bytearray(b"\xff"), b"\xff", id="bytearray"),
        pytest.param(frozenset({7}), [7], id="set-becomes-list"),
        pytest.param({"a": {"b": [(1, None)]}}, {"a": {"b": [(1, None)]}}, id="nested"),
    ],
)
def test_values_go_through_the_conversion_rules(
    erlang_funcs: ErlangFuncs, argument: object, back: object
) -> None:
    erlang_funcs.register("t_echo", echo)
    got = erlang.call("t_echo", argument)
    assert got == back
    assert type(got) is type(back)


@pytest.mark.embedded
def test_the_function_receives_erlang_values(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_types", lambda args: [type(a).__name__ for a in args])
    got = erlang.call("t_types", (1,), [1], {"k": 1}, {1}, b"k", None, 1.0)
    assert got == ["tuple", "list", "dict", "list", "str", "NoneType", "float"]


@pytest.mark.embedded
def test_pids_and_objects_come_back_the_same(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_echo", echo)
    pid = erlang.binary_to_term(PID_85)
    assert erlang.call("t_echo", pid) == pid
    lock = threading.Lock()
    assert erlang.call("t_echo", lock) is lock
    assert erlang.call("t_echo", {"lock": [lock]})["lock"][0] is lock


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("argument", "error", "match"),
    [
        pytest.param({"k": 1, b"k": 2}, ValueError, "same Erlang term", id="duplicate-key"),
        pytest.param("\ud800", UnicodeEncodeError, "surrogate", id="lone-surrogate"),
        pytest.param(nested(1001), ValueError, "deeper than 1000", id="too-deep"),
    ],
)
def test_unconvertible_arguments_raise_before_the_call(
    erlang_funcs: ErlangFuncs, argument: object, error: type[Exception], match: str
) -> None:
    seen: list[object] = []
    erlang_funcs.register("t_record", seen.append)
    with pytest.raises(error, match=match):
        erlang.call("t_record", 1, argument)
    assert seen == []


# ------------------------------------------------------------------- errors


@pytest.mark.embedded
def test_an_exception_in_the_function_raises_erlang_error(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_divide", lambda args: args[0] / args[1])
    assert erlang.call("t_divide", 1, 2) == 0.5
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_divide", 1, 0)
    err = info.value
    assert err.erlang_class == "error"
    assert "ZeroDivisionError" in err.reason
    assert str(err) == f"error: {err.reason}"
    assert isinstance(err.stacktrace, str)


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("erlang_class", "reason"),
    [("error", "badarg"), ("exit", "{shutdown,1}"), ("throw", "{my_error,[1,2]}")],
)
def test_erlang_exceptions_keep_their_class_and_reason(
    erlang_funcs: ErlangFuncs, erlang_class: str, reason: str
) -> None:
    def fail(args: list[Any]) -> None:
        raise ErlangException(erlang_class, reason)

    erlang_funcs.register("t_fail", fail)
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_fail")
    err = info.value
    assert (err.erlang_class, err.reason) == (erlang_class, reason)
    assert str(err) == f"{erlang_class}: {reason}"


@pytest.mark.embedded
def test_python_catches_the_error_and_goes_on(erlang_funcs: ErlangFuncs) -> None:
    def maybe(args: list[Any]) -> int:
        if args[0] < 0:
            raise ErlangException("throw", "negative")
        return int(args[0])

    erlang_funcs.register("t_maybe", maybe)
    results = []
    for n in (1, -1, 2):
        try:
            results.append(erlang.call("t_maybe", n))
        except erlang.ErlangError as e:
            results.append(e.reason)
    assert results == [1, "negative", 2]


# ------------------------------------------------------------------- nesting and threads


@pytest.mark.embedded
def test_a_function_may_call_erlang_again(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_inner", lambda args: args[0] * 2)
    erlang_funcs.register("t_outer", lambda args: erlang.call("t_inner", args[0]) + 1)
    assert erlang.call("t_outer", 20) == 41


@pytest.mark.embedded
def test_nested_calls_at_depth(erlang_funcs: ErlangFuncs) -> None:
    def countdown(args: list[Any]) -> int:
        n = args[0]
        return 0 if n == 0 else 1 + int(erlang.call("t_countdown", n - 1))

    erlang_funcs.register("t_countdown", countdown)
    assert erlang.call("t_countdown", 20) == 20


@pytest.mark.embedded
def test_an_uncaught_nested_error_fails_the_outer_call(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_outer", lambda args: erlang.call("t_missing"))
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_outer")
    assert info.value.erlang_class == "error"
    assert "ErlangError" in info.value.reason


@pytest.mark.embedded
def test_threads_each_get_their_own_results(erlang_funcs: ErlangFuncs) -> None:
    erlang_funcs.register("t_double", lambda args: (args[0], args[0] * 2))

    def work(base: int) -> list[Any]:
        return [erlang.call("t_double", base + i) for i in range(100)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(0, 800, 100)))
    assert results == [[(n, n * 2) for n in range(b, b + 100)] for b in range(0, 800, 100)]


# ------------------------------------------------------------------- the mock's own API


def test_calls_are_recorded(beam: MockBeam) -> None:
    beam.register_function("t_add", lambda args: args[0] + args[1])
    erlang.t_add(1, 2)
    with pytest.raises(erlang.ErlangError):
        erlang.call("t_unknown", (1,), {"k": b"v"}, {2})
    erlang.state_get("k")
    # The arguments as the function received them (unknown names included).
    assert beam.calls == [
        ("t_add", [1, 2]),
        ("t_unknown", [(1,), {"k": "v"}, [2]]),
        ("state_get", ["k"]),
    ]


def test_spread_passes_separate_arguments(beam: MockBeam) -> None:
    beam.register_function("t_add", lambda a, b=10: a + b, spread=True)
    assert erlang.call("t_add", 1, 2) == 3
    assert erlang.call("t_add", 1) == 11
    with pytest.raises(erlang.ErlangError, match="TypeError"):
        erlang.call("t_add")


def test_register_checks_its_arguments(beam: MockBeam) -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        beam.register_function(b"f", echo)
    with pytest.raises(TypeError, match="fn must be callable"):
        beam.register_function("f", 42)
    with pytest.raises(TypeError, match="name must be a str"):
        beam.unregister_function(1)


def test_async_functions_are_awaited(beam: MockBeam) -> None:
    async def add(args: list[Any]) -> int:
        await asyncio.sleep(0)
        return int(args[0] + args[1])

    beam.register_function("t_add", add)
    assert erlang.call("t_add", 1, 2) == 3


def test_async_functions_from_a_running_loop(beam: MockBeam) -> None:
    loop_thread: list[int] = []

    async def where(args: list[Any]) -> int:
        loop_thread.append(threading.get_ident())
        await asyncio.sleep(0)
        return 7

    beam.register_function("t_where", where)

    async def main() -> Any:
        # A synchronous call blocks the running loop, as a call into the BEAM does; the
        # function's own loop runs in a helper thread.
        return erlang.call("t_where")

    assert asyncio.run(main()) == 7
    assert loop_thread != [threading.get_ident()]


def test_async_functions_fail_and_nest(beam: MockBeam) -> None:
    async def fail(args: list[Any]) -> None:
        await asyncio.sleep(0)
        raise ErlangException("exit", "killed")

    async def inner(args: list[Any]) -> int:
        await asyncio.sleep(0)
        return sum(args)

    async def outer(args: list[Any]) -> Any:
        # A synchronous call from inside the private loop: the inner function gets its own.
        return erlang.call("t_inner", *args)

    beam.register_function("t_fail", fail)
    beam.register_function("t_inner", inner)
    beam.register_function("t_outer", outer)
    with pytest.raises(erlang.ErlangError, match=r"^exit: killed$"):
        erlang.call("t_fail")
    assert erlang.call("t_outer", 1, 2, 3) == 6


def test_functions_returning_awaitables_are_awaited(beam: MockBeam) -> None:
    async def value() -> str:
        return "done"

    beam.register_function("t_later", lambda args: value())
    assert erlang.call("t_later") == "done"


def test_a_term_result_is_returned_exactly(beam: MockBeam) -> None:
    beam.register_function("t_atom", lambda args: Term(b"\x83w\x02ok"))
    beam.register_function("t_undefined", lambda args: Term(b"\x83w\x09undefined"))
    # fun lists:map/2 has no Python equivalent.
    beam.register_function("t_fun", lambda args: Term(b"\x83qw\x05listsw\x03mapa\x02"))
    assert erlang.call("t_atom") == "ok"
    assert erlang.call("t_undefined") is None
    with pytest.raises(TypeError, match="fun"):
        erlang.call("t_fun")


def test_an_unconvertible_result_raises_its_conversion_error(beam: MockBeam) -> None:
    beam.register_function("t_bad", lambda args: {"k": 1, b"k": 2})
    with pytest.raises(ValueError, match="same Erlang term"):
        erlang.call("t_bad")


def test_the_stacktrace_is_the_functions_python_stack(beam: MockBeam) -> None:
    def broken(args: list[Any]) -> None:
        {}["missing"]

    beam.register_function("t_broken", broken)
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_broken")
    assert info.value.reason == "KeyError('missing')"
    assert "in broken" in info.value.stacktrace
    assert "_erlang_call" not in info.value.stacktrace


def test_an_explicit_stacktrace_is_kept(beam: MockBeam) -> None:
    def fail(args: list[Any]) -> None:
        raise ErlangException("error", "undef", "[{nope,f,1,[]}]")

    beam.register_function("t_fail", fail)
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("t_fail")
    assert info.value.stacktrace == "[{nope,f,1,[]}]"


def test_erlang_exception_checks_its_class() -> None:
    with pytest.raises(ValueError, match="'error', 'exit' or 'throw'"):
        ErlangException("oops", "x")
    assert str(ErlangException("throw", "x")) == "throw: x"


def test_base_exceptions_are_not_turned_into_erlang_errors(beam: MockBeam) -> None:
    class Stop(BaseException):
        pass

    def stop(args: list[Any]) -> None:
        raise Stop

    beam.register_function("t_stop", stop)
    with pytest.raises(Stop):
        erlang.call("t_stop")


def test_threads_see_the_mock(beam: MockBeam) -> None:
    beam.register_function("t_one", lambda args: 1)
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(erlang.t_one()))
    thread.start()
    thread.join()
    assert seen == [1]


# ------------------------------------------------------------------- names follow the mock


def registered(name: str) -> bool:
    return hasattr(erlang, name)


def test_names_follow_the_current_mock() -> None:
    outer, inner = MockBeam(), MockBeam()
    outer.register_function("t_outer", echo)
    inner.register_function("t_inner", echo)
    assert not registered("t_outer")
    with outer:
        assert registered("t_outer")
        with inner:
            assert not registered("t_outer")
            assert registered("t_inner")
            with pytest.raises(erlang.ErlangError, match="'t_outer' not registered"):
                erlang.call("t_outer", 1)
            # Registering on a mock that is not current changes nothing visible.
            outer.register_function("t_outer_2", echo)
            assert not registered("t_outer_2")
        assert registered("t_outer")
        assert registered("t_outer_2")
        assert not registered("t_inner")
    assert not registered("t_outer")


def test_functions_stay_registered_across_activations() -> None:
    beam = MockBeam()
    beam.register_function("t_kept", lambda args: "kept")
    with beam:
        assert erlang.t_kept() == "kept"
    with beam:
        assert erlang.t_kept() == "kept"


def test_state_functions_are_registered_and_can_be_replaced(beam: MockBeam) -> None:
    # Registered like any function (the module attribute erlang.state_incr hides the name).
    assert isinstance(erlang.__getattr__("state_incr"), erlang.Function)
    assert erlang.call("state_keys") == []
    beam.unregister_function("state_get")
    with pytest.raises(erlang.ErlangError, match="'state_get' not registered"):
        erlang.state_get("k")
    beam.register_function("state_get", lambda args: "mine")
    assert erlang.state_get("k") == "mine"


# ------------------------------------------------------------------- outside any BEAM


@pytest.mark.skipif(IN_BEAM, reason="plain Python only")
def test_outside_a_mock_calls_raise_not_in_beam() -> None:
    with pytest.raises(erlang.NotInBeamError) as info:
        erlang.call("t_anything", 1)
    assert str(info.value) == str(_errors.not_in_beam("erlang.call('t_anything')"))
    with pytest.raises(erlang.NotInBeamError, match=r"erlang\.call\('t_f'\)"):
        erlang.Function("t_f")()
    with pytest.raises(erlang.NotInBeamError, match=r"erlang\.call\('state_get'\)"):
        erlang.state_get("k")


@pytest.mark.skipif(IN_BEAM, reason="plain Python only")
def test_outside_a_mock_names_raise_not_in_beam_as_attribute_errors() -> None:
    with pytest.raises(erlang.NotInBeamError, match="has no attribute 't_nothing'") as info:
        _ = erlang.t_nothing
    assert isinstance(info.value, AttributeError)
    assert info.value.name == "t_nothing"
    assert "erlang.t_nothing needs the BEAM" in str(info.value)
    assert "MockBeam" in str(info.value)
    # Still an ordinary missing attribute to code that probes the module.
    assert not hasattr(erlang, "t_nothing")
    assert getattr(erlang, "t_nothing", None) is None
    with pytest.raises(ImportError, match="cannot import name 't_nothing'"):
        from erlang import t_nothing  # noqa: F401
    # Dunder names are plain missing attributes, BEAM or not.
    with pytest.raises(AttributeError) as dunder:
        _ = erlang.__wrapped__
    assert not isinstance(dunder.value, erlang.NotInBeamError)


def test_names_a_mock_does_not_have_raise_plain_attribute_errors(beam: MockBeam) -> None:
    with pytest.raises(AttributeError, match="has no attribute 't_nothing'") as info:
        _ = erlang.t_nothing
    assert not isinstance(info.value, erlang.NotInBeamError)
