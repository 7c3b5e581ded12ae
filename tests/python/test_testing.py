"""``erlang.testing``: the mocked BEAM, its ``Term`` view and the ``beam`` pytest fixture."""

import gc
import sys
import threading
import weakref

import pytest

import erlang
from erlang.testing import MockBeam, Term

IN_BEAM = "erlang._native" in sys.builtin_module_names


def test_fixture_gives_the_active_mock(beam: MockBeam) -> None:
    assert isinstance(beam, MockBeam)
    assert MockBeam.current() is beam


def test_to_erlang_shows_the_term(beam: MockBeam) -> None:
    term = beam.to_erlang({"a": (1, None)})
    assert isinstance(term, Term)
    assert str(term) == '#{<<"a">> => {1,none}}'
    assert repr(term) == '<erlang.testing.Term #{<<"a">> => {1,none}}>'
    assert term.etf == erlang.term_to_binary({"a": (1, None)})
    assert term == beam.to_erlang({"a": (1, None)})
    assert term != beam.to_erlang({"a": (1, False)})
    assert hash(term) == hash(beam.to_erlang({"a": (1, None)}))
    assert term != str(term)


def test_from_erlang_takes_terms_and_bytes(beam: MockBeam) -> None:
    term = beam.to_erlang([1, "x"])
    assert beam.from_erlang(term) == [1, "x"]
    assert beam.from_erlang(term.etf) == [1, "x"]
    assert beam.from_erlang(bytearray(term.etf)) == [1, "x"]
    # {ok, 'é'} as Erlang writes it: atoms arrive as str.
    assert beam.from_erlang(b"\x83h\x02d\x00\x02okd\x00\x01\xe9") == ("ok", "é")


def test_terms_print_in_erlang_syntax(beam: MockBeam) -> None:
    def show(value: object) -> str:
        return str(beam.to_erlang(value))

    assert show([1.0, 1e20, 0.1, 2**70]) == "[1.0,1.0e20,0.1,1180591620717411303424]"
    assert show('a"b') == '<<"a\\"b">>'
    assert show(b"\x00") == "<<0>>"
    assert show({"b": 1, "a": 2}) == '#{<<"a">> => 2,<<"b">> => 1}'
    pid = erlang.binary_to_term(
        b"\x83Xd\x00\rnonode@nohost\x00\x00\x00U\x00\x00\x00\x00\x00\x00\x00\x00"
    )
    assert show(pid) == "<85.0>@nonode@nohost"
    assert Term(b"\x83d\x00\x0bHello World").__str__() == "'Hello World'"


def test_unconvertible_values_raise_the_real_errors(beam: MockBeam) -> None:
    with pytest.raises(UnicodeEncodeError):
        beam.roundtrip(["\udc80"])
    with pytest.raises(ValueError, match="same Erlang term"):
        beam.roundtrip({"k": 1, b"k": 2})
    with pytest.raises(TypeError, match="improper Erlang list"):
        beam.from_erlang(b"\x83l\x00\x00\x00\x01a\x01a\x02")
    with pytest.raises(ValueError, match="invalid external term format"):
        beam.from_erlang(b"\x83l")


def test_handles_keep_objects_alive_until_exit() -> None:
    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing)
    with MockBeam() as beam:
        term = beam.to_erlang({"thing": thing})
        assert "@erlang_python_mock@handle" in str(term)
        del thing
        gc.collect()
        alive = ref()
        assert alive is not None
        assert beam.from_erlang(term) == {"thing": alive}
        del alive
    gc.collect()
    assert ref() is None


def test_handles_belong_to_their_mock() -> None:
    obj = object()
    with MockBeam() as first:
        term = first.to_erlang(obj)
    with MockBeam() as second:
        # Another mock does not know the handle: it is just a reference there.
        assert isinstance(second.from_erlang(term), erlang.Ref)
    # Plain binary_to_term never resolves handles.
    assert isinstance(erlang.binary_to_term(term.etf), erlang.Ref)


def test_max_depth_is_configurable() -> None:
    with MockBeam(max_depth=3) as beam:
        assert beam.roundtrip([[[1]]]) == [[[1]]]
        with pytest.raises(ValueError, match="deeper than 3"):
            beam.roundtrip([[[[1]]]])


def test_mocks_nest_and_are_reusable() -> None:
    outer = MockBeam()
    with outer:
        with MockBeam() as inner:
            assert MockBeam.current() is inner
        assert MockBeam.current() is outer
        with pytest.raises(RuntimeError, match="already active"):
            outer.__enter__()
    with outer:
        assert MockBeam.current() is outer
        assert outer.roundtrip((1,)) == (1,)


def test_mock_is_process_wide(beam: MockBeam) -> None:
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(MockBeam.current()))
    thread.start()
    thread.join()
    assert seen == [beam]


def test_exit_on_error_deactivates() -> None:
    with pytest.raises(KeyError), MockBeam():
        raise KeyError("boom")
    with pytest.raises(erlang.NotInBeamError):
        MockBeam.current()


# ------------------------------------------------------------------- outside any BEAM


def test_outside_a_mock_beam_calls_raise_not_in_beam() -> None:
    with pytest.raises(erlang.NotInBeamError, match=r"erlang\.testing\.MockBeam"):
        MockBeam.current()
    with pytest.raises(erlang.NotInBeamError, match=r"erlang\.testing"):
        erlang.call("anything")
    with pytest.raises(erlang.NotInBeamError):
        erlang.Function("anything")(1)


def test_an_inactive_mock_says_how_to_use_it() -> None:
    beam = MockBeam()
    for method in (beam.roundtrip, beam.to_erlang, beam.from_erlang):
        with pytest.raises(erlang.NotInBeamError, match="inside `with MockBeam"):
            method(b"\x83a\x01")


def test_not_in_beam_error_is_a_runtime_error() -> None:
    assert issubclass(erlang.NotInBeamError, RuntimeError)
    assert erlang.NotInBeamError.__module__ == "erlang._errors"


# ------------------------------------------------------------------- inside the BEAM


@pytest.mark.embedded
@pytest.mark.skipif(not IN_BEAM, reason="needs the real BEAM")
def test_the_mock_refuses_to_run_inside_the_beam() -> None:
    with pytest.raises(RuntimeError, match="inside the BEAM"), MockBeam():
        pass
    with pytest.raises(RuntimeError, match="inside the real BEAM"):
        MockBeam.current()


# ------------------------------------------------------------------- the plugin


def test_plugin_is_registered_by_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from erlang.testing import MockBeam

        def test_uses_beam(beam):
            assert isinstance(beam, MockBeam)
            assert beam.roundtrip({"a": {1, 2}}) == {"a": [1, 2]}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    disabled = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:erlang")
    disabled.assert_outcomes(errors=1)
