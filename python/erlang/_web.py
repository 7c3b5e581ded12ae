"""What the ASGI and WSGI runners (``erlang._asgi``, ``erlang._wsgi``) share."""

from __future__ import annotations

import importlib
from typing import Any


def resolve_app(module: str, name: str) -> Any:
    """The app ``name`` (a dotted attribute path) of ``module``, imported; ``TypeError`` when it
    is not callable. The caller gives it its ASGI or WSGI type."""
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{module}:{name} is not callable")
    return obj


def check_app(module: str, name: str) -> None:
    """Imports the app (``resolve_app``) and returns nothing: the check a server makes before
    it listens."""
    resolve_app(module, name)
