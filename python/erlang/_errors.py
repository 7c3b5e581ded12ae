"""Exceptions defined in Python (the native ones live in ``erlang._native``)."""

__all__ = ["NotInBeamError", "not_in_beam"]


class NotInBeamError(RuntimeError):
    """A call that needs the BEAM ran in plain Python, outside a mocked BEAM.

    Code that uses ``erlang`` runs unchanged inside the BEAM. To run it in plain Python (unit
    tests), activate the mocked BEAM: the ``beam`` pytest fixture, or
    ``with erlang.testing.MockBeam() as beam:``.
    """


def not_in_beam(what: str) -> NotInBeamError:
    """The error for ``what`` (a call such as ``erlang.call``) made outside any BEAM."""
    return NotInBeamError(
        f"{what} needs the BEAM, and this Python is not running inside one. To test code that "
        "uses it in plain Python, run it under the mocked BEAM: the `beam` pytest fixture "
        "(plugin of the `erlang` package) or `with erlang.testing.MockBeam() as beam:` "
        "(see docs/python-api.md)."
    )
