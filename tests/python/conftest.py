"""Shared test configuration, for the standalone run and the run inside the BEAM.

Inside the BEAM (tests/erlang/py_embedded_SUITE.erl) ``erlang._native`` is a built-in module,
and hypothesis keeps no example database (the working directory is Common Test's log dir).
"""

import sys

from hypothesis import settings

pytest_plugins = ["pytester"]

IN_BEAM = "erlang._native" in sys.builtin_module_names

if IN_BEAM:
    settings.register_profile("erlang_python", deadline=None, database=None)
else:
    settings.register_profile("erlang_python", deadline=None)
settings.load_profile("erlang_python")
