"""Type stubs for ``erlang._native`` (built from rust/core, rust/nif and rust/pyext)."""

from typing import final

__all__ = ["IN_BEAM", "Interrupted", "Pid", "Ref"]

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
