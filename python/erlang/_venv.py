"""Virtual environments and module reload for the embedded interpreter (private).

``py:activate_venv/1``, ``py:deactivate_venv/0``, ``py:venv_info/0`` and ``py:reload/1`` call
these functions by name with their arguments as values, so no path or module name is ever
spliced into Python source. There is one interpreter per OS process and every executor thread
shares its ``sys`` module, so one call here serves every executor.

Activating a venv changes the import state only: ``sys.path`` (the venv's site-packages,
processed like ``site.addsitedir`` so that ``.pth`` files and editable installs work), plus
whatever import hooks those ``.pth`` files install. ``sys.prefix``, ``sys.exec_prefix``,
``sys.executable`` and ``os.environ`` are left alone: the interpreter's standard library and C
extensions still come from its own installation, and ``sysconfig`` caches the prefixes it saw at
start-up, so changing them later would leave a half-switched interpreter.

Importing this module has no side effects.
"""

from __future__ import annotations

import importlib
import os
import site
import sys
import sysconfig
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["activate", "deactivate", "info", "reload"]

# What `activate` returns to Erlang instead of raising: `py:activate_venv/1` turns the first
# element into an existing atom.
InvalidVenv = tuple[str, str]
VersionMismatch = tuple[str, str, str]

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Active:
    """An active venv and what is needed to undo its activation exactly."""

    venv_path: str
    site_packages: str
    saved_path: list[str]
    added_entries: tuple[str, ...]
    added_finders: tuple[object, ...]
    added_hooks: tuple[object, ...]


_lock = threading.Lock()
_active: _Active | None = None


def activate(path: str | bytes) -> InvalidVenv | VersionMismatch | None:
    """Make the packages of the venv at ``path`` importable; deactivate the previous one first.

    The venv's site-packages directory (``lib/pythonX.Y/site-packages`` for the running X.Y) and
    the directories its ``.pth`` files name go right before the first site-packages directory
    already on ``sys.path``: the venv's packages win over the interpreter's, and never shadow
    the standard library. Returns ``None`` on success, ``("invalid_venv", site_packages)`` when
    that directory does not exist, and ``("python_version_mismatch", venv, running)`` when the
    venv's ``pyvenv.cfg`` names another Python X.Y; in these two cases nothing changes.
    """
    global _active
    venv = os.path.abspath(os.fsdecode(path))
    site_dirs = _site_dirs(venv)
    purelib = site_dirs[0]
    with _lock:
        if os.path.isdir(venv):
            mismatch = _version_mismatch(venv)
            if mismatch is not None:
                return ("python_version_mismatch", *mismatch)
        if not os.path.isdir(purelib):
            return ("invalid_venv", purelib)
        if _active is not None:
            _restore(_active)
            _active = None
        _active = _add_site_dirs(venv, [d for d in site_dirs if os.path.isdir(d)])
        return None


def deactivate() -> None:
    """Undo ``activate``: ``sys.path`` becomes again the list it was (same object, same
    entries, same order), and the import hooks the venv's ``.pth`` files added are removed.

    Changes made to ``sys.path`` while the venv was active are discarded with it. Modules
    already imported from the venv stay in ``sys.modules``. Does nothing when no venv is active.
    """
    global _active
    with _lock:
        if _active is not None:
            _restore(_active)
            _active = None


def info() -> dict[str, object]:
    """``{"active": False}``, or the active venv's path and site-packages with ``sys.path``."""
    with _lock:
        active = _active
        if active is None:
            return {"active": False}
        return {
            "active": True,
            "venv_path": active.venv_path,
            "site_packages": active.site_packages,
            "sys_path": list(sys.path),
        }


def reload(name: str) -> None:
    """``importlib.reload`` the module ``name`` if it is imported; do nothing if it is not.

    Exceptions from the new source (``SyntaxError``, ``ImportError``, any error raised at its
    top level) propagate; the module object then keeps the attributes set so far.
    """
    module = sys.modules.get(name)
    if module is None:
        return
    # Directory listings cached by the path finders would hide files created since the last
    # import (a module turned into a package, a new submodule).
    importlib.invalidate_caches()
    importlib.reload(module)


def _site_dirs(venv: str) -> list[str]:
    """The venv's purelib then, when distinct, platlib, for the running Python (the ``venv``
    scheme of sysconfig, 3.11+: ``lib/pythonX.Y/site-packages``, ``Lib/site-packages`` on
    Windows, ``lib/python3.13t/site-packages`` on a free-threaded build)."""
    paths = {"base": venv, "platbase": venv}
    purelib = sysconfig.get_path("purelib", "venv", vars=paths)
    platlib = sysconfig.get_path("platlib", "venv", vars=paths)
    return [purelib] if platlib == purelib else [purelib, platlib]


def _version_mismatch(venv: str) -> tuple[str, str] | None:
    """``(venv X.Y, running X.Y)`` when ``pyvenv.cfg`` names another X.Y than the running one.

    ``venv`` writes ``version``; uv and virtualenv write ``version_info``. A venv without
    ``pyvenv.cfg`` or without a version in it is judged by its site-packages directory alone.
    """
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as cfg:
            lines = cfg.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    values: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    version = values.get("version_info") or values.get("version")
    if not version:
        return None
    venv_mm = ".".join(version.split(".")[:2])
    running_mm = f"{sys.version_info.major}.{sys.version_info.minor}"
    return None if venv_mm == running_mm else (venv_mm, running_mm)


def _add_site_dirs(venv: str, site_dirs: list[str]) -> _Active:
    saved = list(sys.path)
    finders = list(sys.meta_path)
    hooks = list(sys.path_hooks)
    try:
        for site_dir in site_dirs:
            site.addsitedir(site_dir)
        # addsitedir appends; .pth `import` lines may have inserted anywhere.
        known = set(saved)
        added = tuple(dict.fromkeys(p for p in sys.path if p not in known))
        at = _insertion_point(saved)
        sys.path[:] = [*saved[:at], *added, *saved[at:]]
        importlib.invalidate_caches()
    except BaseException:
        # Includes erlang.Interrupted (a timeout while a .pth file imports something).
        sys.path[:] = saved
        _remove_new(sys.meta_path, finders)
        _remove_new(sys.path_hooks, hooks)
        raise
    return _Active(
        venv_path=venv,
        site_packages=site_dirs[0],
        saved_path=saved,
        added_entries=added,
        added_finders=tuple(f for f in sys.meta_path if not _contains(finders, f)),
        added_hooks=tuple(h for h in sys.path_hooks if not _contains(hooks, h)),
    )


def _insertion_point(path: list[str]) -> int:
    """Index of the first site-packages directory (the interpreter's, or the user's) in
    ``path``, or ``len(path)`` when there is none."""
    site_dirs = {_norm(d) for d in site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        site_dirs.add(_norm(site.getusersitepackages()))
    for index, entry in enumerate(path):
        if _norm(entry) in site_dirs:
            return index
    return len(path)


def _restore(active: _Active) -> None:
    sys.path[:] = active.saved_path
    for finder in active.added_finders:
        _remove(sys.meta_path, finder)
    for hook in active.added_hooks:
        _remove(sys.path_hooks, hook)
    for entry in active.added_entries:
        if entry not in sys.path:
            sys.path_importer_cache.pop(entry, None)
    importlib.invalidate_caches()


def _norm(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _contains(items: Sequence[object], item: object) -> bool:
    """Membership by identity: finders may define ``__eq__``."""
    return any(x is item for x in items)


def _remove(items: list[_T], item: object) -> None:
    for index, x in enumerate(items):
        if x is item:
            del items[index]
            return


def _remove_new(items: list[_T], before: Sequence[object]) -> None:
    items[:] = [x for x in items if _contains(before, x)]
