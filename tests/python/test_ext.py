"""``erlang.term_to_binary`` / ``erlang.binary_to_term``, ``erlang.Pid`` and ``erlang.Ref``.

The expected bytes are Erlang's own: ``term_to_binary(T, [{minor_version, 2}])`` on OTP 25
(UTF-8 atoms, the default from OTP 26 on). Every test here runs in both worlds.
"""

import copy
import math
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import erlang

pytestmark = pytest.mark.embedded

# c:pid(0, 85, 0) on nonode@nohost: OTP 25's default encoding (ATOM_EXT node), then OTP 26's.
PID_OTP25 = b"\x83Xd\x00\rnonode@nohost\x00\x00\x00U\x00\x00\x00\x00\x00\x00\x00\x00"
PID = b"\x83Xw\rnonode@nohost\x00\x00\x00U\x00\x00\x00\x00\x00\x00\x00\x00"
# c:pid(0, 86, 0)
OTHER_PID = b"\x83Xd\x00\rnonode@nohost\x00\x00\x00V\x00\x00\x00\x00\x00\x00\x00\x00"
# make_ref(), both encodings.
REF_OTP25 = (
    b"\x83Z\x00\x03d\x00\rnonode@nohost\x00\x00\x00\x00\x00\x00\x17#\xf5\xa4\x00\x01\xa1\xcc^\xc1"
)
REF = b"\x83Z\x00\x03w\rnonode@nohost\x00\x00\x00\x00\x00\x00\x17#\xf5\xa4\x00\x01\xa1\xcc^\xc1"

KNOWN = [
    pytest.param(None, b"\x83w\x04none", id="None"),
    pytest.param(True, b"\x83w\x04true", id="True"),
    pytest.param(255, b"\x83a\xff", id="small-integer"),
    pytest.param(-1, b"\x83b\xff\xff\xff\xff", id="integer"),
    pytest.param(2**31, b"\x83n\x04\x00\x00\x00\x00\x80", id="small-big"),
    pytest.param(-(2**64), b"\x83n\t\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01", id="negative-big"),
    pytest.param(2**2040, b"\x83o\x00\x00\x01\x00\x00" + b"\x00" * 255 + b"\x01", id="large-big"),
    pytest.param(1.5, b"\x83F?\xf8\x00\x00\x00\x00\x00\x00", id="float"),
    pytest.param(float("-inf"), b"\x83w\x0cneg_infinity", id="-inf"),
    pytest.param("héllo", b"\x83m\x00\x00\x00\x06h\xc3\xa9llo", id="str"),
    pytest.param(b"\xff", b"\x83m\x00\x00\x00\x01\xff", id="bytes"),
    pytest.param([], b"\x83j", id="empty-list"),
    pytest.param([97, 98, 99], b"\x83k\x00\x03abc", id="string-ext"),
    pytest.param([1000, 2], b"\x83l\x00\x00\x00\x02b\x00\x00\x03\xe8a\x02j", id="list"),
    pytest.param((True, 1), b"\x83h\x02w\x04truea\x01", id="tuple"),
    pytest.param((0,) * 256, b"\x83i\x00\x00\x01\x00" + b"a\x00" * 256, id="large-tuple"),
    pytest.param({"a": 1}, b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x01aa\x01", id="map"),
    # #{<<"b">> => 1, <<"a">> => 2, 3 => none, 1.5 => none, {1} => none, [1] => none,
    #   true => none}: Erlang's key order, whatever the dict's order.
    pytest.param(
        {"b": 1, "a": 2, 3: None, 1.5: None, (1,): None, frozenset([1]): None, True: None},
        b"\x83t\x00\x00\x00\x07a\x03w\x04noneF?\xf8\x00\x00\x00\x00\x00\x00w\x04nonew\x04true"
        b"w\x04noneh\x01a\x01w\x04nonek\x00\x01\x01w\x04nonem\x00\x00\x00\x01aa\x02"
        b"m\x00\x00\x00\x01ba\x01",
        id="map-key-order",
    ),
]


@pytest.mark.parametrize(("value", "etf"), KNOWN)
def test_term_to_binary_writes_what_erlang_writes(value: object, etf: bytes) -> None:
    assert erlang.term_to_binary(value) == etf


def test_binary_to_term_accepts_bytes_and_bytearray() -> None:
    assert erlang.binary_to_term(b"\x83a\x01") == 1
    assert erlang.binary_to_term(bytearray(b"\x83a\x01")) == 1
    with pytest.raises(TypeError):
        erlang.binary_to_term("\x83a\x01")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        erlang.binary_to_term(memoryview(b"\x83a\x01"))  # type: ignore[arg-type]


def test_term_to_binary_refuses_objects() -> None:
    with pytest.raises(TypeError, match="cannot encode 'object' in the external term format"):
        erlang.term_to_binary(object())
    with pytest.raises(TypeError, match="cannot encode 'function'"):
        erlang.term_to_binary([lambda: None])


# ------------------------------------------------------------------------------ bad bytes

GOOD = [etf for _, etf in (p.values for p in KNOWN)] + [PID_OTP25, PID, REF_OTP25, REF]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("etf", "match"),
    [
        pytest.param(b"", "byte 0: empty input", id="empty"),
        pytest.param(b"\x82a\x01", "byte 0: missing version byte", id="version"),
        pytest.param(b"\x83", "byte 1: truncated", id="version-only"),
        pytest.param(b"\x83a\x01\x00", "byte 3: trailing bytes", id="trailing"),
        pytest.param(b"\x83l\xff\xff\xff\xffj", "truncated", id="huge-list"),
        pytest.param(
            b"\x83P\x00\x00\x00\x01x\x9c", "compressed terms are not supported", id="zlib"
        ),
        pytest.param(b"\x83y\x01", "node-local terms are not supported", id="local"),
        pytest.param(b"\x83\x01", "unknown tag", id="unknown-tag"),
        pytest.param(b"\x83w\x02\xff\xfe", "atom is not valid UTF-8", id="bad-atom"),
        pytest.param(b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", "not finite", id="nan"),
        pytest.param(
            b"\x83t\x00\x00\x00\x02a\x01a\x01a\x01a\x02", "map with duplicate keys", id="dup-key"
        ),
        pytest.param(
            b"\x83t\x00\x00\x00\x02d\x00\x01aa\x01w\x01aa\x02",
            "map with duplicate keys",
            id="dup-key-two-encodings",
        ),
    ],
)
def test_malformed_bytes_are_value_errors(etf: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        erlang.binary_to_term(etf)


@pytest.mark.parametrize("etf", GOOD)
def test_every_truncation_is_a_value_error(etf: bytes) -> None:
    for cut in range(len(etf)):
        with pytest.raises(ValueError, match="invalid external term format"):
            erlang.binary_to_term(etf[:cut])


@given(st.binary(max_size=64))
@example(b"\x83l\x00\x00\x00\x01")
def test_garbage_never_crashes(data: bytes) -> None:
    for candidate in (data, b"\x83" + data):
        try:
            erlang.binary_to_term(candidate)
        except (ValueError, TypeError):
            pass


# ---------------------------------------------------------------------------------- Pid, Ref


def test_pid_identity() -> None:
    pid = erlang.binary_to_term(PID_OTP25)
    assert isinstance(pid, erlang.Pid)
    assert pid == erlang.binary_to_term(PID)
    assert hash(pid) == hash(erlang.binary_to_term(PID))
    assert pid != erlang.binary_to_term(OTHER_PID)
    assert pid.to_bytes() == PID
    assert erlang.term_to_binary(pid) == PID
    assert erlang.term_to_binary({"p": pid}) == b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x01p" + PID[1:]
    assert {pid: 1}[erlang.binary_to_term(PID)] == 1
    assert repr(pid) == "erlang.Pid(<85.0>@nonode@nohost)"


def test_ref_identity() -> None:
    ref = erlang.binary_to_term(REF_OTP25)
    assert isinstance(ref, erlang.Ref)
    assert ref == erlang.binary_to_term(REF)
    assert hash(ref) == hash(erlang.binary_to_term(REF))
    assert ref.to_bytes() == REF
    assert erlang.term_to_binary((ref,)) == b"\x83h\x01" + REF[1:]
    assert repr(ref) == "erlang.Ref(#Ref<2714525377.4121165825.5923>@nonode@nohost)"
    assert ref != erlang.binary_to_term(PID)


IDENTITIES = [
    pytest.param(PID_OTP25, id="pid-otp25"),
    pytest.param(PID, id="pid"),
    pytest.param(REF_OTP25, id="ref-otp25"),
    pytest.param(REF, id="ref"),
]


@pytest.mark.parametrize("etf", IDENTITIES)
def test_pid_and_ref_pickle(etf: bytes) -> None:
    value = erlang.binary_to_term(etf)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(value, protocol))
        assert type(back) is type(value)
        assert back == value
        assert hash(back) == hash(value)
        assert erlang.term_to_binary(back) == erlang.term_to_binary(value)
    nested = {"k": [value, (value,)], value: {value}}
    assert pickle.loads(pickle.dumps(nested)) == nested


@pytest.mark.parametrize("etf", IDENTITIES)
def test_pid_and_ref_copy(etf: bytes) -> None:
    value = erlang.binary_to_term(etf)
    assert copy.copy(value) == value
    assert copy.deepcopy(value) == value
    nested = {"k": [value, (value,)], value: 1}
    assert copy.deepcopy(nested) == nested


def test_pickles_name_the_public_classes_and_their_rebuilders() -> None:
    for cls, etf, rebuild in (
        (erlang.Pid, PID, "_pid_from_bytes"),
        (erlang.Ref, REF, "_ref_from_bytes"),
    ):
        assert (cls.__module__, cls.__qualname__) == ("erlang", cls.__name__)
        assert getattr(erlang, cls.__qualname__) is cls
        data = pickle.dumps(erlang.binary_to_term(etf))
        assert b"erlang._native" in data
        assert rebuild.encode() in data


def test_unpickling_other_bytes_is_a_value_error() -> None:
    rebuild_pid = erlang.binary_to_term(PID).__reduce__()[0]
    rebuild_ref = erlang.binary_to_term(REF).__reduce__()[0]
    for rebuild, other in ((rebuild_pid, REF), (rebuild_ref, PID)):
        for bad in (b"", b"\x83", b"garbage", other, other[:-1], other + b"\x00"):
            with pytest.raises(ValueError, match="invalid external term format"):
                rebuild(bad)
        with pytest.raises(TypeError):
            rebuild("text")
    # A pickle whose bytes were tampered with.
    data = pickle.dumps(erlang.binary_to_term(PID))
    with pytest.raises(ValueError, match="expected a pid"):
        pickle.loads(data.replace(PID, b"\x83\x00" + PID[2:]))


def test_pid_and_ref_are_not_made_or_subclassed_in_python() -> None:
    for cls in (erlang.Pid, erlang.Ref):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            type("Sub", (cls,), {})


def test_interrupted_is_not_an_exception() -> None:
    assert issubclass(erlang.Interrupted, BaseException)
    assert not issubclass(erlang.Interrupted, Exception)


# ------------------------------------------------------------------------- round trips

atom_free_text = st.text(st.characters(exclude_categories=["Cs"]))
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**3000), max_value=2**3000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | atom_free_text
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        | st.dictionaries(atom_free_text | st.integers(), children)
    ),
    max_leaves=40,
)


def expected(value: Any) -> Any:
    """What comes back from Erlang: bytes that are UTF-8 arrive as str."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [expected(v) for v in value]
    if isinstance(value, tuple):
        return tuple(expected(v) for v in value)
    if isinstance(value, dict):
        return {expected(k): expected(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(
    max_examples=max(200, settings.default.max_examples),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values)
def test_values_round_trip_through_an_erlang_function(erlang_funcs: Any, value: Any) -> None:
    """Arbitrary values through a real Erlang function and back (the NIF's conversions inside
    the BEAM, the mocked BEAM's in plain Python) come back as the conversion table says."""
    if "ep_ident" not in erlang_funcs.names:
        erlang_funcs.register("ep_ident", lambda args: args[0])
    assert same(erlang.call("ep_ident", value), expected(value))


@given(values)
def test_values_round_trip(value: Any) -> None:
    etf = erlang.term_to_binary(value)
    back = erlang.binary_to_term(etf)
    assert same(back, expected(value))
    # One encoding per term: encoding what came back gives the same bytes.
    assert erlang.term_to_binary(back) == etf


@given(values)
def test_truncated_encodings_are_value_errors(value: Any) -> None:
    etf = erlang.term_to_binary(value)
    with pytest.raises(ValueError, match="invalid external term format"):
        erlang.binary_to_term(etf[: len(etf) // 2])
