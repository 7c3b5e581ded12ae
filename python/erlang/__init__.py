"""Python side of erlang_python: Erlang values as Python objects.

Inside the BEAM, ``erlang._native`` is the NIF's built-in module; installed with pip, it is the
extension module built from ``rust/pyext``. Importing this package has no side effects.
"""

from erlang._native import Interrupted, Pid, Ref

__all__ = ["Interrupted", "Pid", "Ref"]
