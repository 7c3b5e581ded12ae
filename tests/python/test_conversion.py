"""The conversion table of docs/type-conversion.md, case by case.

Erlang to Python: external term format bytes written by Erlang/OTP 25's ``term_to_binary/1``
(its default encoding: Latin-1 atoms as ATOM_EXT), decoded by ``erlang.binary_to_term``; these
run in both worlds. Python to Erlang: the term the mocked BEAM shows, in Erlang syntax.
"""

import collections
import decimal
import enum
import math
import re
from typing import Any

import pytest

import erlang
from erlang.testing import MockBeam

# ------------------------------------------------------------------------- Erlang to Python

PID_85 = b"\x83Xd\x00\rnonode@nohost\x00\x00\x00U\x00\x00\x00\x00\x00\x00\x00\x00"

ERLANG_TO_PYTHON = [
    pytest.param(b"\x83d\x00\x04true", True, id="true"),
    pytest.param(b"\x83d\x00\x05false", False, id="false"),
    pytest.param(b"\x83d\x00\x03nil", None, id="nil"),
    pytest.param(b"\x83d\x00\x04none", None, id="none"),
    pytest.param(b"\x83d\x00\tundefined", None, id="undefined"),
    pytest.param(b"\x83d\x00\x05hello", "hello", id="atom"),
    pytest.param(b"\x83d\x00\x01\xe9", "é", id="latin1-atom"),
    pytest.param(b"\x83w\x06\xe6\x97\xa5\xe6\x9c\xac", "日本", id="unicode-atom"),
    pytest.param(b"\x83d\x00\x0bHello World", "Hello World", id="quoted-atom"),
    pytest.param(b"\x83a*", 42, id="small-integer"),
    pytest.param(b"\x83b\xff\xff\xff\xf9", -7, id="integer"),
    pytest.param(b"\x83n\t\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 2**64, id="bignum"),
    pytest.param(
        b"\x83n\r\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10",
        -(2**100),
        id="negative-bignum",
    ),
    pytest.param(b"\x83F?\xf8\x00\x00\x00\x00\x00\x00", 1.5, id="float"),
    pytest.param(b"\x83F\x80\x00\x00\x00\x00\x00\x00\x00", -0.0, id="negative-zero"),
    pytest.param(b"\x83m\x00\x00\x00\x06h\xc3\xa9llo", "héllo", id="utf8-binary"),
    pytest.param(b"\x83m\x00\x00\x00\x00", "", id="empty-binary"),
    pytest.param(b"\x83m\x00\x00\x00\x02\xff\x00", b"\xff\x00", id="non-utf8-binary"),
    pytest.param(b"\x83j", [], id="nil-list"),
    pytest.param(
        b"\x83l\x00\x00\x00\x03a\x01m\x00\x00\x00\x01ad\x00\x01bj", [1, "a", "b"], id="list"
    ),
    pytest.param(b"\x83k\x00\x03abc", [97, 98, 99], id="charlist"),
    pytest.param(b"\x83h\x00", (), id="empty-tuple"),
    pytest.param(b"\x83h\x02d\x00\x02oka\x01", ("ok", 1), id="tuple"),
    pytest.param(b"\x83t\x00\x00\x00\x00", {}, id="empty-map"),
    pytest.param(
        b"\x83t\x00\x00\x00\x02d\x00\x01aa\x01m\x00\x00\x00\x01bk\x00\x01\x02",
        {"a": 1, "b": [2]},
        id="map",
    ),
    pytest.param(b"\x83t\x00\x00\x00\x01h\x02a\x01a\x02d\x00\x01x", {(1, 2): "x"}, id="tuple-key"),
    pytest.param(
        b"\x83l\x00\x00\x00\x03F\x80\x00\x00\x00\x00\x00\x00\x00"
        b"n\t\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01m\x00\x00\x00\x01\xffj",
        [-0.0, 2**64, b"\xff"],
        id="list-of-negative-zero-bignum-bytes",
    ),
    pytest.param(
        b"\x83t\x00\x00\x00\x02a\x01d\x00\x01xF?\xf8\x00\x00\x00\x00\x00\x00h\x00",
        {1: "x", 1.5: ()},
        id="map-with-number-keys",
    ),
]


def same(a: Any, b: Any) -> bool:
    """Equal, with equal types all the way down (True is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.embedded
@pytest.mark.parametrize(("etf", "value"), ERLANG_TO_PYTHON)
def test_erlang_to_python(etf: bytes, value: object) -> None:
    assert same(erlang.binary_to_term(etf), value)


@pytest.mark.embedded
def test_pid_to_python() -> None:
    pid = erlang.binary_to_term(PID_85)
    assert isinstance(pid, erlang.Pid)
    assert repr(pid) == "erlang.Pid(<85.0>@nonode@nohost)"


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("etf", "match"),
    [
        pytest.param(b"\x83M\x00\x00\x00\x01\x03 ", "bitstring", id="bitstring"),
        pytest.param(
            b"\x83l\x00\x00\x00\x01a\x01a\x02", "improper Erlang list", id="improper-list"
        ),
        pytest.param(b"\x83qd\x00\x05listsd\x00\x03mapa\x02", "fun", id="fun"),
        pytest.param(
            b"\x83Yd\x00\rnonode@nohost\x00\x00\x00\x00\x00\x00\x00\x00", "port", id="port"
        ),
        pytest.param(
            b"\x83h\x02a\x01l\x00\x00\x00\x01a\x01a\x02",
            "improper Erlang list",
            id="nested-improper",
        ),
    ],
)
def test_erlang_terms_with_no_python_equivalent(etf: bytes, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        erlang.binary_to_term(etf)


@pytest.mark.embedded
@pytest.mark.parametrize(
    "etf",
    [
        pytest.param(
            b"\x83t\x00\x00\x00\x02d\x00\x01aa\x01m\x00\x00\x00\x01aa\x02",
            id="atom-and-binary",
        ),
        pytest.param(
            b"\x83t\x00\x00\x00\x02a\x01d\x00\x01xF?\xf0\x00\x00\x00\x00\x00\x00d\x00\x01y",
            id="int-and-float",
        ),
        pytest.param(
            b"\x83t\x00\x00\x00\x02a\x01d\x00\x01xd\x00\x04trued\x00\x01y",
            id="int-and-true",
        ),
    ],
)
def test_erlang_map_keys_that_collide_in_python(etf: bytes) -> None:
    """Keys distinct in Erlang that become one Python key raise, instead of losing an entry."""
    with pytest.raises(ValueError, match="same Python dict key"):
        erlang.binary_to_term(etf)


def nested_lists(depth: int) -> bytes:
    """``[[[...[]...]]]`` with ``depth`` lists, in the external term format."""
    return b"\x83" + b"l\x00\x00\x00\x01" * (depth - 1) + b"j" * depth


@pytest.mark.embedded
def test_erlang_nesting_is_bounded() -> None:
    assert erlang.binary_to_term(nested_lists(1000)) is not None
    with pytest.raises(ValueError, match="deeper than 1000"):
        erlang.binary_to_term(nested_lists(1001))
    with pytest.raises(ValueError, match="deeper than 1000"):
        erlang.binary_to_term(nested_lists(100_000))


# ------------------------------------------------------------------------- Python to Erlang


class Color(enum.IntEnum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


class SneakyDict(dict[str, int]):
    """Conversion reads the C-level storage: overridden accessors are never called."""

    def items(self) -> Any:
        raise AssertionError("items() called")

    def __iter__(self) -> Any:
        raise AssertionError("__iter__ called")


class SneakyList(list[int]):
    def __iter__(self) -> Any:
        raise AssertionError("__iter__ called")


class LoudInt(int):
    """An int subclass whose conversion hooks fail: conversion reads the value itself."""

    def __index__(self) -> int:
        raise AssertionError("__index__ called")

    def __int__(self) -> int:
        raise AssertionError("__int__ called")


class LoudFloat(float):
    def __float__(self) -> float:
        raise AssertionError("__float__ called")


class LoudStr(str):
    def __str__(self) -> str:
        raise AssertionError("__str__ called")


class LoudTuple(tuple[int, ...]):
    def __iter__(self) -> Any:
        raise AssertionError("__iter__ called")


PYTHON_TO_ERLANG = [
    pytest.param(None, "none", id="None"),
    pytest.param(True, "true", id="True"),
    pytest.param(False, "false", id="False"),
    pytest.param(42, "42", id="int"),
    pytest.param(-(2**64), "-18446744073709551616", id="big-int"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param(float("nan"), "nan", id="nan"),
    pytest.param(float("inf"), "infinity", id="inf"),
    pytest.param(float("-inf"), "neg_infinity", id="-inf"),
    pytest.param("héllo", '<<"héllo"/utf8>>', id="str"),
    pytest.param("", "<<>>", id="empty-str"),
    pytest.param(b"\x00\xff", "<<0,255>>", id="bytes"),
    pytest.param(bytearray(b"ab"), '<<"ab">>', id="bytearray"),
    pytest.param([1, "a", [None]], '[1,<<"a">>,[none]]', id="list"),
    pytest.param((1, (2,)), "{1,{2}}", id="tuple"),
    pytest.param((), "{}", id="empty-tuple"),
    pytest.param({"a": 1, 2: [3]}, '#{2 => [3],<<"a">> => 1}', id="dict"),
    pytest.param({3}, "[3]", id="set"),
    pytest.param(frozenset(), "[]", id="frozenset"),
    pytest.param(Color.RED, "1", id="IntEnum"),
    pytest.param(Point(1, 2), "{1,2}", id="namedtuple"),
    pytest.param(SneakyDict(a=1), '#{<<"a">> => 1}', id="dict-subclass"),
    pytest.param(SneakyList([1, 2]), "[1,2]", id="list-subclass"),
    # Elements of containers: exact ints and floats take a fast path, everything else
    # (subclasses, bool, ints beyond 64 bits) the general one, with the same terms.
    pytest.param(
        [True, False, 1, -1, 0, 2**63 - 1, -(2**63)],
        "[true,false,1,-1,0,9223372036854775807,-9223372036854775808]",
        id="list-of-ints-and-bools",
    ),
    pytest.param(
        [2**63, -(2**63) - 1, 2**64, -(2**200)],
        "[9223372036854775808,-9223372036854775809,18446744073709551616,"
        "-1606938044258990275541962092341162602522202993782792835301376]",
        id="list-of-big-ints",
    ),
    pytest.param(
        (1.5, -0.0, float("nan"), float("inf"), float("-inf")),
        "{1.5,-0.0,nan,infinity,neg_infinity}",
        id="tuple-of-floats",
    ),
    pytest.param(
        [LoudInt(7), LoudInt(2**70), LoudFloat(2.5), LoudStr("s"), Color.RED],
        '[7,1180591620717411303424,2.5,<<"s">>,1]',
        id="list-of-scalar-subclasses",
    ),
    pytest.param(LoudTuple((1, 2)), "{1,2}", id="tuple-subclass"),
    pytest.param({LoudInt(1): LoudFloat(0.5)}, "#{1 => 0.5}", id="dict-of-subclasses"),
]


@pytest.mark.parametrize(("value", "erlang_syntax"), PYTHON_TO_ERLANG)
def test_python_to_erlang(beam: MockBeam, value: object, erlang_syntax: str) -> None:
    assert str(beam.to_erlang(value)) == erlang_syntax


def test_numpy_values_become_numbers_and_lists(beam: MockBeam) -> None:
    np = pytest.importorskip("numpy")
    assert str(beam.to_erlang(np.int64(5))) == "5"
    assert str(beam.to_erlang(np.float32(1.5))) == "1.5"
    assert str(beam.to_erlang(np.bool_(True))) == "true"
    assert str(beam.to_erlang(np.array([[1, 2], [3, 4]]))) == "[[1,2],[3,4]]"


HANDLE = re.compile(r"#Ref<[0-9.]+>@erlang_python_mock@handle")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param(decimal.Decimal("1.5"), id="Decimal"),
        pytest.param(1 + 2j, id="complex"),
        pytest.param(range(3), id="range"),
        pytest.param(len, id="builtin-function"),
        pytest.param(math, id="module"),
        pytest.param(Color, id="class"),
        pytest.param(iter([1]), id="iterator"),
    ],
)
def test_other_objects_become_handles(beam: MockBeam, value: object) -> None:
    assert HANDLE.fullmatch(str(beam.to_erlang(value)))
    assert beam.roundtrip(value) is value
    assert beam.roundtrip({"k": [value]})["k"][0] is value


def cyclic_list() -> list[object]:
    items: list[object] = []
    items.append(items)
    return items


def cyclic_dict() -> dict[str, object]:
    mapping: dict[str, object] = {}
    mapping["self"] = mapping
    return mapping


class GrowsItsDict:
    """Claims to be a numpy value, so that converting it runs its ``tolist``, which adds a key
    to the dict being converted."""

    __module__ = "numpy"

    def __init__(self, owner: dict[str, object]) -> None:
        self.owner = owner

    def tolist(self) -> int:
        self.owner[f"added{len(self.owner)}"] = 1
        return 0


def growing_dict() -> dict[str, object]:
    mapping: dict[str, object] = {f"k{i}": i for i in range(5)}
    mapping["grows"] = GrowsItsDict(mapping)
    mapping["after"] = 2
    return mapping


def nested_python(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nesting_depth(value: object) -> int:
    """The depth of a value shaped like ``nested_python(n)``, found by walking down one level at
    a time. Python's ``==`` cannot check such a value on 3.11: comparing lists recurses in C once
    per level, and before 3.12 that recursion counted against ``sys.getrecursionlimit()`` (1000,
    shared with the Python frames already on the stack), so ``==`` raises RecursionError there.
    3.12 gave C recursion a limit of its own, 1500, and 3.13 raised it to 10000 (What's New in
    Python 3.12, "sys"; CPython gh-107263). The conversion (Rust) is bounded by max_depth only."""
    depth = 1
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
        depth += 1
    assert value == [], f"level {depth} is neither [] nor a list of one element"
    return depth


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        pytest.param("\ud800", UnicodeEncodeError, "surrogate", id="lone-surrogate"),
        pytest.param({"a": 1, b"a": 2}, ValueError, "same Erlang term", id="duplicate-keys"),
        pytest.param({(1, "x"): 1, (1, b"x"): 2}, ValueError, "same Erlang term", id="dup-nested"),
        pytest.param(
            {**{f"k{i}": i for i in range(60)}, b"k30": 0, **{f"m{i}": i for i in range(60)}},
            ValueError,
            "same Erlang term",
            id="duplicate-keys-in-big-map",
        ),
        pytest.param(
            {**{f"k{i}": float(i) for i in range(60)}, "bad": "\ud800", "last": 1},
            UnicodeEncodeError,
            "surrogate",
            id="bad-value-halfway-through-big-map",
        ),
        pytest.param(
            {**{f"k{i}": i for i in range(20)}, "\ud800": 1, "last": 1},
            UnicodeEncodeError,
            "surrogate",
            id="bad-key-halfway-through-map",
        ),
        pytest.param(
            ["s"] * 50 + ["\ud800"] + ["t"] * 50,
            UnicodeEncodeError,
            "surrogate",
            id="bad-str-in-list",
        ),
        pytest.param(
            ("s", 1, 2.5, "\ud800"), UnicodeEncodeError, "surrogate", id="bad-str-in-tuple"
        ),
        pytest.param(
            growing_dict(), RuntimeError, "changed size", id="dict-changed-while-converted"
        ),
        pytest.param(cyclic_list(), ValueError, "deeper than 1000", id="cyclic-list"),
        pytest.param(cyclic_dict(), ValueError, "deeper than 1000", id="cyclic-dict"),
        pytest.param(nested_python(1001), ValueError, "deeper than 1000", id="deep"),
    ],
)
def test_python_values_that_fail(
    beam: MockBeam, value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        beam.to_erlang(value)
    with pytest.raises(error, match=match):
        erlang.term_to_binary(value)


class Text(str):
    pass


class Number(int):
    pass


def test_big_containers_of_mixed_elements(beam: MockBeam) -> None:
    """Exact str/int/float elements are read in place, subclasses and other objects the usual
    way: each converts as it would alone, in lists, tuples and maps of any size."""
    mixed: list[object] = ["s", 1, 2.5, Text("t"), Number(3), True, None, 2**70, b"b", (1, "x")]
    for n in (1, 40, 1000):
        items = mixed * n
        alone = [beam.roundtrip(x) for x in items]
        assert beam.roundtrip(items) == alone
        assert beam.roundtrip(tuple(items)) == tuple(alone)
        mapping = {f"k{i}": x for i, x in enumerate(items)} | {Text("sub"): 1, 7: "seven"}
        assert beam.roundtrip(mapping) == {
            beam.roundtrip(k): beam.roundtrip(v) for k, v in mapping.items()
        }


def test_nesting_bound_is_inclusive(beam: MockBeam) -> None:
    assert nesting_depth(beam.roundtrip(nested_python(1000))) == 1000


# ------------------------------------------------------------ round trips that change the value

ROUND_TRIPS = [
    pytest.param((1, "a"), (1, "a"), id="tuple-stays-tuple"),
    pytest.param({"a": {"b": 1}}, {"a": {"b": 1}}, id="str-keys-stay-str"),
    pytest.param({2, 1}, [1, 2], id="set-becomes-list"),
    pytest.param(bytearray(b"ab"), "ab", id="bytearray-becomes-str"),
    pytest.param(b"abc", "abc", id="utf8-bytes-become-str"),
    pytest.param(b"\xff", b"\xff", id="other-bytes-stay-bytes"),
    pytest.param(float("nan"), "nan", id="nan-becomes-str"),
    pytest.param(float("inf"), "infinity", id="inf-becomes-str"),
    pytest.param([97, 98], [97, 98], id="charlist-stays-list"),
    pytest.param(2**200, 2**200, id="bignum"),
    pytest.param(None, None, id="None"),
]


@pytest.mark.parametrize(("value", "back"), ROUND_TRIPS)
def test_round_trips(beam: MockBeam, value: object, back: object) -> None:
    got = beam.roundtrip(value)
    if isinstance(value, set):
        got = sorted(got)
    assert same(got, back)
