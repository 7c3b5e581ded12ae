"""pytest plugin of the ``erlang`` package (entry point ``pytest11``): the ``beam`` fixture.

Loaded by pytest in every project whose environment has ``erlang`` installed; it only defines
a fixture. Disable it with ``-p no:erlang``.
"""

from collections.abc import Iterator

import pytest

from erlang.testing import MockBeam

__all__ = ["beam"]


@pytest.fixture
def beam() -> Iterator[MockBeam]:
    """A mocked BEAM, active for the duration of the test (see ``erlang.testing.MockBeam``)."""
    with MockBeam() as mock:
        yield mock
