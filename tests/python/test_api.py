"""The public names of ``erlang``: all exported, typed, and importable with no side effects."""

import subprocess
import sys
from pathlib import Path

import pytest

import erlang

IN_BEAM = "erlang._native" in sys.builtin_module_names


@pytest.mark.embedded
def test_every_public_name_is_exported() -> None:
    assert erlang.__all__ == sorted(erlang.__all__)
    for name in erlang.__all__:
        assert getattr(erlang, name) is not None, name
    assert {
        "ErlangError",
        "Function",
        "Interrupted",
        "NotInBeamError",
        "Pid",
        "Ref",
        "binary_to_term",
        "call",
        "term_to_binary",
    } <= set(erlang.__all__)


@pytest.mark.embedded
def test_the_package_is_typed() -> None:
    package = Path(erlang.__file__).parent
    assert (package / "py.typed").exists()


@pytest.mark.embedded
def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_function'"):
        _ = erlang.no_such_function


@pytest.mark.embedded
def test_call_checks_its_arguments() -> None:
    # The runtime refuses what the stub does (tests/python/typing_cases.py).
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'name'"):
        erlang.call()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="must be a string"):
        erlang.call(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        erlang.call("f", x=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="positional-only"):
        erlang.call(name="f")  # type: ignore[call-arg]


@pytest.mark.embedded
def test_function_and_erlang_error() -> None:
    f = erlang.Function("double")
    assert f.name == "double"
    assert repr(f) == "<erlang function 'double'>"
    assert issubclass(erlang.ErlangError, RuntimeError)


@pytest.mark.skipif(IN_BEAM, reason="imports in a fresh interpreter")
def test_import_has_no_side_effects() -> None:
    code = (
        "import sys; before = set(sys.modules); import erlang; "
        "print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr == ""
    imported = set(out.stdout.strip().strip("[]").replace("'", "").split(", "))
    # No handler, event loop, thread, test framework or mock is set up by importing.
    for heavy in ("logging", "asyncio", "threading", "pytest", "erlang.testing"):
        assert heavy not in imported
