"""``erlang._path``: where the application's directories go on ``sys.path`` (the
``python_path`` setting and ``py:add_python_path/1``; the Erlang side is
``tests/erlang/py_path_SUITE.erl``). Standalone only: each test works on a ``sys.path`` of its
own, never the interpreter's."""

import sys

import pytest

from erlang import _path

PACKAGE = "/app/erlang_python/priv/python"
REST = ["/env/pythonpath", "/py/lib/python3.12", "/venv/site-packages"]


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sys.path as the BEAM starts it, and no application directories yet."""
    monkeypatch.setattr(sys, "path", [PACKAGE, *REST])
    monkeypatch.setattr(_path, "_anchor", None)
    monkeypatch.setattr(_path, "_entries", [])


def test_configure_puts_directories_after_the_package_in_order() -> None:
    _path.configure(PACKAGE, ["/a", b"/b", "/a"])
    assert sys.path == [PACKAGE, "/a", "/b", *REST]


def test_configure_replaces_the_previous_directories() -> None:
    _path.configure(PACKAGE, ["/a", "/b"])
    _path.add("/c")
    _path.configure(PACKAGE, ["/d"])
    assert sys.path == [PACKAGE, "/d", *REST]
    _path.configure(PACKAGE, [])
    assert sys.path == [PACKAGE, *REST]


def test_a_directory_also_on_pythonpath_keeps_its_place() -> None:
    _path.configure(PACKAGE, ["/env/pythonpath"])
    _path.add("/c")
    assert sys.path == [PACKAGE, "/env/pythonpath", "/c", *REST]
    _path.configure(PACKAGE, [])
    assert sys.path == [PACKAGE, *REST]


def test_add_goes_after_the_others_once() -> None:
    _path.configure(PACKAGE, ["/a"])
    _path.add("/b")
    _path.add("/b")
    _path.add(b"/a")
    assert sys.path == [PACKAGE, "/a", "/b", *REST]


def test_add_again_what_someone_took_off() -> None:
    _path.configure(PACKAGE, ["/a", "/b"])
    sys.path.remove("/a")
    _path.add("/a")
    assert sys.path == [PACKAGE, "/b", "/a", *REST]
    sys.path[:] = [PACKAGE, *REST]
    _path.configure(PACKAGE, ["/c"])
    assert sys.path == [PACKAGE, "/c", *REST]


def test_without_the_package_on_sys_path_directories_go_first() -> None:
    sys.path.remove(PACKAGE)
    _path.configure(PACKAGE, ["/a"])
    _path.add("/b")
    assert sys.path == ["/a", "/b", *REST]


def test_bytes_that_are_not_utf8_become_file_names() -> None:
    _path.configure(PACKAGE, [b"/caf\xe9"])
    assert sys.path[1] == "/caf\udce9"
