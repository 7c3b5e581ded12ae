"""Type stubs for ``erlang._native`` (built from rust/core, rust/nif and rust/pyext)."""

from typing import Any, final

__all__ = ["IN_BEAM", "ErlangError", "Function", "Interrupted", "Pid", "Ref", "call"]

IN_BEAM: bool

@final
class Pid:
    """An Erlang process identifier; compares, hashes and round-trips exactly."""

    def to_bytes(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Ref:
    """An Erlang reference; compares, hashes and round-trips exactly."""

    def to_bytes(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class Interrupted(BaseException):
    """Raised in Python code that the BEAM stops (caller timed out or died)."""

class ErlangError(RuntimeError):
    """An Erlang function called from Python failed, or is not registered."""

    erlang_class: str
    reason: str
    stacktrace: str

@final
class Function:
    """A registered Erlang function, as ``erlang.<name>`` returns it."""

    def __init__(self, name: str) -> None: ...
    @property
    def name(self) -> str: ...
    def __call__(self, *args: Any) -> Any: ...

def call(*args: Any, **kwargs: Any) -> Any:
    """``call(name, *args)``: call the Erlang function registered as ``name``."""

def _is_registered(name: str) -> bool: ...
