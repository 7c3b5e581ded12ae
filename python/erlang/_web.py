"""What the ASGI and WSGI runners (``erlang._asgi``, ``erlang._wsgi``) share."""

from __future__ import annotations

import gc
import importlib
import re
import sys
from typing import Any

# A response header's name is an HTTP token (RFC 9110, 5.1 and 5.6.2); its value holds no
# control character but HTAB (RFC 9110, 5.5: CR, LF and NUL would let an app that echoes its
# input into a header split the response; uvicorn and gunicorn refuse the same).
_NOT_TOKEN = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def check_header(name: bytes, value: bytes, interface: str) -> None:
    """Raises ``ValueError`` unless ``name`` is an HTTP token and ``value`` holds no control
    character other than HTAB: what a response header may hold on the wire."""
    if not name or _NOT_TOKEN.search(name) is not None:
        raise ValueError(f"{interface} response header name {name!r} is not an HTTP token")
    if _CONTROL.search(value) is not None:
        raise ValueError(
            f"{interface} response header {name.decode('latin-1')} holds a control character"
        )


def check_text(value: bytes, what: str) -> None:
    """Raises ``ValueError`` when ``value`` (a status line's reason) holds a control character
    other than HTAB."""
    if _CONTROL.search(value) is not None:
        raise ValueError(f"{what} holds a control character: {value!r}")


def resolve_app(module: str, name: str) -> Any:
    """The app ``name`` (a dotted attribute path) of ``module``, imported; ``TypeError`` when it
    is not callable. The caller gives it its ASGI or WSGI type."""
    obj: Any = sys.modules.get(module)
    # What import_module would return, without its machinery (a request resolves its app each
    # time): a module already imported, and not still being imported by another thread.
    if obj is None or getattr(getattr(obj, "__spec__", None), "_initializing", False):
        obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{module}:{name} is not callable")
    return obj


def check_app(module: str, name: str) -> None:
    """Imports the app (``resolve_app``) and returns nothing: the check a server makes before
    it listens."""
    resolve_app(module, name)


def freeze_heap() -> int:
    """Collects the garbage, then freezes what is left (``gc.freeze()``): the objects alive now
    (modules, the app, its routes and models) are no longer walked by the collector, whose full
    collections otherwise pause the event loop for tens of milliseconds under load. What is
    frozen is still freed when its reference count drops to zero; only cycles among frozen
    objects stay. py_http calls it once the app is imported and its lifespan started (its
    ``freeze_heap`` option). Returns the number of frozen objects."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
