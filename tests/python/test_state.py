"""Shared state from Python: ``erlang.state_*`` (docs/state.md).

Tests marked ``embedded`` run against the mocked BEAM here and against erlang_python's
``py_state`` inside the BEAM (py_embedded_SUITE), each with an empty store (the
``shared_state`` fixture of conftest.py); the others test the mock's own API (``beam.state``,
``MockBeam(state_max_keys=...)``).
"""

from __future__ import annotations

import gc
import re
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import erlang
from erlang.testing import MockBeam

# An empty store for every test: the mock's standalone (the tests below that make their own
# MockBeam nest it inside that one), py_state's inside the BEAM.
pytestmark = pytest.mark.usefixtures("shared_state")


def expect_erlang_error(reason: str) -> pytest.RaisesExc[erlang.ErlangError]:
    """``erlang.ErlangError`` of class ``error`` with this reason (Erlang text)."""
    return pytest.raises(erlang.ErlangError, match=f"^error: {re.escape(reason)}$")


# ------------------------------------------------------------------- both worlds


@pytest.mark.embedded
def test_an_empty_store() -> None:
    assert erlang.state_keys() == []
    assert erlang.state_get("missing") is None
    assert erlang.state_get("missing", 0) == 0


@pytest.mark.embedded
def test_set_get_delete() -> None:
    assert erlang.state_set("k", 1) is None
    assert erlang.state_get("k") == 1
    erlang.state_set("k", 2)
    assert erlang.state_get("k", 0) == 2
    assert erlang.state_delete("k") is None
    assert erlang.state_get("k") is None
    erlang.state_delete("k")
    assert erlang.state_keys() == []


@pytest.mark.embedded
def test_a_stored_none_reads_as_none() -> None:
    erlang.state_set("k", None)
    assert erlang.state_get("k", "default") is None
    assert erlang.state_keys() == ["k"]


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("value", "back"),
    [
        pytest.param((1, "a"), (1, "a"), id="tuple"),
        pytest.param({"debug": True, 1: [2]}, {"debug": True, 1: [2]}, id="dict"),
        pytest.param([], [], id="empty-list"),
        pytest.param(2**100, 2**100, id="bigint"),
        pytest.param(b"\xff", b"\xff", id="bytes"),
        pytest.param(b"k", "k", id="utf8-bytes"),
        pytest.param({3}, [3], id="set"),
        pytest.param(float("-inf"), "neg_infinity", id="neg-infinity"),
    ],
)
def test_values_go_through_the_conversion_rules(value: object, back: object) -> None:
    erlang.state_set("v", value)
    got = erlang.state_get("v")
    assert got == back
    assert type(got) is type(back)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def depth(value: Any) -> int:
    """How many lists are nested in ``value`` (without recursion: ``==`` on 1000 levels
    exceeds the recursion limit of Python 3.11)."""
    levels = 0
    while isinstance(value, list):
        levels += 1
        value = value[0] if value else None
    return levels


@pytest.mark.embedded
def test_values_nest_up_to_the_bound() -> None:
    # The bound applies to each argument, not to the list of them that Erlang receives.
    erlang.state_set("deep", nested(1000))
    assert depth(erlang.state_get("deep")) == 1000
    with pytest.raises(ValueError, match="deeper than 1000"):
        erlang.state_set("deeper", nested(1001))


@pytest.mark.embedded
def test_keys_are_erlang_terms() -> None:
    erlang.state_set("s", 1)
    erlang.state_set(7, 2)
    erlang.state_set((1, "t"), 3)
    assert sorted(erlang.state_keys(), key=repr) == sorted(["s", 7, (1, "t")], key=repr)
    # "k" and b"k" are the same binary; 1 and 1.0 are different terms.
    erlang.state_set(b"s", 10)
    assert erlang.state_get("s") == 10
    erlang.state_set(1, "int")
    erlang.state_set(1.0, "float")
    assert (erlang.state_get(1), erlang.state_get(1.0)) == ("int", "float")
    # float("inf") is the atom `infinity`, "infinity" a binary.
    erlang.state_set(float("inf"), "atom")
    assert erlang.state_get("infinity") is None
    assert erlang.state_get(float("inf")) == "atom"


@pytest.mark.embedded
def test_counters() -> None:
    assert erlang.state_incr("hits") == 1
    assert erlang.state_incr("hits", 10) == 11
    assert erlang.state_decr("hits") == 10
    assert erlang.state_decr("hits", n=4) == 6
    assert erlang.state_incr("hits", -6) == 0
    assert erlang.state_decr("down") == -1
    assert erlang.state_incr("big", 2**70) == 2**70
    erlang.state_set("set", 5)
    assert erlang.state_incr("set") == 6
    assert erlang.state_get("hits") == 0


@pytest.mark.embedded
@pytest.mark.parametrize("value", ["text", 1.5, [1], None, True])
def test_counting_on_a_non_integer_is_badarg(value: object) -> None:
    erlang.state_set("k", value)
    with expect_erlang_error("badarg") as info:
        erlang.state_incr("k")
    assert (info.value.erlang_class, info.value.reason) == ("error", "badarg")
    with expect_erlang_error("badarg"):
        erlang.state_decr("k", 2)
    assert erlang.state_get("k", "missing") == value


@pytest.mark.embedded
@pytest.mark.parametrize("n", [1.5, True, "1", None])
def test_the_amount_must_be_an_int(n: Any) -> None:
    with pytest.raises(TypeError, match="n must be an int"):
        erlang.state_incr("k", n)
    with pytest.raises(TypeError, match="n must be an int"):
        erlang.state_decr("k", n)
    # The Erlang function itself has no clause for it.
    with expect_erlang_error("function_clause"):
        erlang.call("state_incr", "k", n)
    assert erlang.state_keys() == []


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("state_get", ()),
        ("state_get", ("k", 1, 2)),
        ("state_set", ("k",)),
        ("state_delete", ()),
        ("state_keys", ("k",)),
        ("state_clear", (1,)),
        ("state_incr", ()),
        ("state_decr", ("k", 1, 2)),
    ],
)
def test_wrong_argument_lists_are_function_clause(name: str, args: tuple[object, ...]) -> None:
    with expect_erlang_error("function_clause"):
        erlang.call(name, *args)


@pytest.mark.embedded
def test_the_erlang_call_spelling() -> None:
    erlang.call("state_set", "k", [1])
    assert erlang.call("state_get", "k") == [1]
    assert erlang.call("state_get", "missing", "default") == "default"
    assert erlang.call("state_incr", "n", 3) == 3
    assert erlang.call("state_keys") in (["k", "n"], ["n", "k"])


@pytest.mark.embedded
def test_clear() -> None:
    for i in range(5):
        erlang.state_set(f"k{i}", i)
    assert len(erlang.state_keys()) == 5
    assert erlang.state_clear() is None
    assert erlang.state_keys() == []


@pytest.mark.embedded
def test_counters_are_atomic_under_threads() -> None:
    def work(_: int) -> list[int]:
        return [erlang.state_incr("counter") for _ in range(1000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = [v for values in pool.map(work, range(8)) for v in values]
    assert erlang.state_get("counter") == 8000
    # Every increment by 1 returned its own value.
    assert sorted(seen) == list(range(1, 8001))


@pytest.mark.embedded
def test_increments_and_decrements_under_threads() -> None:
    erlang.state_set("balance", 0)

    def work(i: int) -> None:
        for _ in range(500):
            if i % 2:
                erlang.state_incr("balance", 3)
            else:
                erlang.state_decr("balance", 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert erlang.state_get("balance") == 4 * 500 * 3 - 4 * 500


# ------------------------------------------------------------------- the mock's own API


def test_the_store_is_bounded() -> None:
    with MockBeam(state_max_keys=3) as beam:
        assert beam.state.max_keys == 3
        for key in ("a", "b", "c"):
            erlang.state_set(key, 0)
        with expect_erlang_error("{state_full,3}") as info:
            erlang.state_set("d", 0)
        assert info.value.reason == "{state_full,3}"
        with expect_erlang_error("{state_full,3}"):
            erlang.state_incr("d")
        with expect_erlang_error("{state_full,3}"):
            beam.state["d"] = 0
        # Existing keys can always be updated and counted on.
        erlang.state_set("a", 1)
        assert erlang.state_incr("b", 5) == 5
        erlang.state_delete("c")
        assert erlang.state_incr("d") == 1
        assert sorted(erlang.state_keys()) == ["a", "b", "d"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_the_bound_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="state_max_keys must be a positive int"):
        MockBeam(state_max_keys=bad)


def test_state_preloads_and_inspects_the_store(beam: MockBeam) -> None:
    beam.state["hits"] = 5
    beam.state[(1, 2)] = {"a": [1]}
    assert erlang.state_incr("hits") == 6
    assert erlang.state_get((1, 2)) == {"a": [1]}
    erlang.state_set(b"from_python", (1,))
    assert beam.state["hits"] == 6
    assert beam.state[b"hits"] == 6
    assert "from_python" in beam.state
    assert "nothing" not in beam.state
    assert dict(beam.state) == {"hits": 6, (1, 2): {"a": [1]}, "from_python": (1,)}
    assert len(beam.state) == 3
    del beam.state["hits"]
    assert erlang.state_get("hits") is None
    with pytest.raises(KeyError):
        del beam.state["hits"]
    with pytest.raises(KeyError):
        _ = beam.state["hits"]
    beam.state.clear()
    assert erlang.state_keys() == []
    assert repr(beam.state) == "<erlang.testing.MockState {}>"


def test_the_state_lasts_one_activation() -> None:
    beam = MockBeam()
    with beam:
        erlang.state_set("k", 1)
    assert repr(beam.state) == "<erlang.testing.MockState (inactive)>"
    with pytest.raises(erlang.NotInBeamError, match=r"MockBeam\.state needs an active mock"):
        len(beam.state)
    with pytest.raises(erlang.NotInBeamError):
        beam.state["k"] = 1
    with beam:
        assert erlang.state_keys() == []


def test_stored_objects_are_handles() -> None:
    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing)
    with MockBeam():
        erlang.state_set("thing", thing)
        del thing
        gc.collect()
        assert erlang.state_get("thing") is ref()
        assert ref() is not None
    gc.collect()
    assert ref() is None


def test_mocks_have_their_own_state(beam: MockBeam) -> None:
    erlang.state_set("outer", 1)
    with MockBeam() as inner:
        assert erlang.state_keys() == []
        erlang.state_set("inner", 2)
        assert dict(inner.state) == {"inner": 2}
    assert dict(beam.state) == {"outer": 1}
