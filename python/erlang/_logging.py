"""Python ``logging`` records forwarded to Erlang's ``logger`` (docs/logging.md).

``setup_logging`` installs one ``ErlangHandler`` on the root logger; each record it handles
goes to ``erlang._native._log``, which drops it at once when its level is below the native
threshold and otherwise sends it, without waiting, to the ``py_logger`` process of the BEAM.
In plain Python (the pip package) ``_log`` has no receiver and does nothing.

Imported lazily by ``erlang.__getattr__``: importing ``logging`` costs more than the whole
``erlang`` package, and importing ``erlang`` has no side effects.
"""

from __future__ import annotations

import logging
import threading

from erlang._native import _log, _log_threshold, term_to_binary

__all__ = ["ErlangHandler", "setup_logging"]

# The attributes every LogRecord has; the others come from `extra=` (or a filter).
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
) | {"message", "asctime", "taskName"}

_SCALARS = (str, int, float, bool, type(None), bytes)

_setup_lock = threading.Lock()


def _value(value: object) -> object:
    """``value`` when the conversion rules turn it into a term, else its ``repr()``."""
    if isinstance(value, _SCALARS):
        return value
    try:
        term_to_binary(value)
    except Exception:  # any failure means the value has no Erlang term
        return repr(value)
    return value


def record_meta(record: logging.LogRecord) -> dict[str, object]:
    """The metadata sent with ``record``: where it was logged, by which thread (and asyncio
    task), the exception text of ``logger.exception``, and the ``extra`` fields under
    ``"extra"``."""
    meta: dict[str, object] = {
        "module": record.module,
        "lineno": record.lineno,
        "funcName": record.funcName,
        "pathname": record.pathname,
        "thread": record.thread,
        "threadName": record.threadName,
        "process": record.process,
    }
    task = getattr(record, "taskName", None)
    if task is not None:
        meta["taskName"] = _value(task)
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        meta["exc_text"] = record.exc_text
    elif record.exc_text:
        meta["exc_text"] = record.exc_text
    if record.stack_info:
        meta["stack_info"] = record.stack_info
    extra = {
        key: _value(value) for key, value in record.__dict__.items() if key not in _STANDARD_ATTRS
    }
    if extra:
        meta["extra"] = extra
    return meta


class ErlangHandler(logging.Handler):
    """A ``logging.Handler`` that sends each record to Erlang's ``logger`` (through
    ``py_logger``), fire-and-forget: ``emit`` never blocks and never waits for Erlang.

    Records below the native threshold are dropped before they are formatted. The level maps
    to ``debug`` (up to 10), ``info`` (20), ``warning`` (30), ``error`` (40) or ``critical``.
    """

    def __init__(self, level: int = logging.NOTSET, fmt: str | None = None) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(fmt if fmt is not None else "%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno < _log_threshold():
                return
            message = self.format(record)
            _log(record.levelno, record.name, message, record_meta(record))
        except RecursionError:
            raise
        except Exception:  # a handler never raises into the logging call (logging docs)
            self.handleError(record)


def setup_logging(level: int = logging.DEBUG, format: str | None = None) -> ErlangHandler:
    """Install one ``ErlangHandler`` on the root logger, replacing one a previous call
    installed, and set the root logger's level and the native threshold to ``level``.

    ``format`` is a ``logging.Formatter`` format string (default ``"%(message)s"``). Returns
    the handler.
    """
    handler = ErlangHandler(fmt=format)
    root = logging.getLogger()
    with _setup_lock:
        for old in [h for h in root.handlers if isinstance(h, ErlangHandler)]:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        root.setLevel(level)
        _log_threshold(level)
    return handler
