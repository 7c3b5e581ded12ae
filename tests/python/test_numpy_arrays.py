"""numpy arrays to Erlang: read from their buffers, the same terms as ``ndarray.tolist()``.

The rule (docs/type-conversion.md) is that an array becomes what its ``tolist()`` would; arrays
of numbers and bools are read directly from their buffers, every other one goes through
``tolist()``. These properties hold the fast path to the rule for any dtype, shape and layout,
in both worlds: through a real Erlang function inside the BEAM, and byte for byte in the
external term format of the mocked BEAM.
"""

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import erlang
from erlang.testing import MockBeam

np = pytest.importorskip("numpy")
hnp = pytest.importorskip("hypothesis.extra.numpy")

# Read from the buffer, and some that keep tolist(): non-native byte order, strings.
READ = ["f8", "f4", "i8", "i4", "i2", "i1", "u8", "u4", "u2", "u1", "?"]
KEPT = [">f8", ">i4", "<U3", "S2"]


def layouts(array: Any) -> st.SearchStrategy[Any]:
    """The array as is, and views of it that are not C-contiguous (or not aligned)."""
    views = [
        st.just(array),
        st.just(array.T),
        st.just(np.asfortranarray(array)),
        st.just(array[::2] if array.ndim else array),
        st.just(array[..., ::-1] if array.ndim else array),
    ]
    if array.dtype.itemsize > 1 and array.size:
        raw = b"\0" + array.tobytes()
        unaligned = np.frombuffer(raw, dtype=array.dtype, offset=1).reshape(array.shape)
        views.append(st.just(unaligned))
    return st.one_of(views)


arrays = st.sampled_from(READ + KEPT).flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    ).flatmap(layouts)
)


def outcome(convert: Any, value: Any) -> object:
    """What converting ``value`` gives: its result (as ``repr``), or the error it raises (a
    string array may hold a lone surrogate, which no binary can: the same error as for its
    tolist())."""
    try:
        return repr(convert(value))
    except Exception as exc:  # The rule covers errors too: compared, not swallowed.
        return (type(exc), str(exc))


def erlang_ident(erlang_funcs: Any) -> Callable[[Any], Any]:
    """A call of the Erlang identity function ``ep_ident`` (registered on first use)."""
    if "ep_ident" not in erlang_funcs.names:
        erlang_funcs.register("ep_ident", lambda args: args[0])

    def ident(value: Any) -> Any:
        return erlang.call("ep_ident", value)

    return ident


@pytest.mark.embedded
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays)
def test_arrays_cross_as_their_tolist(erlang_funcs: Any, array: Any) -> None:
    """Through a real Erlang function (the NIF's conversion inside the BEAM) an array comes back
    as its tolist() does, or fails as it does."""
    ident = erlang_ident(erlang_funcs)
    assert outcome(ident, array) == outcome(ident, array.tolist())


@pytest.mark.embedded
@given(arrays)
def test_arrays_encode_as_their_tolist(array: Any) -> None:
    """Byte for byte the external term format of tolist()'s result (NaN and -0.0 included), or
    the same error."""
    assert outcome(erlang.term_to_binary, array) == outcome(erlang.term_to_binary, array.tolist())


@pytest.mark.embedded
def test_array_with_a_lone_surrogate_fails_as_its_tolist(erlang_funcs: Any) -> None:
    """The case hypothesis found: a str array holding a lone surrogate."""
    ident = erlang_ident(erlang_funcs)
    array = np.array(["\ud800"], dtype="<U3")
    with pytest.raises(UnicodeEncodeError):
        erlang.term_to_binary(array)
    with pytest.raises(UnicodeEncodeError):
        ident(array)
    for convert in (erlang.term_to_binary, ident):
        assert outcome(convert, array) == outcome(convert, ["\ud800"])


@pytest.mark.embedded
def test_examples() -> None:
    cases = [
        (np.arange(6, dtype="i8").reshape(2, 3), [[0, 1, 2], [3, 4, 5]]),
        (np.zeros((2, 0, 3)), [[], []]),
        (np.zeros((0, 3)), []),
        (np.array(7, dtype="u2"), 7),
        (np.array([2**64 - 1], dtype="u8"), [2**64 - 1]),
        (np.array([True, False]), [True, False]),
        (np.arange(4.0).reshape(2, 2).T, [[0.0, 2.0], [1.0, 3.0]]),
        (np.arange(10)[::3], [0, 3, 6, 9]),
        (np.array([0.5], dtype="f4"), [0.5]),
    ]
    for array, value in cases:
        assert erlang.binary_to_term(erlang.term_to_binary(array)) == value


@pytest.mark.embedded
def test_nan_and_infinities_are_atoms() -> None:
    array = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert erlang.binary_to_term(erlang.term_to_binary(array)) == [
        "nan",
        "infinity",
        "neg_infinity",
        1.0,
    ]


def test_each_dimension_is_a_level_of_nesting() -> None:
    with MockBeam(max_depth=3) as beam:
        assert str(beam.to_erlang(np.zeros((1, 1, 1), dtype="i8"))) == "[[[0]]]"
        with pytest.raises(ValueError, match="deeper than 3"):
            beam.to_erlang(np.zeros((1, 1, 1, 1), dtype="i8"))
        with pytest.raises(ValueError, match="deeper than 3"):
            beam.to_erlang([np.zeros((1, 1, 1), dtype="i8")])


def test_importing_erlang_does_not_import_numpy() -> None:
    code = "import sys, erlang; erlang.term_to_binary([1.5, 'x']); print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------- the array form

array_form_arrays = st.sampled_from([*READ, ">f8", ">i4"]).flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    ).flatmap(layouts)
)


def array_ident(args: list[Any]) -> Any:
    (array,) = args
    assert isinstance(array, np.ndarray)
    return erlang.py_array(array)


@pytest.mark.embedded
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array_form_arrays)
def test_array_form_round_trips(erlang_funcs: Any, array: Any) -> None:
    """``erlang.py_array(a)`` reaches Erlang as ``{py_array, Dtype, Shape, Data}``, which reaches
    Python as a read-only array equal to ``a`` in native byte order: the Erlang function's
    Python body receives an array and sends it back in the array form."""
    if "ep_array_ident" not in erlang_funcs.names:
        erlang_funcs.register("ep_array_ident", array_ident)
    back = erlang.call("ep_array_ident", erlang.py_array(array))
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype.newbyteorder("=")
    assert back.shape == array.shape
    assert back.tobytes() == np.ascontiguousarray(array, dtype=back.dtype).tobytes()
    assert not back.flags.writeable


@pytest.mark.embedded
def test_array_form_describes_the_array() -> None:
    wrapped = erlang.py_array(np.arange(6, dtype=">i4").reshape(2, 3).T)
    assert isinstance(wrapped, erlang.PyArray)
    assert (wrapped.dtype, wrapped.shape) == ("int32", (3, 2))
    assert repr(wrapped) == "PyArray(dtype='int32', shape=(3, 2))"
    assert repr(erlang.py_array([1.5])) == "PyArray(dtype='float64', shape=(1,))"
    assert erlang.py_array(True).shape == ()


@pytest.mark.embedded
@pytest.mark.parametrize("value", [np.array([1j]), np.array(["a"]), np.array([None])])
def test_array_form_refuses_dtypes_it_has_no_form_for(value: Any) -> None:
    with pytest.raises(TypeError, match="has no Erlang array form; supported: float64"):
        erlang.py_array(value)


def test_array_form_in_the_mocked_beam(beam: MockBeam) -> None:
    array = np.array([[1.5, -2.0]], dtype="<f8")
    term = beam.to_erlang(erlang.py_array(array))
    data = ",".join(str(b) for b in array.tobytes())
    assert str(term) == "{py_array,float64,[1,2],<<" + data + ">>}"
