"""The type stubs say exactly what the runtime accepts: ``typing_cases.py`` type-checks under
``mypy --strict`` with every ``# type: ignore`` it carries needed. Standalone only (mypy runs
in the venv, not inside the BEAM)."""

import shutil
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is a development tool (make deps)")

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("typing_cases.py")


def mypy(*args: str) -> tuple[int, str]:
    stdout, stderr, status = api.run(["--cache-dir", str(ROOT / ".mypy_cache"), *args])
    return status, stdout + stderr


def test_the_stubs_accept_what_the_runtime_accepts() -> None:
    status, output = mypy("--config-file", str(ROOT / "pyproject.toml"), str(CASES))
    assert status == 0, output


def test_a_loose_stub_fails_the_check(tmp_path: Path) -> None:
    """The check works: with ``erlang.call`` typed ``(*args: Any, **kwargs: Any)`` again, the
    ignores on the calls it should refuse are reported unused."""
    package = tmp_path / "python" / "erlang"
    shutil.copytree(ROOT / "python" / "erlang", package)
    stub = package / "_native.pyi"
    strict = "def call(name: str, /, *args: object) -> Any:"
    text = stub.read_text(encoding="utf-8")
    assert strict in text
    stub.write_text(text.replace(strict, "def call(*args: Any, **kwargs: Any) -> Any:"))
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\nstrict = True\npython_version = 3.11\nmypy_path = {tmp_path / 'python'}\n"
    )
    status, output = mypy("--config-file", str(config), str(CASES))
    assert status == 1
    unused = [line for line in output.splitlines() if 'Unused "type: ignore"' in line]
    assert len(unused) == 5, output
    assert all("typing_cases.py" in line for line in unused), output
