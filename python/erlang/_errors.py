"""Exceptions defined in Python (the native ones live in ``erlang._native``)."""

__all__ = [
    "NotInBeamAttributeError",
    "NotInBeamError",
    "ProcessExitRefusedError",
    "not_in_beam",
    "not_in_beam_attribute",
]


class NotInBeamError(RuntimeError):
    """A call that needs the BEAM ran in plain Python, outside a mocked BEAM.

    Code that uses ``erlang`` runs unchanged inside the BEAM. To run it in plain Python (unit
    tests), activate the mocked BEAM: the ``beam`` pytest fixture, or
    ``with erlang.testing.MockBeam() as beam:``.
    """


class NotInBeamAttributeError(NotInBeamError, AttributeError):
    """``erlang.<name>`` outside any BEAM: a :class:`NotInBeamError` that is also an
    ``AttributeError``, so that ``hasattr``, ``getattr`` with a default and
    ``from erlang import name`` behave as for any missing attribute."""


class ProcessExitRefusedError(RuntimeError):
    """Python code inside the BEAM called something that would end the OS process, which is the
    whole Erlang node (``os._exit``, ``os.abort``, ``os.exec*``, a signal to its own process).

    The call is refused and logged. Return or raise instead; the application variable
    ``allow_process_exit`` lets such calls through.
    """


def not_in_beam(what: str) -> NotInBeamError:
    """The error for ``what`` (a call such as ``erlang.call``) made outside any BEAM."""
    return NotInBeamError(
        f"{what} needs the BEAM, and this Python is not running inside one. To test code that "
        "uses it in plain Python, run it under the mocked BEAM: the `beam` pytest fixture "
        "(plugin of the `erlang` package) or `with erlang.testing.MockBeam() as beam:` "
        "(see docs/python-api.md)."
    )


def not_in_beam_attribute(name: str) -> NotInBeamAttributeError:
    """The error for ``erlang.<name>`` when no BEAM (real or mocked) is there to register it."""
    error = NotInBeamAttributeError(
        f"module 'erlang' has no attribute {name!r}: {not_in_beam(f'erlang.{name}')}"
    )
    error.name = name
    return error
